"""SQL both double-entry ledgers share (the clearing house's and each treating agency's): the two keep
`ledger_transactions` and `ledger_postings` of the same shape in their own databases."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from clearing.ledger import Posting, assert_balanced


async def insert_transaction(conn: asyncpg.Connection, columns: dict[str, Any], postings: tuple[Posting, ...],
                             leg_columns: tuple[str, ...] = ()) -> int:
    """Append a balanced transaction (`columns` of its `ledger_transactions` row) and its legs, in one statement
    (one round trip, not one per leg); returns its id. `leg_columns` (names among `columns`) are copied onto every
    leg: the clearing house's partitioned ledger keeps each leg with its transaction's insured region and month.
    The deferred trigger re-checks the balance at commit, another trigger moves the accounts' running balances."""
    assert_balanced(postings)
    assert set(leg_columns) <= set(columns)
    names = list(columns)
    values = ", ".join(f"${index + 1}" for index in range(len(names)))
    accounts, amounts = len(names) + 1, len(names) + 2
    carried = "".join(f"{name}, " for name in leg_columns)
    from_tx = "".join(f"tx.{name}, " for name in leg_columns)
    return await conn.fetchval(
        f"WITH tx AS (INSERT INTO ledger_transactions ({', '.join(names)}) VALUES ({values}) "
        f"RETURNING {', '.join(('tx_id', *leg_columns))}) "
        f"INSERT INTO ledger_postings (tx_id, {carried}account, amount_fen) "
        f"SELECT tx.tx_id, {from_tx}leg.account, leg.amount_fen "
        f"FROM tx, unnest(${accounts}::text[], ${amounts}::bigint[]) AS leg (account, amount_fen) RETURNING tx_id",
        *columns.values(), [posting.account for posting in postings], [posting.amount_fen for posting in postings])


async def postings_of(conn: asyncpg.Connection, settlement_id: str, kind: str,
                      leg_columns: tuple[str, ...] = ()) -> tuple[Posting, ...]:
    """The legs of a settlement's transaction of `kind` (settlement, cancel, reversal), by account. `leg_columns`
    (those `insert_transaction` copied onto the legs) join the legs by their journal's whole key: the clearing
    house's legs are found by (insured region, month, tx_id), its key, not by tx_id alone."""
    rows = await conn.fetch(
        "SELECT p.account, p.amount_fen FROM ledger_postings p JOIN ledger_transactions t "
        f"USING ({', '.join((*leg_columns, 'tx_id'))}) "
        "WHERE t.settlement_id = $1 AND t.kind = $2 ORDER BY p.account", UUID(settlement_id), kind)
    return tuple(Posting(row["account"], row["amount_fen"]) for row in rows)
