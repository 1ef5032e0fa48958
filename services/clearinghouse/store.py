"""SQL of the clearing house. Plain functions; the connection comes first; no transactions begin here."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

import asyncpg

from clearing.ledger import Posting
from clearing.reconcile import DayKey
from services.common.ledger_sql import insert_transaction

# Every leg is kept with its journal's insured region and month (migration 0014): the journal's partition, and
# its shard once distributed by insured region (docs/architecture.md).
LEG_COLUMNS = ("insured_region", "clearing_month")


async def latest_catalogues(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT DISTINCT ON (region) region, version, csv_text FROM catalogue_versions ORDER BY region, version DESC")


async def current_catalogue_version(conn: asyncpg.Connection, region: str) -> int | None:
    """The newest published version of a region's catalogue (an index lookup on the primary key)."""
    return await conn.fetchval("SELECT max(version) FROM catalogue_versions WHERE region = $1", region)


async def catalogue_text(conn: asyncpg.Connection, region: str, version: int) -> str | None:
    return await conn.fetchval("SELECT csv_text FROM catalogue_versions WHERE region = $1 AND version = $2",
                               region, version)


async def catalogue_version(conn: asyncpg.Connection, region: str, version: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT sha256, row_count FROM catalogue_versions WHERE region = $1 AND version = $2",
                               region, version)


async def insert_catalogue(conn: asyncpg.Connection, region: str, version: int, sha256: str, csv_text: str,
                           row_count: int) -> None:
    await conn.execute(
        "INSERT INTO catalogue_versions (region, version, sha256, csv_text, row_count) VALUES ($1, $2, $3, $4, $5)",
        region, version, sha256, csv_text, row_count)


async def find_claim(conn: asyncpg.Connection, settlement_id: str, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM claims WHERE settlement_id = $1" + (" FOR UPDATE" if lock else ""),
                               UUID(settlement_id))


async def insert_pending_claim(conn: asyncpg.Connection, settlement_id: str, treating_region: str,
                               insured_region: str, member_id: str, hospital_code: str, catalogue_rule: str,
                               request: bytes, routed: bytes, flags: list[str], discharged_on: date,
                               settlement_day: date, med_type: int = 21) -> None:
    """Record a new claim as pending, with the routed claim a retry re-drives (the caller holds the id's lock
    and has looked it up), on the settlement day the claim carries; `med_type` 14 for a visit, 21 for a stay."""
    await conn.execute(
        "INSERT INTO claims (settlement_id, treating_region, insured_region, member_id, hospital_code, status, "
        "catalogue_rule, request, routed, flags, discharged_on, settlement_day, med_type) "
        "VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $9, $10, $11, $12)",
        UUID(settlement_id), treating_region, insured_region, member_id, hospital_code, catalogue_rule, request,
        routed, flags, discharged_on, settlement_day, med_type)


async def mark_failed(conn: asyncpg.Connection, settlement_id: str, error: bytes) -> None:
    await conn.execute("UPDATE claims SET status = 'failed', error = $2 WHERE settlement_id = $1 AND status = 'pending'",
                       UUID(settlement_id), error)


async def mark_settled(conn: asyncpg.Connection, settlement_id: str, response: bytes, split, stay,  # noqa: ANN001
                       settled_at: datetime, clearing_month: str) -> None:
    """Mark a pending claim settled with its answer, fund split (a FundSplit), and the stay's dates, principal
    diagnosis and procedures (a Stay)."""
    status = await conn.execute(
        "UPDATE claims SET status = 'settled', response = $2, total_fen = $3, fund_pay_fen = $4, psn_pay_fen = $5, "
        "settled_at = $6, clearing_month = $7, hifp_fen = $8, hifmi_fen = $9, maf_fen = $10, admitted_on = $11, "
        "discharged_on = $12, principal_diagnosis = $13, procedures = $14 WHERE settlement_id = $1 AND status = 'pending'",
        UUID(settlement_id), response, split.total_fen, split.fund_pay_fen, split.psn_pay_fen, settled_at,
        clearing_month, split.hifp_fen, split.hifmi_fen, split.maf_fen, date.fromisoformat(stay.admitted_on),
        date.fromisoformat(stay.discharged_on), stay.diagnoses[0] if stay.diagnoses else None, list(stay.procedures))
    assert status == "UPDATE 1", "only a pending claim settles"


