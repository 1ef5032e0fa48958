"""SQL of the treating agency. Plain functions; the connection comes first; no transactions begin here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

import asyncpg

from clearing.bill import BillLine
from clearing.ledger import Posting
from clearing.medical_record import MedicalRecord
from clearing.reconcile import DayKey
from services.common.ledger_sql import insert_transaction


async def latest_catalogue(conn: asyncpg.Connection) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT version, csv_text FROM catalogue_versions WHERE published_at IS NOT NULL "
                               "ORDER BY version DESC LIMIT 1")


async def current_catalogue_version(conn: asyncpg.Connection) -> int | None:
    """The newest version the clearing house has too (a partial index answers it)."""
    return await conn.fetchval("SELECT max(version) FROM catalogue_versions WHERE published_at IS NOT NULL")


async def mark_catalogue_published(conn: asyncpg.Connection, version: int) -> None:
    await conn.execute("UPDATE catalogue_versions SET published_at = coalesce(published_at, now()) WHERE version = $1",
                       version)


async def catalogue_text(conn: asyncpg.Connection, version: int) -> str:
    return await conn.fetchval("SELECT csv_text FROM catalogue_versions WHERE version = $1", version)


async def newest_import(conn: asyncpg.Connection) -> asyncpg.Record | None:
    """The newest version imported, published to the clearing house or not (an import that failed to publish
    is finished by the next import of the same text)."""
    return await conn.fetchrow("SELECT version, sha256 FROM catalogue_versions ORDER BY version DESC LIMIT 1")


async def lock_catalogue_versions(conn: asyncpg.Connection) -> None:
    """One import at a time, so the newest version cannot change between reading it and adding one."""
    await conn.execute("LOCK TABLE catalogue_versions IN SHARE ROW EXCLUSIVE MODE")


async def catalogue_by_request(conn: asyncpg.Connection, request_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT version, sha256 FROM catalogue_versions WHERE request_id = $1",
                               UUID(request_id))


async def insert_catalogue(conn: asyncpg.Connection, request_id: str, sha256: str, csv_text: str,
                           row_count: int) -> int:
    return await conn.fetchval(
        "INSERT INTO catalogue_versions (request_id, sha256, csv_text, row_count) VALUES ($1, $2, $3, $4) "
        "RETURNING version", UUID(request_id), sha256, csv_text, row_count)


async def find_encounter_by_request(conn: asyncpg.Connection, request_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM encounters WHERE request_id = $1", UUID(request_id))


async def find_encounter(conn: asyncpg.Connection, encounter_id: str, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM encounters WHERE encounter_id = $1" + (" FOR UPDATE" if lock else ""),
                               UUID(encounter_id))


async def insert_encounter(conn: asyncpg.Connection, encounter_id: str, request_id: str, request: bytes,
                           hospital_code: str, hospital_level: int, insured_region: str, member_id: str,
                           id_number: str, name: str, admitted_on, emergency: bool, diagnoses: tuple[str, ...],  # noqa: ANN001
                           record: MedicalRecord, disease: str | None = None) -> None:
    """`record`: the admission's facts (sex, age, a newborn's birth weight). With `disease`, an outpatient
    special-disease visit's encounter (med_type 14; `admitted_on` is the visit day)."""
    await conn.execute(
        "INSERT INTO encounters (encounter_id, request_id, request, hospital_code, hospital_level, insured_region, "
        "member_id, id_number, name, admitted_on, emergency, diagnoses, sex, age_years, age_days, birth_weight_g, "
        "med_type, disease) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        UUID(encounter_id), UUID(request_id), request, hospital_code, hospital_level, insured_region, member_id,
        id_number, name, admitted_on, emergency, list(diagnoses), record.sex, record.age_years, record.age_days,
        record.birth_weight_g, MED_VISIT if disease else MED_STAY, disease)


MED_VISIT, MED_STAY = 14, 21  # 医疗类别: 门诊慢特病, 普通住院


