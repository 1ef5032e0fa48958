"""SQL both double-entry ledgers share (the clearing house's and each treating agency's): the two keep
`ledger_transactions` and `ledger_postings` of the same shape in their own databases."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from clearing.ledger import Posting


async def insert_postings(conn: asyncpg.Connection, tx_id: int, postings: tuple[Posting, ...]) -> None:
    """The legs of transaction `tx_id`; the deferred trigger checks at commit that they balance."""
    await conn.executemany("INSERT INTO ledger_postings (tx_id, account, amount_fen) VALUES ($1, $2, $3)",
                           [(tx_id, posting.account, posting.amount_fen) for posting in postings])


async def postings_of(conn: asyncpg.Connection, settlement_id: str, kind: str) -> tuple[Posting, ...]:
    """The legs of a settlement's transaction of `kind` (settlement, cancel, reversal), by account."""
    rows = await conn.fetch(
        "SELECT p.account, p.amount_fen FROM ledger_postings p JOIN ledger_transactions t USING (tx_id) "
        "WHERE t.settlement_id = $1 AND t.kind = $2 ORDER BY p.account", UUID(settlement_id), kind)
    return tuple(Posting(row["account"], row["amount_fen"]) for row in rows)