async def mark_cancelled(conn: asyncpg.Connection, settlement_id: str, cancel_request_id: str, response: bytes,
                         cancelled_at: datetime) -> None:
    status = await conn.execute(
        "UPDATE claims SET status = 'cancelled', cancel_request_id = $2, cancel_response = $3, cancelled_at = $4 "
        "WHERE settlement_id = $1 AND status = 'settled'", UUID(settlement_id), UUID(cancel_request_id), response,
        cancelled_at)
    assert status == "UPDATE 1", "only a settled claim is cancelled"


async def post_transaction(conn: asyncpg.Connection, settlement_id: str, kind: str, clearing_month: str,
                           postings: tuple[Posting, ...], insured_region: str, treating_region: str,
                           fund_pay_fen: int) -> int | None:
    """Book a claim's settlement, or its cancel or reversal (`kind`), in `clearing_month`: append its balanced
    ledger transaction (the deferred trigger re-checks the balance at commit, another trigger moves the
    accounts' running balances) — none when the funds pay nothing, as at the treating agency: `postings` is
    empty and the database refuses zero postings — and, for a cancel or reversal, record the month on the
    claim (`undo_month`). The month's pair aggregate moves when the claim's status changes (mark_settled,
    mark_cancelled, mark_reversed), by the database's trigger on claims, in this same transaction; it counts
    a claim whether or not anything was posted. Returns the ledger transaction's id, if one was posted."""
    assert kind in ("settlement", "cancel", "reversal")
    # Only a ledger from before migration 0008 holds zero legs (the mirror of one has them too): they move nothing.
    postings = tuple(posting for posting in postings if posting.amount_fen)
    assert bool(postings) == (fund_pay_fen > 0), "the funds' share is posted exactly when it is not zero"
    if kind != "settlement":
        status = await conn.execute(
            "UPDATE claims SET undo_month = $2 WHERE settlement_id = $1 AND status = 'settled' "
            "AND insured_region = $3 AND treating_region = $4",
            UUID(settlement_id), clearing_month, insured_region, treating_region)
        assert status == "UPDATE 1", "only a settled claim between these regions is undone"
    if not postings:
        return None
    return await insert_transaction(
        conn, {"settlement_id": UUID(settlement_id), "kind": kind, "clearing_month": clearing_month,
               "insured_region": insured_region}, postings, LEG_COLUMNS)


async def lock_aggregates_for_posting(conn: asyncpg.Connection) -> None:
    """Posts take ROW EXCLUSIVE before choosing their month, so a close (SHARE ROW EXCLUSIVE) waits for
    posts in flight and every post after it sees the month closed."""
    await conn.execute("LOCK TABLE clearing_aggregates IN ROW EXCLUSIVE MODE")


async def lock_aggregates_for_close(conn: asyncpg.Connection) -> None:
    await conn.execute("LOCK TABLE clearing_aggregates IN SHARE ROW EXCLUSIVE MODE")


async def closed_months_from(conn: asyncpg.Connection, month: str) -> set[str]:
    rows = await conn.fetch("SELECT month FROM month_closings WHERE month >= $1", month)
    return {row["month"] for row in rows}


async def find_closing(conn: asyncpg.Connection, month: str) -> bytes | None:
    value = await conn.fetchval("SELECT response FROM month_closings WHERE month = $1", month)
    return bytes(value) if value is not None else None


async def earliest_open_month_before(conn: asyncpg.Connection, month: str) -> str | None:
    """An earlier month that has obligations and has not been closed."""
    return await conn.fetchval(
        "SELECT min(a.clearing_month) FROM clearing_aggregates a WHERE a.clearing_month < $1 "
        "AND (a.settlements > 0 OR a.cancels > 0 OR a.adjustments > 0) "
        "AND NOT EXISTS (SELECT 1 FROM month_closings c WHERE c.month = a.clearing_month)", month)