async def find_upload(conn: asyncpg.Connection, request_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM uploads WHERE request_id = $1", UUID(request_id))


async def charge_lines(conn: asyncpg.Connection, encounter_id: str) -> list[BillLine]:
    """The encounter's bill: its lines not voided, in upload order."""
    rows = await conn.fetch("SELECT * FROM charge_lines WHERE encounter_id = $1 AND voided_at IS NULL "
                            "ORDER BY position", UUID(encounter_id))
    return [BillLine(row["line_id"], row["code"], row["qty_e4"], row["unit_price_fen"], row["amount_fen"],
                     row["service_date"]) for row in rows]


@dataclass(frozen=True)
class LinesSoFar:
    """What an upload needs to know of the lines already on an encounter, without reading them."""

    uploaded: int  # every line ever uploaded, voided ones too (the next line's position)
    live: int  # the lines of the bill (not voided)
    live_fen: int  # their total
    taken: frozenset[str]  # those of the upload's line ids already on the encounter


async def lines_so_far(conn: asyncpg.Connection, encounter_id: str, line_ids: list[str]) -> LinesSoFar:
    """One row of counts instead of every line (an upload used to read the whole bill twice)."""
    row = await conn.fetchrow(
        "SELECT count(*) AS uploaded, count(*) FILTER (WHERE voided_at IS NULL) AS live, "
        "coalesce(sum(amount_fen) FILTER (WHERE voided_at IS NULL), 0)::bigint AS live_fen, "
        "coalesce(array_agg(line_id) FILTER (WHERE line_id = ANY($2::text[])), '{}') AS taken "
        "FROM charge_lines WHERE encounter_id = $1", UUID(encounter_id), line_ids)
    return LinesSoFar(row["uploaded"], row["live"], row["live_fen"], frozenset(row["taken"]))


async def void_lines(conn: asyncpg.Connection, encounter_id: str, line_ids: list[str], request_id: str,
                     reason: str) -> int:
    """Void live lines of the encounter; returns how many were voided."""
    status = await conn.execute(
        "UPDATE charge_lines SET voided_at = now(), void_request_id = $3, void_reason = $4 "
        "WHERE encounter_id = $1 AND line_id = ANY($2::text[]) AND voided_at IS NULL",
        UUID(encounter_id), line_ids, UUID(request_id), reason)
    return int(status.split()[-1])


async def all_line_states(conn: asyncpg.Connection, encounter_id: str) -> dict[str, bool]:
    """line id → voided, for every line ever uploaded to the encounter."""
    rows = await conn.fetch("SELECT line_id, voided_at IS NOT NULL AS voided FROM charge_lines WHERE encounter_id = $1",
                            UUID(encounter_id))
    return {row["line_id"]: row["voided"] for row in rows}


async def insert_lines(conn: asyncpg.Connection, encounter_id: str, first_position: int, lines: list[BillLine]) -> None:
    """An upload's lines in one statement (one array per column), numbered on from `first_position`."""
    await conn.execute(
        "INSERT INTO charge_lines (encounter_id, line_id, position, code, qty_e4, unit_price_fen, amount_fen, "
        "service_date) SELECT $1, line.* FROM unnest($2::text[], $3::int[], $4::text[], $5::bigint[], $6::bigint[], "
        "$7::bigint[], $8::date[]) AS line",
        UUID(encounter_id), [line.line_id for line in lines], list(range(first_position, first_position + len(lines))),
        [line.code for line in lines], [line.qty_e4 for line in lines], [line.unit_price_fen for line in lines],
        [line.amount_fen for line in lines], [line.service_date for line in lines])


async def record_upload(conn: asyncpg.Connection, request_id: str, encounter_id: str, request: bytes, response: bytes) -> None:
    await conn.execute("INSERT INTO uploads (request_id, encounter_id, request, response) VALUES ($1, $2, $3, $4)",
                       UUID(request_id), UUID(encounter_id), request, response)


async def live_settlement(conn: asyncpg.Connection, encounter_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT settlement_id, status FROM settlements WHERE encounter_id = $1 AND status IN ('pending', 'settled')",
        UUID(encounter_id))


async def find_settlement_by_request(conn: asyncpg.Connection, request_id: str, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM settlements WHERE request_id = $1" + (" FOR UPDATE" if lock else ""),
                               UUID(request_id))


async def find_settlement(conn: asyncpg.Connection, settlement_id: str, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM settlements WHERE settlement_id = $1" + (" FOR UPDATE" if lock else ""),
                               UUID(settlement_id))


async def insert_pending(conn: asyncpg.Connection, settlement_id: str, request_id: str, encounter_id: str,
                         hospital_code: str, insured_region: str, local: bool, request: bytes, claim: bytes,
                         discharged_on: date, settlement_day: date, knowledge_version: str, rules_version: str,
                         smart_audit: bytes, procedures: tuple[str, ...] = (), discharge_status: str | None = None,
                         med_type: int = 21) -> None:
    await conn.execute(
        "INSERT INTO settlements (settlement_id, request_id, encounter_id, hospital_code, insured_region, local, "
        "status, request, claim, discharged_on, settlement_day, knowledge_version, rules_version, smart_audit, "
        "procedures, discharge_status, med_type) "
        "VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        UUID(settlement_id), UUID(request_id), UUID(encounter_id), hospital_code, insured_region, local, request, claim,
        discharged_on, settlement_day, knowledge_version, rules_version, smart_audit, list(procedures),
        discharge_status, med_type)


async def mark_failed(conn: asyncpg.Connection, settlement_id: str, error: bytes) -> None:
    await conn.execute("UPDATE settlements SET status = 'failed', error = $2 WHERE settlement_id = $1 AND status = 'pending'",
                       UUID(settlement_id), error)


async def mark_settled(conn: asyncpg.Connection, settlement_id: str, response: bytes, total_fen: int,
                       fund_pay_fen: int, psn_pay_fen: int, settled_at: datetime, payout_month: str) -> bool:
    status = await conn.execute(
        "UPDATE settlements SET status = 'settled', response = $2, total_fen = $3, fund_pay_fen = $4, psn_pay_fen = $5, "
        "settled_at = $6, payout_month = $7 WHERE settlement_id = $1 AND status = 'pending'",
        UUID(settlement_id), response, total_fen, fund_pay_fen, psn_pay_fen, settled_at, payout_month)
    return status == "UPDATE 1"


async def mark_cancelled(conn: asyncpg.Connection, settlement_id: str, cancel_request_id: str, response: bytes,
                         cancelled_at: datetime, undo_payout_month: str) -> None:
    status = await conn.execute(
        "UPDATE settlements SET status = 'cancelled', cancel_request_id = $2, cancel_response = $3, cancelled_at = $4, "
        "undo_payout_month = $5 WHERE settlement_id = $1 AND status = 'settled'", UUID(settlement_id),
        UUID(cancel_request_id), response, cancelled_at, undo_payout_month)
    assert status == "UPDATE 1"


# -- payout months (拨付) and their close --------------------------------------------------------------------------

async def lock_payouts_for_posting(conn: asyncpg.Connection) -> None:
    """Whatever chooses a payout month (a settlement, cancel or reversal recorded here) takes ROW EXCLUSIVE first,
    so a close (SHARE ROW EXCLUSIVE) waits for the posts in flight and every post after it sees the month closed.
    Taken before any settlement row is locked, so a close waiting in the lock queue cannot close a cycle."""
    await conn.execute("LOCK TABLE payout_closings IN ROW EXCLUSIVE MODE")


async def lock_payouts_for_close(conn: asyncpg.Connection) -> None:
    await conn.execute("LOCK TABLE payout_closings IN SHARE ROW EXCLUSIVE MODE")


async def closed_payout_months_from(conn: asyncpg.Connection, month: str) -> set[str]:
    rows = await conn.fetch("SELECT month FROM payout_closings WHERE month >= $1", month)
    return {row["month"] for row in rows}


async def find_payout_closing(conn: asyncpg.Connection, month: str) -> bytes | None:
    """The frozen payout list of a closed month (a serialized ListPayoutsResponse), None while it is open."""
    value = await conn.fetchval("SELECT response FROM payout_closings WHERE month = $1", month)
    return bytes(value) if value is not None else None


async def earliest_open_payout_month_before(conn: asyncpg.Connection, month: str) -> str | None:
    """An earlier month that has payouts (a settlement, cancel or reversal counts in it) and is not closed."""
    return await conn.fetchval("""
        SELECT min(m.month) FROM (
            SELECT payout_month AS month FROM settlements WHERE payout_month < $1
            UNION SELECT undo_payout_month FROM settlements WHERE undo_payout_month < $1
            UNION SELECT payout_month FROM dispute_deductions WHERE payout_month < $1) m
        WHERE NOT EXISTS (SELECT 1 FROM payout_closings c WHERE c.month = m.month)""", month)


async def insert_payout_closing(conn: asyncpg.Connection, month: str, closed_at: datetime, response: bytes) -> None:
    await conn.execute("INSERT INTO payout_closings (month, closed_at, response) VALUES ($1, $2, $3)",
                       month, closed_at, response)


async def payouts(conn: asyncpg.Connection, month: str | None) -> list[asyncpg.Record]:
    """Per hospital: settlements that count in payout month `month` minus the cancellations and reversals of
    settled ones that count in it (`payout_month`, `undo_payout_month`: the agency's own commit month, or the
    first open one after it); every month together when `month` is None. A reversal of a settlement that never
    completed here moves nothing."""
    settled, undone, deducted = ("payout_month = $1", "undo_payout_month = $1", "d.payout_month = $1") \
        if month is not None else ("payout_month IS NOT NULL", "undo_payout_month IS NOT NULL", "true")
    return await conn.fetch(f"""
        WITH moves AS (
            SELECT hospital_code, local, med_type, fund_pay_fen AS amount, 1 AS settlements, 0 AS cancels,
                   0 AS deductions
            FROM settlements WHERE {settled}
            UNION ALL
            SELECT hospital_code, local, med_type, -fund_pay_fen, 0, 1, 0 FROM settlements WHERE {undone}
            UNION ALL  -- dispute deductions (扣款, migration 0014): cross-region by nature; a visit's is the visit's
            SELECT d.hospital_code, false, coalesce(s.med_type, 21), -d.amount_fen, 0, 0, 1
            FROM dispute_deductions d LEFT JOIN settlements s USING (settlement_id) WHERE {deducted})
        SELECT hospital_code, sum(settlements)::int AS settlements, sum(cancels)::int AS cancels,
               sum(amount)::bigint AS fund_pay_fen, coalesce(sum(amount) FILTER (WHERE local), 0)::bigint AS local_fen,
               coalesce(sum(amount) FILTER (WHERE NOT local), 0)::bigint AS cross_region_fen,
               sum(deductions)::int AS deductions,
               coalesce(-sum(amount) FILTER (WHERE deductions = 1), 0)::bigint AS deducted_fen,
               coalesce(sum(amount) FILTER (WHERE med_type = 14), 0)::bigint AS outpatient_special_fen
        FROM moves GROUP BY hospital_code ORDER BY hospital_code""", *([month] if month is not None else []))


async def post_transaction(conn: asyncpg.Connection, settlement_id: str, kind: str, payout_month: str,
                           postings: tuple[Posting, ...]) -> int:
    """Append one balanced transaction of the agency's ledger; the deferred trigger re-checks the balance
    at commit, another trigger moves the accounts' running balances."""
    assert kind in ("settlement", "cancel", "reversal", "dispute")
    return await insert_transaction(
        conn, {"settlement_id": UUID(settlement_id), "kind": kind, "payout_month": payout_month}, postings)


async def deducted_dispute_ids(conn: asyncpg.Connection) -> set[str]:
    return {str(row["dispute_id"]) for row in await conn.fetch("SELECT dispute_id FROM dispute_deductions")}


async def insert_deduction(conn: asyncpg.Connection, dispute_id: str, settlement_id: str, hospital_code: str,
                           insured_region: str, amount_fen: int, cleared_month: str, payout_month: str, tx_id: int,
                           recorded_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO dispute_deductions (dispute_id, settlement_id, hospital_code, insured_region, amount_fen, "
        "cleared_month, payout_month, tx_id, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        UUID(dispute_id), UUID(settlement_id), hospital_code, insured_region, amount_fen, cleared_month,
        payout_month, tx_id, recorded_at)


async def receivable_movements(conn: asyncpg.Connection, month: str) -> dict[str, int]:
    """Per hospital: what the ledger moved on its receivable in `month` (settlements minus cancels)."""
    rows = await conn.fetch(
        "SELECT split_part(p.account, '/', 2) AS hospital_code, sum(p.amount_fen)::bigint AS amount_fen "
        "FROM ledger_postings p JOIN ledger_transactions t USING (tx_id) "
        "WHERE t.payout_month = $1 AND p.account LIKE 'hospital/%/receivable' GROUP BY 1", month)
    return {row["hospital_code"]: row["amount_fen"] for row in rows}


async def receivable_balances(conn: asyncpg.Connection) -> dict[str, int]:
    """Per hospital: the running balance of its receivable (every month together) before the hospital payments
    that settled it (kind 'payment', migration 0021): what the payout lists of every month add up to."""
    rows = await conn.fetch(
        "SELECT split_part(b.account, '/', 2) AS hospital_code, b.balance_fen - coalesce(("
        "  SELECT sum(p.amount_fen) FROM ledger_postings p JOIN ledger_transactions t USING (tx_id) "
        "  WHERE t.kind = 'payment' AND p.account = b.account), 0)::bigint AS balance_fen "
        "FROM ledger_balances b WHERE b.account LIKE 'hospital/%/receivable'")
    return {row["hospital_code"]: row["balance_fen"] for row in rows}


async def find_reversal(conn: asyncpg.Connection, original_request_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM reversals WHERE original_request_id = $1", UUID(original_request_id))


async def begin_reversal(conn: asyncpg.Connection, original_request_id: str, request_id: str, reason: str,
                         settlement_id: str | None) -> None:
    await conn.execute(
        "INSERT INTO reversals (original_request_id, request_id, reason, settlement_id, status) "
        "VALUES ($1, $2, $3, $4, 'reversing')", UUID(original_request_id), UUID(request_id), reason,
        UUID(settlement_id) if settlement_id else None)


async def finish_reversal(conn: asyncpg.Connection, original_request_id: str, outcome: str, response: bytes) -> None:
    status = await conn.execute(
        "UPDATE reversals SET status = 'done', outcome = $2, response = $3, completed_at = now() "
        "WHERE original_request_id = $1 AND status = 'reversing'", UUID(original_request_id), outcome, response)
    assert status == "UPDATE 1", "a reversal finishes once"


async def mark_reversed(conn: asyncpg.Connection, settlement_id: str, response: bytes | None,
                        reversed_at: datetime, undo_payout_month: str | None) -> None:
    """`undo_payout_month`: the payout month of the reversal of a settled settlement; None for a pending one."""
    status = await conn.execute(
        "UPDATE settlements SET status = 'reversed', response = coalesce($2, response), reversed_at = $3, "
        "undo_payout_month = $4 WHERE settlement_id = $1 AND status IN ('pending', 'settled')",
        UUID(settlement_id), response, reversed_at, undo_payout_month)
    assert status == "UPDATE 1", "only a pending or settled settlement is reversed"


DAY_COLUMNS = {DayKey.SETTLEMENT: "s.settlement_day", DayKey.DISCHARGE: "s.discharged_on"}


async def day_lines(conn: asyncpg.Connection, day: date, day_key: DayKey,
                    hospital_code: str | None = None) -> list[asyncpg.Record]:
    """3202: every settlement made on `day` (or of a stay discharged on `day`), optionally one hospital's, with
    its reversal state."""
    return await conn.fetch(
        "SELECT s.settlement_id, s.request_id, s.status, s.local, s.insured_region, s.settlement_day, s.med_type, "
        "coalesce(s.total_fen, 0) AS total_fen, coalesce(s.fund_pay_fen, 0) AS fund_pay_fen, "
        "coalesce(s.psn_pay_fen, 0) AS psn_pay_fen, s.created_at, s.cancel_request_id, "
        "coalesce(r.status = 'reversing', false) AS reversing FROM settlements s "
        "LEFT JOIN reversals r ON r.original_request_id = s.request_id "
        f"WHERE {DAY_COLUMNS[day_key]} = $1 AND ($2::text IS NULL OR s.hospital_code = $2) ORDER BY s.settlement_id",
        day, hospital_code)


async def record_repair(conn: asyncpg.Connection, day: date, day_key: DayKey, repair) -> None:  # noqa: ANN001 - a types_pb2.Repair
    await conn.execute(
        "INSERT INTO repairs (day, day_key, pair, key, upstream_status, downstream_status, action, note, repaired, "
        "error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)", day, day_key.value, repair.pair, repair.key,
        repair.upstream_status, repair.downstream_status, repair.action, repair.note, repair.repaired, repair.error)


async def settled_stays(conn: asyncpg.Connection, period: str) -> list[asyncpg.Record]:
    """The settled (not cancelled, not reversed) stays whose payout month is `period` (YYYY-MM) or in it (YYYY),
    with the claim they were settled with (its stay carries the grouping facts) and the member id to key them.
    Stays only: an outpatient special-disease visit (med_type 14) is not a DRG case."""
    where = "s.payout_month = $1" if len(period) == 7 else "left(s.payout_month, 4) = $1"
    return await conn.fetch(f"""
        SELECT s.settlement_id, s.hospital_code, s.insured_region, s.local, s.claim, s.total_fen, s.fund_pay_fen,
               s.payout_month, e.member_id
        FROM settlements s JOIN encounters e USING (encounter_id)
        WHERE s.status = 'settled' AND s.med_type = 21 AND {where}
        ORDER BY s.payout_month, s.discharged_on, s.settlement_id""", period)


# -- paying the hospitals (月度预拨, 年终清算; migration 0021) ------------------------------------------------------

async def lock_payment_closings(conn: asyncpg.Connection) -> None:
    """One payment post at a time: a second post of the same period waits, then finds the first one's closing."""
    await conn.execute("LOCK TABLE payment_closings IN SHARE ROW EXCLUSIVE MODE")


async def find_payment_closing(conn: asyncpg.Connection, period: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT request, response, closed_at FROM payment_closings WHERE period = $1", period)


async def payment_closings_of_year(conn: asyncpg.Connection, year: str) -> list[asyncpg.Record]:
    """The posted payment months of `year` (not the year end itself), by month."""
    return await conn.fetch("SELECT period, response FROM payment_closings WHERE period LIKE $1 || '-%' "
                            "ORDER BY period", year)


async def insert_payment_closing(conn: asyncpg.Connection, period: str, request: bytes, response: bytes,
                                 closed_at: datetime) -> None:
    await conn.execute("INSERT INTO payment_closings (period, request, response, closed_at) VALUES ($1, $2, $3, $4)",
                       period, request, response, closed_at)


async def find_weight_table(conn: asyncpg.Connection, payment_year: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT weights_year, weight_table FROM drg_weight_tables WHERE payment_year = $1",
                               payment_year)


async def insert_weight_table(conn: asyncpg.Connection, payment_year: str, weights_year: str, table_json: str) -> None:
    await conn.execute("INSERT INTO drg_weight_tables (payment_year, weights_year, weight_table) VALUES ($1, $2, $3)",
                       payment_year, weights_year, table_json)


async def post_payment(conn: asyncpg.Connection, period: str, hospital_code: str,
                       postings: tuple[Posting, ...]) -> int:
    """A hospital's payment transfer of `period`; the database refuses it unless the period's closing was inserted
    in this transaction (ledger_payment_guard)."""
    return await insert_transaction(
        conn, {"kind": "payment", "payment_period": period, "hospital_code": hospital_code}, postings)


async def closed_payout_months_of_year(conn: asyncpg.Connection, year: str) -> set[str]:
    rows = await conn.fetch("SELECT month FROM payout_closings WHERE month LIKE $1 || '-%'", year)
    return {row["month"] for row in rows}
