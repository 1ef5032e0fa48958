"""SQL of the insured agency. Plain functions; the connection comes first; no transactions begin here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from uuid import UUID

import asyncpg

from clearing.adjudicate import Adjudication
from clearing.errors import NotFound
from clearing.member import YTD_FIELDS, Member, Ytd
from clearing.outpatient.adjudicate import VisitAdjudication
from clearing.outpatient.member import SpecialYtd
from clearing.policy import AssistanceTier, FilingStatus, Scheme
from clearing.reconcile import DayKey

FILING_PRIORITY = (FilingStatus.RESIDENT, FilingStatus.REFERRAL, FilingStatus.TEMPORARY)


async def find_member_row(conn: asyncpg.Connection, member_id: str, lock: bool = False) -> asyncpg.Record | None:
    """The member's row; `lock`: FOR UPDATE, so that what is recorded for the member is recorded one at a time."""
    return await conn.fetchrow("SELECT * FROM members WHERE member_id = $1" + (" FOR UPDATE" if lock else ""), member_id)


async def members_page(conn: asyncpg.Connection, after: str, limit: int) -> list[asyncpg.Record]:
    """Up to `limit` members with a member number after `after` (empty: from the first), by member number, each with
    its filings as `filings` (oldest first). Only what an operator may see: no hash, no ID number."""
    return await conn.fetch(
        "SELECT m.member_id, m.id_number_masked, m.scheme, m.retired, m.poverty, m.assistance, "
        "coalesce((SELECT jsonb_agg(jsonb_build_object('category', f.category, 'treating_region', f.treating_region, "
        "'valid_from', f.valid_from, 'valid_to', f.valid_to) ORDER BY f.filing_id) FROM filings f "
        "WHERE f.member_id = m.member_id), '[]') AS filings "
        "FROM members m WHERE m.member_id COLLATE \"C\" > $1 ORDER BY m.member_id COLLATE \"C\" LIMIT $2", after, limit)