async def month_cells(conn: asyncpg.Connection, month: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT insured_region, treating_region, settlements, cancels, adjustments, fund_pay_fen FROM clearing_aggregates "
        "WHERE clearing_month = $1 ORDER BY insured_region, treating_region", month)


async def insert_closing(conn: asyncpg.Connection, month: str, closed_at: datetime, response: bytes) -> None:
    await conn.execute("INSERT INTO month_closings (month, closed_at, response) VALUES ($1, $2, $3)",
                       month, closed_at, response)


async def lock_prepayment(conn: asyncpg.Connection, insured_region: str) -> asyncpg.Record:
    """The region's prepayment terms (预付金), locked; the row is made the first time (one statement when it exists)."""
    row = await conn.fetchrow("SELECT * FROM prepayments WHERE insured_region = $1 FOR UPDATE", insured_region)
    if row is not None:
        return row
    await conn.execute("INSERT INTO prepayments (insured_region) VALUES ($1) ON CONFLICT DO NOTHING", insured_region)
    return await conn.fetchrow("SELECT * FROM prepayments WHERE insured_region = $1 FOR UPDATE", insured_region)


async def balance_of(conn: asyncpg.Connection, account: str) -> int:
    return await conn.fetchval("SELECT coalesce((SELECT balance_fen FROM ledger_balances WHERE account = $1), 0)",
                               account)


async def request_topup(conn: asyncpg.Connection, insured_region: str, amount_fen: int) -> None:
    await conn.execute("UPDATE prepayments SET topup_requested_fen = $2, topup_requested_at = now(), updated_at = now() "
                       "WHERE insured_region = $1", insured_region, amount_fen)


async def set_prepayment_terms(conn: asyncpg.Connection, insured_region: str, required_fen: int,
                               threshold_bp: int, topup_requested_fen: int, months: int | None = None) -> None:
    """Store the sizing and warning state; `months` None keeps the region's factor. A top-up request keeps the
    time it was first made while it stays open."""
    await conn.execute(
        "UPDATE prepayments SET required_fen = $2, threshold_bp = $3, topup_requested_fen = $4::bigint, "
        "months = coalesce($5, months), updated_at = now(), "
        "topup_requested_at = CASE WHEN $4::bigint = 0 THEN NULL ELSE coalesce(topup_requested_at, now()) END "
        "WHERE insured_region = $1", insured_region, required_fen, threshold_bp, topup_requested_fen, months)


async def post_topup(conn: asyncpg.Connection, clearing_month: str, insured_region: str,
                     postings: tuple[Posting, ...]) -> int:
    return await insert_transaction(conn, {"kind": "topup", "clearing_month": clearing_month,
                                           "insured_region": insured_region}, postings, LEG_COLUMNS)


async def recent_outflows(conn: asyncpg.Connection, months_max: int) -> tuple[list[str], dict[str, list[int]]]:
    """The last `months_max` closed months (oldest first) and every region's obligations as insured region in
    each of them, a month without any counting 0 (a quiet month is recent outflow too)."""
    months = [row["month"] for row in await conn.fetch(
        "SELECT month FROM month_closings ORDER BY month DESC LIMIT $1", months_max)][::-1]
    rows = await conn.fetch(
        "SELECT clearing_month, insured_region, sum(fund_pay_fen)::bigint AS outflow FROM clearing_aggregates "
        "WHERE clearing_month = ANY($1::text[]) GROUP BY 1, 2", months)
    found = {(row["clearing_month"], row["insured_region"]): row["outflow"] for row in rows}
    regions = {row["insured_region"] for row in rows}
    return months, {region: [found.get((month, region), 0) for month in months] for region in regions}


async def prepayment_regions(conn: asyncpg.Connection) -> set[str]:
    """Every region with a prepayment row."""
    return {row["insured_region"] for row in await conn.fetch("SELECT insured_region FROM prepayments")}


async def post_clearing(conn: asyncpg.Connection, booking_month: str, cleared_month: str, region: str,
                        postings: tuple[Posting, ...]) -> int:
    """Append a region's clearing of `cleared_month`, booked in the open month it is committed in."""
    return await insert_transaction(conn, {"kind": "clearing", "clearing_month": booking_month,
                                           "cleared_month": cleared_month, "cleared_region": region,
                                           "insured_region": region}, postings, LEG_COLUMNS)


