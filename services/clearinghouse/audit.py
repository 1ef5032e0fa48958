"""Audit queries over the clearing house ledger (SPEC §6): read-only, each returns the rows that break
a rule (empty = the rule holds) and is used by the tests and the fault harness alike.

* every transaction balances (Σ postings = 0) and has postings;
* every cached balance (`ledger_balances`) equals the sum of its account's postings;
* every month aggregate (`clearing_aggregates`) equals a recomputation from the postings.
"""

from __future__ import annotations

import asyncpg

UNBALANCED_TRANSACTIONS_SQL = """
SELECT t.tx_id, t.settlement_id, t.kind, coalesce(sum(p.amount_fen), 0)::bigint AS total, count(p.account) AS postings
FROM ledger_transactions t LEFT JOIN ledger_postings p USING (tx_id)
GROUP BY t.tx_id HAVING coalesce(sum(p.amount_fen), 0) <> 0 OR count(p.account) = 0
ORDER BY t.tx_id
"""

BALANCE_MISMATCHES_SQL = """
SELECT coalesce(b.account, p.account) AS account, b.balance_fen, p.total FROM ledger_balances b
FULL JOIN (SELECT account, sum(amount_fen)::bigint AS total FROM ledger_postings GROUP BY account) p USING (account)
WHERE b.balance_fen IS DISTINCT FROM p.total
ORDER BY 1
"""

AGGREGATE_MISMATCHES_SQL = """
WITH recomputed AS (
    SELECT t.clearing_month, split_part(p.account, '/', 4) AS insured_region,
           split_part(p.account, '/', 2) AS treating_region,
           count(*) FILTER (WHERE t.kind = 'settlement')::int AS settlements,
           count(*) FILTER (WHERE t.kind IN ('cancel', 'reversal'))::int AS cancels,
           sum(p.amount_fen)::bigint AS fund_pay_fen
    FROM ledger_postings p JOIN ledger_transactions t USING (tx_id)
    WHERE p.account LIKE 'treating/%/receivable/%'
    GROUP BY 1, 2, 3)
SELECT clearing_month, insured_region, treating_region, r.settlements AS recomputed_settlements,
       a.settlements, r.cancels AS recomputed_cancels, a.cancels, r.fund_pay_fen AS recomputed_fund_pay_fen,
       a.fund_pay_fen
FROM recomputed r FULL JOIN clearing_aggregates a USING (clearing_month, insured_region, treating_region)
WHERE (r.settlements, r.cancels, r.fund_pay_fen) IS DISTINCT FROM (a.settlements, a.cancels, a.fund_pay_fen)
ORDER BY 1, 2, 3
"""


async def unbalanced_transactions(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(UNBALANCED_TRANSACTIONS_SQL)


async def balance_mismatches(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(BALANCE_MISMATCHES_SQL)


async def aggregate_mismatches(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(AGGREGATE_MISMATCHES_SQL)
