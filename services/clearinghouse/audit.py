"""Audit queries over the clearing house ledger (SPEC §6): read-only, each returns the rows that break
a rule (empty = the rule holds) and is used by the tests and the fault harness alike.

* every transaction balances (Σ postings = 0) and has postings;
* every cached balance (`ledger_balances`) equals the sum of its account's postings;
* every month aggregate (`clearing_aggregates`) equals a recomputation from the claims — a claim counts as a
  settlement in its `clearing_month` and, once cancelled or reversed, as a cancel in its `undo_month` — and
  its obligation equals the ledger's postings to the treating regions' receivables in that month (a claim the
  funds pay nothing for counts, and posts nothing); a dispute's adjustment counts −amount in its month;
* every dispute adjustment is one balanced `dispute` transaction of its amount, and a dispute is adjusted
  exactly when its state owes it (accepted, lapsed, upheld).

* every statement line equals the claim's settlement or undo it stands for, in the month it clears in.

A month archived (its partitions detached, services/clearinghouse/partitions.py) counts by what it added up to
(archived_postings, archived_claim_moves: migration 0014).

The database keeps most of this true by itself (migrations 0001, 0002, 0008); these queries check it after
the fact, and would find what a bulk load with the triggers off (session_replication_role) left wrong.
"""

from __future__ import annotations

import asyncpg

UNBALANCED_TRANSACTIONS_SQL = """
SELECT t.tx_id, t.settlement_id, t.kind, coalesce(sum(p.amount_fen), 0)::bigint AS total, count(p.account) AS postings
FROM ledger_transactions t LEFT JOIN ledger_postings p USING (insured_region, clearing_month, tx_id)
GROUP BY t.insured_region, t.clearing_month, t.tx_id HAVING coalesce(sum(p.amount_fen), 0) <> 0 OR count(p.account) = 0
ORDER BY t.tx_id
"""

BALANCE_MISMATCHES_SQL = """
SELECT coalesce(b.account, p.account) AS account, b.balance_fen, p.total FROM ledger_balances b
FULL JOIN (SELECT account, sum(amount_fen)::bigint AS total
           FROM (SELECT account, amount_fen FROM ledger_postings
                 UNION ALL SELECT account, amount_fen FROM archived_postings) AS kept
           GROUP BY account) p USING (account)
WHERE b.balance_fen IS DISTINCT FROM p.total
ORDER BY 1
"""

AGGREGATE_MISMATCHES_SQL = """
WITH moves AS (
    SELECT clearing_month, insured_region, treating_region, 1 AS settlements, 0 AS cancels, fund_pay_fen
    FROM claims WHERE clearing_month IS NOT NULL AND status IN ('settled', 'cancelled', 'reversed')
    UNION ALL
    SELECT undo_month, insured_region, treating_region, 0, 1, -fund_pay_fen
    FROM claims WHERE clearing_month IS NOT NULL AND status IN ('cancelled', 'reversed')
    UNION ALL
    SELECT clearing_month, insured_region, treating_region, settlements, cancels, fund_pay_fen
    FROM archived_claim_moves
    UNION ALL  -- a dispute's adjustment (migration 0016): −amount in the month it was posted in
    SELECT month, insured_region, treating_region, 0, 0, -amount_fen FROM dispute_adjustments),
recomputed AS (
    SELECT clearing_month, insured_region, treating_region, sum(settlements)::int AS settlements,
           sum(cancels)::int AS cancels, sum(fund_pay_fen)::bigint AS fund_pay_fen
    FROM moves GROUP BY 1, 2, 3),
posted AS (
    SELECT p.clearing_month, split_part(p.account, '/', 4) AS insured_region,
           split_part(p.account, '/', 2) AS treating_region, sum(p.amount_fen)::bigint AS fund_pay_fen
    FROM (SELECT clearing_month, account, amount_fen FROM ledger_postings
          UNION ALL SELECT clearing_month, account, amount_fen FROM archived_postings) AS p
    WHERE p.account LIKE 'treating/%/receivable/%'
    GROUP BY 1, 2, 3)
SELECT clearing_month, insured_region, treating_region, r.settlements AS recomputed_settlements,
       a.settlements, r.cancels AS recomputed_cancels, a.cancels, r.fund_pay_fen AS recomputed_fund_pay_fen,
       a.fund_pay_fen, p.fund_pay_fen AS posted_fund_pay_fen
FROM recomputed r FULL JOIN clearing_aggregates a USING (clearing_month, insured_region, treating_region)
FULL JOIN posted p USING (clearing_month, insured_region, treating_region)
WHERE (r.settlements, r.cancels, r.fund_pay_fen) IS DISTINCT FROM (a.settlements, a.cancels, a.fund_pay_fen)
   OR coalesce(p.fund_pay_fen, 0) <> coalesce(a.fund_pay_fen, 0)
ORDER BY 1, 2, 3
"""