async def insert_month_clearing(conn: asyncpg.Connection, month: str, region: str, net_fen: int, tx_id: int | None,
                                request_id: str | None, reference: str, cleared_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO month_clearings (month, region, net_fen, tx_id, request_id, reference, cleared_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)", month, region, net_fen, tx_id,
        UUID(request_id) if request_id else None, reference, cleared_at)


async def month_clearings(conn: asyncpg.Connection, month: str) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch("SELECT * FROM month_clearings WHERE month = $1", month)
    return {row["region"]: row for row in rows}


async def prepayment_rows(conn: asyncpg.Connection, insured_region: str | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT p.*, coalesce(b.balance_fen, 0) AS balance_fen FROM prepayments p "
        "LEFT JOIN ledger_balances b ON b.account = 'insured/' || p.insured_region || '/prepayment' "
        "WHERE $1::text IS NULL OR p.insured_region = $1 ORDER BY p.insured_region", insured_region)


STATEMENT_COLUMNS = ("settlement_id", "insured_region", "treating_region", "hospital_code", "admitted_on",
                     "discharged_on", "total_fen", "hifp_fen", "hifmi_fen", "maf_fen", "fund_pay_fen", "psn_pay_fen",
                     "principal_diagnosis", "procedures", "med_type")


def statement_entries_sql(month_match: str) -> str:
    """The settlements, cancels and reversals that involve region $2 and clear in the months `month_match`
    chooses (a condition on the month, on $1, e.g. `= $1`), in commit order. Read from the statement lines the
    claims trigger writes (migration 0014), not the ledger: a claim settles in `clearing_month` and its cancel or
    reversal clears in `undo_month`, and a claim the funds pay nothing for posts no ledger transaction but is a
    settlement all the same (SPEC §7). The lines are partitioned by that month: a month's statement reads its
    month's partition only."""
    return f"""
SELECT kind, {", ".join(STATEMENT_COLUMNS)} FROM statement_lines
WHERE month {month_match} AND (insured_region = $2 OR treating_region = $2)
ORDER BY committed_at, settlement_id, kind DESC
"""


STATEMENT_ENTRIES_SQL = statement_entries_sql("= $1")