async def insert_member(conn: asyncpg.Connection, member_id: str, id_hash: str, id_number_masked: str,
                        scheme: Scheme, retired: bool, poverty: bool, assistance: AssistanceTier | None) -> None:
    """A member as the agency keeps it: the keyed hash and the masked form of the ID number, never the number
    or the name (services/insured/keys.py)."""
    await conn.execute(
        "INSERT INTO members (member_id, id_hash, id_number_masked, scheme, retired, poverty, assistance) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        member_id, id_hash, id_number_masked, scheme.value, retired, poverty, assistance.value if assistance else None)


async def insert_filing(conn: asyncpg.Connection, member_id: str, category: FilingStatus, treating_region: str | None,
                        valid_from: date, valid_to: date | None) -> None:
    await conn.execute(
        "INSERT INTO filings (member_id, category, treating_region, valid_from, valid_to) VALUES ($1, $2, $3, $4, $5)",
        member_id, category.value, treating_region, valid_from, valid_to)


async def filings_of(conn: asyncpg.Connection, member_id: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM filings WHERE member_id = $1 ORDER BY filing_id", member_id)


MEMBER_WITH_FILINGS = (
    "SELECT {key}, m.scheme, m.retired, m.poverty, m.assistance, array(SELECT f.category FROM filings f "
    "WHERE f.member_id = m.member_id AND (f.treating_region IS NULL OR f.treating_region = {treating_region}) "
    "AND f.valid_from <= {on} AND (f.valid_to IS NULL OR f.valid_to >= {on})) AS filings ")


def member_of(region: str, member_id: str, row: asyncpg.Record) -> Member:
    return Member(
        region=region, member_id=member_id, scheme=Scheme(row["scheme"]), retired=row["retired"],
        poverty=row["poverty"], assistance=AssistanceTier(row["assistance"]) if row["assistance"] else None,
        filing=strongest_filing(row["filings"]),
    )


def strongest_filing(categories: list[str]) -> FilingStatus:
    """The strongest of the filings found (备案); UNFILED when none."""
    found = {FilingStatus(category) for category in categories}
    return next((status for status in FILING_PRIORITY if status in found), FilingStatus.UNFILED)


async def load_member(conn: asyncpg.Connection, region: str, member_id: str, treating_region: str, on: date) -> Member:
    """The member with the filings valid on `on` for `treating_region` (or any region), in one query."""
    row = await conn.fetchrow(
        MEMBER_WITH_FILINGS.format(key="m.member_id", treating_region="$2", on="$3")
        + "FROM members m WHERE m.member_id = $1", member_id, treating_region, on)
    if row is None:
        raise NotFound(f"regions/{region}/members/{member_id}")
    return member_of(region, member_id, row)


async def load_members(conn: asyncpg.Connection, region: str,
                       wanted: list[tuple[str, str, date]]) -> dict[int, Member]:
    """`load_member` for each (member id, treating region, day) of `wanted`, in one query: position in `wanted` →
    the member; an unknown member has no entry."""
    rows = await conn.fetch(
        MEMBER_WITH_FILINGS.format(key="k.position", treating_region="k.treating_region", on="k.on_day")
        + "FROM unnest($1::text[], $2::text[], $3::date[]) WITH ORDINALITY AS k (member_id, treating_region, on_day, "
        "position) JOIN members m ON m.member_id = k.member_id",
        [item[0] for item in wanted], [item[1] for item in wanted], [item[2] for item in wanted])
    return {row["position"] - 1: member_of(region, wanted[row["position"] - 1][0], row) for row in rows}


async def read_accumulators(conn: asyncpg.Connection, member_id: str, year: int, lock: bool) -> Ytd:
    """The member's accumulators for `year`; with `lock`, the row is created if missing and locked."""
    if lock:
        await conn.execute("INSERT INTO accumulators (member_id, year) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                           member_id, year)
    row = await conn.fetchrow(
        f"SELECT {', '.join(YTD_FIELDS)} FROM accumulators WHERE member_id = $1 AND year = $2"
        + (" FOR UPDATE" if lock else ""), member_id, year)
    return Ytd() if row is None else Ytd(*(row[name] for name in YTD_FIELDS))


async def lock_accumulators_of(conn: asyncpg.Connection, keys: list[tuple[str, int]]) -> dict[tuple[str, int], Ytd]:
    """`read_accumulators(lock=True)` for each (member id, year) of `keys`, in two statements; rows are made and
    locked in sorted order, so two batches sharing members queue instead of deadlocking."""
    ordered = sorted(set(keys))
    members, years = [key[0] for key in ordered], [key[1] for key in ordered]
    await conn.execute("INSERT INTO accumulators (member_id, year) SELECT * FROM unnest($1::text[], $2::int[]) "
                       "ORDER BY 1, 2 ON CONFLICT DO NOTHING", members, years)
    rows = await conn.fetch(
        f"SELECT member_id, year, {', '.join(YTD_FIELDS)} FROM accumulators "
        "WHERE (member_id, year) IN (SELECT * FROM unnest($1::text[], $2::int[])) ORDER BY member_id, year FOR UPDATE",
        members, years)
    return {(row["member_id"], row["year"]): Ytd(*(row[name] for name in YTD_FIELDS)) for row in rows}


async def write_accumulators_of(conn: asyncpg.Connection, values: dict[tuple[str, int], Ytd]) -> None:
    """`write_accumulators` for every (member id, year) of `values`, in one statement."""
    keys = sorted(values)
    columns = ", ".join(f"{name} = v.{name}" for name in YTD_FIELDS)
    arrays = ", ".join(f"${index + 3}::bigint[]" for index in range(len(YTD_FIELDS)))
    status = await conn.execute(
        f"UPDATE accumulators a SET {columns} FROM unnest($1::text[], $2::int[], {arrays}) "
        f"AS v (member_id, year, {', '.join(YTD_FIELDS)}) WHERE a.member_id = v.member_id AND a.year = v.year",
        [key[0] for key in keys], [key[1] for key in keys],
        *([getattr(values[key], name) for key in keys] for name in YTD_FIELDS))
    assert status == f"UPDATE {len(keys)}", "every accumulator row was locked before"


async def write_accumulators(conn: asyncpg.Connection, member_id: str, year: int, ytd: Ytd) -> None:
    assignments = ", ".join(f"{name} = ${index + 3}" for index, name in enumerate(YTD_FIELDS))
    status = await conn.execute(f"UPDATE accumulators SET {assignments} WHERE member_id = $1 AND year = $2",
                                member_id, year, *(getattr(ytd, name) for name in YTD_FIELDS))
    assert status == "UPDATE 1", "the accumulator row was locked before"


async def find_settlement(conn: asyncpg.Connection, settlement_id: str, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM settlements WHERE settlement_id = $1" + (" FOR UPDATE" if lock else ""),
                               UUID(settlement_id))


async def record_settlement(conn: asyncpg.Connection, settlement_id: str, member_id: str, discharged_on: date,
                            settlement_day: date, treating_region: str, result: Adjudication, request: bytes,
                            response: bytes, stay: StayRecord) -> None:
    """Record the adjudication on the claim's settlement day; the database re-checks fund_pay + psn_pay = total."""
    await conn.execute(
        "INSERT INTO settlements (settlement_id, member_id, year, treating_region, status, total_fen, fund_pay_fen, "
        "psn_pay_fen, hifp_fen, hifmi_fen, maf_fen, delta, request, response, discharged_on, settlement_day, "
        "admitted_on, diagnoses, rules_version, smart_audit) "
        "VALUES ($1, $2, $3, $4, 'settled', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        UUID(settlement_id), member_id, discharged_on.year, treating_region, result.total_fen, result.fund_pay_fen,
        result.psn_pay_fen, result.hifp_fen, result.hifmi_fen, result.maf_fen,
        result.ytd_delta.as_dict(), request, response, discharged_on, settlement_day, stay.admitted_on,
        list(stay.diagnoses), stay.rules_version, stay.smart_audit)


@dataclass(frozen=True)
class StayRecord:
    """What smart audit keeps of a settlement's stay (the discharge day is kept anyway): the admission day, the
    diagnoses, and the cross-stay audit it was recorded with (rule library version, serialized SmartAudit)."""

    admitted_on: date
    diagnoses: tuple[str, ...]
    rules_version: str
    smart_audit: bytes


async def lock_members(conn: asyncpg.Connection, member_ids: list[str]) -> None:
    """Lock the members' rows (sorted: batches sharing members queue instead of deadlocking). Adjudication holds it
    while it reads the member's other stays and records this one, so two stays of one member adjudicated at once
    (two regions, whatever their policy years) see each other: exactly one of two overlapping stays is blocked."""
    await conn.execute("SELECT 1 FROM members WHERE member_id = ANY($1::text[]) ORDER BY member_id FOR UPDATE",
                       sorted(set(member_ids)))


async def live_stays(conn: asyncpg.Connection, member_ids: list[str], since: date) -> list[asyncpg.Record]:
    """The members' live stays (settled: not cancelled, not reversed) discharged on or after `since`, in the
    order smart audit lists them (admission, then settlement id)."""
    return list(await conn.fetch(
        "SELECT settlement_id, member_id, admitted_on, discharged_on, diagnoses FROM settlements "
        "WHERE member_id = ANY($1::text[]) AND status = 'settled' AND discharged_on >= $2 "
        "AND admitted_on IS NOT NULL AND cardinality(diagnoses) > 0 "
        "ORDER BY admitted_on, settlement_id", sorted(set(member_ids)), since))


async def settlements_among(conn: asyncpg.Connection, settlement_ids: list[str]) -> dict[str, asyncpg.Record]:
    """The recorded settlements (request and response) of those of `settlement_ids` that have one."""
    rows = await conn.fetch("SELECT settlement_id, request, response FROM settlements WHERE settlement_id = ANY($1::uuid[])",
                            [UUID(item) for item in settlement_ids])
    return {str(row["settlement_id"]): row for row in rows}


async def reversed_among(conn: asyncpg.Connection, settlement_ids: list[str]) -> set[str]:
    """Those of `settlement_ids` that have a reversal record (冲正): a Settle of them is refused."""
    rows = await conn.fetch("SELECT settlement_id FROM reversals WHERE settlement_id = ANY($1::uuid[])",
                            [UUID(item) for item in settlement_ids])
    return {str(row["settlement_id"]) for row in rows}


@dataclass(frozen=True)
class NewSettlement:
    """One adjudication of a batch, to record (`record_settlements`)."""

    settlement_id: str
    member_id: str
    discharged_on: date
    settlement_day: date
    treating_region: str
    result: Adjudication
    request: bytes
    response: bytes
    stay: StayRecord


async def record_settlements(conn: asyncpg.Connection, new: list[NewSettlement]) -> None:
    """`record_settlement` for each of `new`, in one statement (the database re-checks every split)."""
    await conn.execute(
        "INSERT INTO settlements (settlement_id, member_id, year, treating_region, status, total_fen, fund_pay_fen, "
        "psn_pay_fen, hifp_fen, hifmi_fen, maf_fen, delta, request, response, discharged_on, settlement_day, "
        "admitted_on, diagnoses, rules_version, smart_audit) "
        "SELECT s.settlement_id, s.member_id, s.year, s.treating_region, 'settled', s.total_fen, s.fund_pay_fen, "
        "s.psn_pay_fen, s.hifp_fen, s.hifmi_fen, s.maf_fen, s.delta::jsonb, s.request, s.response, s.discharged_on, "
        "s.settlement_day, s.admitted_on, string_to_array(s.diagnoses, ','), s.rules_version, s.smart_audit "
        "FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::bigint[], $6::bigint[], "
        "$7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::text[], $12::bytea[], $13::bytea[], $14::date[], "
        "$15::date[], $16::date[], $17::text[], $18::text[], $19::bytea[]) AS s (settlement_id, member_id, year, "
        "treating_region, total_fen, fund_pay_fen, psn_pay_fen, hifp_fen, hifmi_fen, maf_fen, delta, request, response, "
        "discharged_on, settlement_day, admitted_on, diagnoses, rules_version, smart_audit)",
        [UUID(item.settlement_id) for item in new], [item.member_id for item in new],
        [item.discharged_on.year for item in new], [item.treating_region for item in new],
        [item.result.total_fen for item in new], [item.result.fund_pay_fen for item in new],
        [item.result.psn_pay_fen for item in new], [item.result.hifp_fen for item in new],
        [item.result.hifmi_fen for item in new], [item.result.maf_fen for item in new],
        [json.dumps(item.result.ytd_delta.as_dict()) for item in new], [item.request for item in new],
        [item.response for item in new], [item.discharged_on for item in new], [item.settlement_day for item in new],
        [item.stay.admitted_on for item in new], [",".join(item.stay.diagnoses) for item in new],
        [item.stay.rules_version for item in new], [item.stay.smart_audit for item in new])


async def mark_cancelled(conn: asyncpg.Connection, settlement_id: str, cancel_request_id: str, response: bytes) -> None:
    status = await conn.execute(
        "UPDATE settlements SET status = 'cancelled', cancel_request_id = $2, cancel_response = $3, "
        "cancelled_at = now(), undone_sequence = nextval('settlement_events') WHERE settlement_id = $1 AND status = 'settled'",
        UUID(settlement_id), UUID(cancel_request_id), response)
    assert status == "UPDATE 1"


def delta_of(row: asyncpg.Record) -> Ytd:
    delta = row["delta"] if isinstance(row["delta"], dict) else json.loads(row["delta"])
    return Ytd(*(delta[name] for name in YTD_FIELDS))


async def find_reversal(conn: asyncpg.Connection, settlement_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM reversals WHERE settlement_id = $1", UUID(settlement_id))


async def record_reversal(conn: asyncpg.Connection, settlement_id: str, request_id: str, outcome: str,
                          response: bytes) -> None:
    await conn.execute("INSERT INTO reversals (settlement_id, request_id, outcome, response) VALUES ($1, $2, $3, $4)",
                       UUID(settlement_id), UUID(request_id), outcome, response)


async def mark_reversed(conn: asyncpg.Connection, settlement_id: str) -> None:
    status = await conn.execute("UPDATE settlements SET status = 'reversed', reversed_at = now(), "
                                "undone_sequence = nextval('settlement_events') "
                                "WHERE settlement_id = $1 AND status = 'settled'", UUID(settlement_id))
    assert status == "UPDATE 1", "only a settled stay is reversed"


DAY_COLUMNS = {DayKey.SETTLEMENT: "settlement_day", DayKey.DISCHARGE: "discharged_on"}


async def day_lines(conn: asyncpg.Connection, day: date, day_key: DayKey, own_region: str,
                    treating_region: str | None) -> list[asyncpg.Record]:
    """3202: stays settled on `day` (or discharged on `day`) treated in `treating_region`, or (None) everywhere but
    `own_region`."""
    return await conn.fetch(
        "SELECT settlement_id, status, treating_region, total_fen, fund_pay_fen, psn_pay_fen, settled_at AS created_at, "
        "med_type, "
        f"cancel_request_id, settlement_day FROM settlements WHERE {DAY_COLUMNS[day_key]} = $1 "
        "AND CASE WHEN $3::text IS NULL THEN treating_region <> $2 ELSE treating_region = $3 END "
        "ORDER BY settlement_id", day, own_region, treating_region)


EXPORT_PAGE = 500  # settlements per query (and per message) of ExportAdjudications


async def settlements_discharged(conn: asyncpg.Connection, first_day: date, last_day: date, after_sequence: int,
                                 ) -> list[asyncpg.Record]:
    """Up to EXPORT_PAGE stays (no visits: the what-if replays stays) discharged from `first_day` to `last_day`, in
    recording order after `after_sequence` (keyset paging: each page its own short query), with the member's row."""
    return await conn.fetch(
        "SELECT s.settlement_id, s.sequence, s.undone_sequence, s.status, s.request, s.response, s.settled_at, "
        "s.member_id, m.scheme, m.retired, m.poverty, m.assistance FROM settlements s JOIN members m USING (member_id) "
        "WHERE s.discharged_on BETWEEN $1 AND $2 AND s.med_type = 21 AND s.sequence > $3 ORDER BY s.sequence LIMIT $4",
        first_day, last_day, after_sequence, EXPORT_PAGE)


async def filings_among(conn: asyncpg.Connection, member_ids: list[str]) -> dict[str, list[asyncpg.Record]]:
    """Every filing of `member_ids`, with when it was recorded: member id → its filings."""
    rows = await conn.fetch("SELECT member_id, category, treating_region, valid_from, valid_to, created_at "
                            "FROM filings WHERE member_id = ANY($1::text[]) ORDER BY filing_id", member_ids)
    found: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        found.setdefault(row["member_id"], []).append(row)
    return found


def filing_then(filings: list[asyncpg.Record], treating_region: str, admitted_on: date, recorded_at) -> FilingStatus:  # noqa: ANN001
    """The filing status an adjudication recorded at `recorded_at` saw (`load_member`'s rule, MEMBER_WITH_FILINGS):
    the strongest filing for the treating region (or any region) valid on the admission day and recorded by then."""
    return strongest_filing([
        row["category"] for row in filings
        if (row["treating_region"] is None or row["treating_region"] == treating_region)
        and row["valid_from"] <= admitted_on and (row["valid_to"] is None or row["valid_to"] >= admitted_on)
        and row["created_at"] <= recorded_at])


# -- outpatient special diseases: recognitions (认定备案 2503 / 撤销 2504 / 查询 5301) ---------------------------------

async def overlapping_recognition(conn: asyncpg.Connection, member_id: str, disease: str, valid_from: date,
                                  valid_to: date | None) -> asyncpg.Record | None:
    """A standing recognition of the disease whose validity shares a day with [valid_from, valid_to]."""
    return await conn.fetchrow(
        "SELECT * FROM special_disease_recognitions WHERE member_id = $1 AND disease = $2 AND cancelled_at IS NULL "
        "AND (valid_to IS NULL OR valid_to >= $3) AND ($4::date IS NULL OR valid_from <= $4) "
        "ORDER BY recognition_id LIMIT 1", member_id, disease, valid_from, valid_to)


async def insert_recognition(conn: asyncpg.Connection, member_id: str, disease: str, valid_from: date,
                             valid_to: date | None, diagnosis: str, certified_by: str | None) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO special_disease_recognitions (member_id, disease, valid_from, valid_to, diagnosis, certified_by) "
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING *", member_id, disease, valid_from, valid_to, diagnosis, certified_by)


async def cancel_recognition(conn: asyncpg.Connection, member_id: str, recognition_id: int,
                             reason: str) -> asyncpg.Record | None:
    """Cancel a standing recognition of the member (a cancelled one is answered as it is); None when the member
    has no such recognition."""
    row = await conn.fetchrow("SELECT * FROM special_disease_recognitions WHERE recognition_id = $1 AND member_id = $2 "
                              "FOR UPDATE", recognition_id, member_id)
    if row is None or row["cancelled_at"] is not None:
        return row
    return await conn.fetchrow(
        "UPDATE special_disease_recognitions SET cancelled_at = now(), cancel_reason = $2 WHERE recognition_id = $1 "
        "RETURNING *", recognition_id, reason)


async def recognitions_of(conn: asyncpg.Connection, member_id: str, valid_on: date | None) -> list[asyncpg.Record]:
    """The member's recognitions, oldest first: all of them, or those standing and valid on `valid_on`."""
    if valid_on is None:
        return await conn.fetch("SELECT * FROM special_disease_recognitions WHERE member_id = $1 "
                                "ORDER BY recognition_id", member_id)
    return await conn.fetch(
        "SELECT * FROM special_disease_recognitions WHERE member_id = $1 AND cancelled_at IS NULL "
        "AND valid_from <= $2 AND (valid_to IS NULL OR valid_to >= $2) ORDER BY recognition_id", member_id, valid_on)


# -- outpatient special-disease visits (门诊慢特病, med_type 14): the per-disease accumulators --------------------------

async def read_special(conn: asyncpg.Connection, member_id: str, year: int, disease: str) -> SpecialYtd:
    """The disease's accumulators of the year (zeros when none). Read and written only under the member's
    accumulators row lock (`read_accumulators(lock=True)`), which serialises every stay and visit of the member."""
    row = await conn.fetchrow("SELECT deductible_fen, paid_fen, month, month_paid_fen FROM special_accumulators "
                              "WHERE member_id = $1 AND year = $2 AND disease = $3", member_id, year, disease)
    return SpecialYtd() if row is None else SpecialYtd(row["deductible_fen"], row["paid_fen"], row["month"],
                                                        row["month_paid_fen"])


async def write_special(conn: asyncpg.Connection, member_id: str, year: int, disease: str, value: SpecialYtd) -> None:
    await conn.execute(
        "INSERT INTO special_accumulators (member_id, year, disease, deductible_fen, paid_fen, month, month_paid_fen) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (member_id, year, disease) DO UPDATE SET "
        "deductible_fen = $4, paid_fen = $5, month = $6, month_paid_fen = $7",
        member_id, year, disease, value.deductible_fen, value.paid_fen, value.month, value.month_paid_fen)


async def specials_of(conn: asyncpg.Connection, member_id: str, year: int) -> dict[str, SpecialYtd]:
    rows = await conn.fetch("SELECT * FROM special_accumulators WHERE member_id = $1 AND year = $2 ORDER BY disease",
                            member_id, year)
    return {row["disease"]: SpecialYtd(row["deductible_fen"], row["paid_fen"], row["month"], row["month_paid_fen"])
            for row in rows}


async def record_visit(conn: asyncpg.Connection, settlement_id: str, member_id: str, visit_on: date,
                       settlement_day: date, treating_region: str, result: VisitAdjudication, request: bytes,
                       response: bytes) -> None:
    """Record a visit's adjudication as a settlement row (med_type 14) with the accumulators it moved: `delta` the
    inpatient ones (hifp, with a shared cap), `special_delta` the disease's before and after."""
    delta = Ytd(*(getattr(result.ytd_after, name) - getattr(result.ytd_before, name) for name in YTD_FIELDS))
    await conn.execute(
        "INSERT INTO settlements (settlement_id, member_id, year, treating_region, status, total_fen, fund_pay_fen, "
        "psn_pay_fen, hifp_fen, hifmi_fen, maf_fen, delta, request, response, discharged_on, settlement_day, "
        "admitted_on, diagnoses, med_type, disease, special_delta) "
        "VALUES ($1, $2, $3, $4, 'settled', $5, $6, $7, $8, 0, 0, $9, $10, $11, $12, $13, $12, '{}', 14, $14, $15)",
        UUID(settlement_id), member_id, visit_on.year, treating_region, result.total_fen, result.fund_pay_fen,
        result.psn_pay_fen, result.hifp_fen, delta.as_dict(), request, response, visit_on, settlement_day,
        result.disease.value, {"before": result.special_before.as_dict(), "after": result.special_after.as_dict()})


def special_restored(row: asyncpg.Record, now: SpecialYtd) -> SpecialYtd:
    """The disease's accumulators once the visit of `row` is undone. When nothing moved them since, exactly what
    they were before it; otherwise (a later visit of the disease settled since) its deductible and pay come off,
    and its pay comes off the month's when the recorded month is still the visit's."""
    delta = row["special_delta"] if isinstance(row["special_delta"], dict) else json.loads(row["special_delta"])
    before, after = (SpecialYtd(**delta[key]) for key in ("before", "after"))
    if now == after:
        return before
    pay_fen = after.paid_fen - before.paid_fen
    month_paid_fen = now.month_paid_fen - pay_fen if now.month == after.month else now.month_paid_fen
    restored = SpecialYtd(now.deductible_fen - (after.deductible_fen - before.deductible_fen), now.paid_fen - pay_fen,
                          now.month, month_paid_fen)
    assert min(restored.deductible_fen, restored.paid_fen, restored.month_paid_fen) >= 0, \
        "accumulators never fall below zero on an undo"
    return restored