# The statement lines (migration 0014) are the claims' settlements and undos, each in the month it clears in.
LINE_FIELDS = ("insured_region", "committed_at", "treating_region", "hospital_code", "admitted_on", "discharged_on",
               "total_fen", "hifp_fen", "hifmi_fen", "maf_fen", "fund_pay_fen", "psn_pay_fen")
CLAIM_FIELDS = ", ".join(name for name in LINE_FIELDS if name != "committed_at")
STATEMENT_LINE_MISMATCHES_SQL = f"""
WITH expected AS (
    SELECT clearing_month AS month, settlement_id, 'settlement' AS kind, settled_at AS committed_at, {CLAIM_FIELDS}
    FROM claims WHERE clearing_month IS NOT NULL AND status IN ('settled', 'cancelled', 'reversed')
    UNION ALL
    SELECT undo_month, settlement_id, CASE status WHEN 'cancelled' THEN 'cancel' ELSE 'reversal' END,
           coalesce(cancelled_at, reversed_at), {CLAIM_FIELDS}
    FROM claims WHERE clearing_month IS NOT NULL AND undo_month IS NOT NULL AND status IN ('cancelled', 'reversed'))
SELECT month, settlement_id, kind FROM expected e FULL JOIN statement_lines l USING (month, settlement_id, kind)
WHERE ({", ".join(f"e.{name}" for name in LINE_FIELDS)}) IS DISTINCT FROM ({", ".join(f"l.{name}" for name in LINE_FIELDS)})
  -- once a month is archived, a line or a claim may be detached while the other is not: compare pairs only
  AND NOT ((e.kind IS NULL OR l.kind IS NULL) AND EXISTS (SELECT 1 FROM archived_claim_moves))
ORDER BY 1, 2, 3
"""


DISPUTE_MISMATCHES_SQL = """
SELECT d.dispute_id, d.state, d.adjusted_month, a.month, a.amount_fen, t.kind, t.clearing_month AS tx_month,
       (SELECT sum(p.amount_fen) FROM ledger_postings p WHERE p.tx_id = a.tx_id AND p.account LIKE 'treating/%')
           AS receivable_fen
FROM disputes d FULL JOIN dispute_adjustments a USING (insured_region, dispute_id)
LEFT JOIN ledger_transactions t ON t.tx_id = a.tx_id AND t.insured_region = a.insured_region
WHERE (d.state IN ('accepted', 'lapsed', 'upheld')) IS DISTINCT FROM (a.dispute_id IS NOT NULL)
   OR d.adjusted_month IS DISTINCT FROM a.month
   OR (a.dispute_id IS NOT NULL AND d.amount_fen IS DISTINCT FROM a.amount_fen)
   -- an archived month's journals are detached (what they added up to is in archived_postings)
   OR (a.dispute_id IS NOT NULL AND a.month NOT IN (SELECT month FROM archived_months)
       AND (t.kind IS DISTINCT FROM 'dispute' OR t.clearing_month IS DISTINCT FROM a.month
       OR t.settlement_id IS DISTINCT FROM a.settlement_id
       OR (SELECT sum(p.amount_fen) FROM ledger_postings p WHERE p.tx_id = a.tx_id AND p.account LIKE 'treating/%')
          IS DISTINCT FROM -a.amount_fen))
ORDER BY 1
"""


async def dispute_mismatches(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(DISPUTE_MISMATCHES_SQL)


async def unbalanced_transactions(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(UNBALANCED_TRANSACTIONS_SQL)


async def balance_mismatches(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(BALANCE_MISMATCHES_SQL)


async def aggregate_mismatches(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(AGGREGATE_MISMATCHES_SQL)


async def statement_line_mismatches(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(STATEMENT_LINE_MISMATCHES_SQL)