async def statement_totals(conn: asyncpg.Connection, months: list[str], region: str) -> dict:
    """A region's totals over `months` from their entries; a cancel or reversal counts negatively, and so does a
    dispute's adjustment (migration 0016), checked against the ledger's `dispute` postings of the months."""
    totals = await conn.fetchrow(f"""
        WITH e AS ({statement_entries_sql("= ANY($1::text[])")}),
             s AS (SELECT *, CASE kind WHEN 'settlement' THEN 1 ELSE -1 END AS sign FROM e)
        SELECT count(*) FILTER (WHERE insured_region = $2)::int AS entries_as_insured,
               count(*) FILTER (WHERE treating_region = $2)::int AS entries_as_treating,
               coalesce(sum(sign * fund_pay_fen) FILTER (WHERE insured_region = $2), 0)::bigint AS owed_by_fen,
               coalesce(sum(sign * fund_pay_fen) FILTER (WHERE treating_region = $2), 0)::bigint AS owed_to_fen,
               coalesce(sum(sign * hifp_fen) FILTER (WHERE insured_region = $2), 0)::bigint AS hifp_fen,
               coalesce(sum(sign * hifmi_fen) FILTER (WHERE insured_region = $2), 0)::bigint AS hifmi_fen,
               coalesce(sum(sign * maf_fen) FILTER (WHERE insured_region = $2), 0)::bigint AS maf_fen,
               coalesce(sum(sign * psn_pay_fen) FILTER (WHERE insured_region = $2), 0)::bigint AS psn_pay_fen,
               count(*) FILTER (WHERE insured_region = $2 AND med_type = 14)::int AS visit_entries_as_insured,
               count(*) FILTER (WHERE treating_region = $2 AND med_type = 14)::int AS visit_entries_as_treating,
               coalesce(sum(sign * fund_pay_fen) FILTER (WHERE insured_region = $2 AND med_type = 14), 0)::bigint
                   AS visit_owed_by_fen,
               coalesce(sum(sign * fund_pay_fen) FILTER (WHERE treating_region = $2 AND med_type = 14), 0)::bigint
                   AS visit_owed_to_fen
        FROM s""", months, region)
    adjusted = await conn.fetchrow("""
        SELECT count(*) FILTER (WHERE insured_region = $2)::int AS adjustments_as_insured,
               count(*) FILTER (WHERE treating_region = $2)::int AS adjustments_as_treating,
               coalesce(sum(amount_fen) FILTER (WHERE insured_region = $2), 0)::bigint AS adjusted_by_fen,
               coalesce(sum(amount_fen) FILTER (WHERE treating_region = $2), 0)::bigint AS adjusted_to_fen
        FROM dispute_adjustments WHERE month = ANY($1::text[]) AND (insured_region = $2 OR treating_region = $2)""",
                                   months, region)
    ledger_fen = await conn.fetchval("""
        SELECT coalesce(sum(p.amount_fen), 0)::bigint FROM ledger_postings p JOIN ledger_transactions t
            ON t.tx_id = p.tx_id AND t.insured_region = p.insured_region AND t.clearing_month = p.clearing_month
        WHERE t.kind = 'dispute' AND t.clearing_month = ANY($1::text[])
          AND (p.account LIKE 'treating/' || $2 || '/receivable/%' OR p.account LIKE 'treating/%/receivable/' || $2)""",
                                     months, region)
    # The statement's adjustments (dispute_adjustments) are what the ledger posted: each leg on the treating
    # receivable is −amount, booked in the month of its adjustment.
    assert ledger_fen == -(adjusted["adjusted_by_fen"] + adjusted["adjusted_to_fen"]), \
        "dispute adjustments and the ledger disagree"
    result = {**dict(totals), **dict(adjusted)}
    result["owed_by_fen"] -= adjusted["adjusted_by_fen"]
    result["owed_to_fen"] -= adjusted["adjusted_to_fen"]
    return result


# A dispute's adjustment as a statement entry: the disputed amount as fund pay (negative), the rest 0; the stay's
# principal diagnosis and procedures (migration 0017) as its settlement's entry shows them.
DISPUTE_ENTRIES_SQL = """
SELECT 'dispute' AS kind, a.settlement_id, a.insured_region, a.treating_region, a.hospital_code, c.admitted_on,
       c.discharged_on, 0::bigint AS total_fen, 0::bigint AS hifp_fen, 0::bigint AS hifmi_fen, 0::bigint AS maf_fen,
       a.amount_fen AS fund_pay_fen, 0::bigint AS psn_pay_fen, c.principal_diagnosis, c.procedures,
       coalesce(c.med_type, 21) AS med_type
FROM dispute_adjustments a LEFT JOIN claims c ON c.settlement_id = a.settlement_id AND c.insured_region = a.insured_region
WHERE a.month = $1 AND (a.insured_region = $2 OR a.treating_region = $2)
ORDER BY a.posted_at, a.dispute_id
"""

# Disputes a region is party to with a step in the month.
DISPUTES_OF_MONTH_SQL = """
SELECT * FROM disputes WHERE (insured_region = $2 OR treating_region = $2)
  AND $1 IN (raised_month, answered_month, decided_month, lapsed_month, adjusted_month)
ORDER BY raised_order
"""


async def closings_in(conn: asyncpg.Connection, months: list[str]) -> dict[str, bytes]:
    """The stored result of each closed month among `months`."""
    rows = await conn.fetch("SELECT month, response FROM month_closings WHERE month = ANY($1::text[])", months)
    return {row["month"]: bytes(row["response"]) for row in rows}


async def months_with_obligations(conn: asyncpg.Connection, months: list[str]) -> set[str]:
    """Those of `months` that have settlements, cancels or dispute adjustments (closed or not)."""
    rows = await conn.fetch("SELECT DISTINCT clearing_month FROM clearing_aggregates WHERE clearing_month = ANY($1::text[]) "
                            "AND (settlements > 0 OR cancels > 0 OR adjustments > 0)", months)
    return {row["clearing_month"] for row in rows}


async def find_reversal(conn: asyncpg.Connection, settlement_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM reversals WHERE settlement_id = $1", UUID(settlement_id))


async def begin_reversal(conn: asyncpg.Connection, settlement_id: str, request_id: str) -> None:
    await conn.execute("INSERT INTO reversals (settlement_id, request_id, status) VALUES ($1, $2, 'reversing')",
                       UUID(settlement_id), UUID(request_id))


async def finish_reversal(conn: asyncpg.Connection, settlement_id: str, outcome: str, response: bytes) -> None:
    status = await conn.execute(
        "UPDATE reversals SET status = 'done', outcome = $2, response = $3, completed_at = now() "
        "WHERE settlement_id = $1 AND status = 'reversing'", UUID(settlement_id), outcome, response)
    assert status == "UPDATE 1", "a reversal finishes once"


async def mark_reversed(conn: asyncpg.Connection, settlement_id: str, response: bytes | None, reversed_at: datetime) -> None:
    """A pending or settled claim becomes reversed; `response` (the settlement as reversed) replaces the answer
    when there was one."""
    status = await conn.execute(
        "UPDATE claims SET status = 'reversed', response = coalesce($2, response), reversed_at = $3 "
        "WHERE settlement_id = $1 AND status IN ('pending', 'settled')", UUID(settlement_id), response, reversed_at)
    assert status == "UPDATE 1", "only a pending or settled claim is reversed"


DAY_COLUMNS = {DayKey.SETTLEMENT: "c.settlement_day", DayKey.DISCHARGE: "c.discharged_on"}


DAY_LINES_SQL = (
    "SELECT c.settlement_id, c.status, c.treating_region, c.insured_region, c.settlement_day, c.med_type, "
    "coalesce(c.total_fen, 0) AS total_fen, coalesce(c.fund_pay_fen, 0) AS fund_pay_fen, "
    "coalesce(c.psn_pay_fen, 0) AS psn_pay_fen, c.created_at, c.cancel_request_id, "
    "coalesce(r.status = 'reversing', false) AS reversing FROM claims c "
    "LEFT JOIN reversals r USING (settlement_id) WHERE {day_column} = $1 "
    "AND ($2::text IS NULL OR c.treating_region = $2) AND ($3::text IS NULL OR c.insured_region = $3) "
    "ORDER BY c.settlement_id")


async def day_lines(conn: asyncpg.Connection, day: date, day_key: DayKey, treating_region: str | None,
                    insured_region: str | None) -> list[asyncpg.Record]:
    """3202: every claim settled on `day` (or of a stay discharged on `day`) between the given regions, with
    its reversal state. By settlement day, the day's month partition is the only one read (claims are partitioned
    by it); by discharge day, each partition's index on it is probed."""
    return await conn.fetch(DAY_LINES_SQL.format(day_column=DAY_COLUMNS[day_key]), day, treating_region,
                            insured_region)


async def record_repair(conn: asyncpg.Connection, day: date, day_key: DayKey, repair) -> None:  # noqa: ANN001 - a types_pb2.Repair
    await conn.execute(
        "INSERT INTO repairs (day, day_key, pair, key, upstream_status, downstream_status, action, note, repaired, "
        "error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)", day, day_key.value, repair.pair, repair.key,
        repair.upstream_status, repair.downstream_status, repair.action, repair.note, repair.repaired, repair.error)


async def record_cancel_intent(conn: asyncpg.Connection, settlement_id: str, request_id: str, at: datetime) -> None:
    """A cancel is about to be sent to the insured agency (migration 0021): committed before the call."""
    await conn.execute(
        "INSERT INTO cancel_intents (settlement_id, request_id, started_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (settlement_id) DO UPDATE SET request_id = EXCLUDED.request_id, started_at = EXCLUDED.started_at",
        UUID(settlement_id), UUID(request_id), at)


async def drop_cancel_intent(conn: asyncpg.Connection, settlement_id: str) -> None:
    await conn.execute("DELETE FROM cancel_intents WHERE settlement_id = $1", UUID(settlement_id))


async def find_cancel_intent(conn: asyncpg.Connection, settlement_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM cancel_intents WHERE settlement_id = $1", UUID(settlement_id))
