"""The hospitals' side of reconciliation (对账 with the treating agency, 3201/3202): the HIS's own record of
each Settle against the agency's detail, matched by the HIS request id. What the HIS never learnt the fate
of, or what the agency holds that the HIS has nothing standing for, is reversed (冲正 2601) — the hospital
has not collected on it.

Each hospital asks as itself, for its own settlements only (`hospital_code`), on its own channel: a hospital
sees and reverses only what is its own. The simulator adds its hospitals' answers up into one report per
region, the same figures the region's agency would give for all of them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from datetime import date

import structlog
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

from clearing.errors import PreconditionFailed
from clearing.reconcile import DayKey, Difference, Repair
from services.common.metrics import Party
from services.common.reconciling import DAY_KEY_NUMBERS, STATUSES, reconcile_pair, repair_request_id

log = structlog.get_logger()
CALL_TIMEOUT_S = 60.0
# The HIS's record as an upstream view: a Settle it never got an answer for is a pending left behind.
HIS_STATUSES = {"settled": "settled", "failed": "failed", "reversed": "reversed", "unknown": "pending"}


def his_line(row) -> types_pb2.DetailLine:  # noqa: ANN001 - a discharges row
    message = types_pb2.DetailLine(
        settlement_id=str(row["settlement_id"] or ""), request_id=str(row["request_id"]),
        status=STATUSES[HIS_STATUSES[row["status"]]], local=row["treating_region"] == row["insured_region"],
        total_fen=row["total_fen"] or 0, fund_pay_fen=row["fund_pay_fen"] or 0, psn_pay_fen=row["psn_pay_fen"] or 0,
        treating_region=row["treating_region"], insured_region=row["insured_region"],
        settlement_day=row["settlement_day"].isoformat(), med_type=row["med_type"])
    message.created_at.FromDatetime(row["created_at"])
    return message


# The HIS's day of a Settle: the settlement day its answer named, else the day it sent it (services/his/servicer.py).
DAY_COLUMNS = {DayKey.SETTLEMENT: "settlement_day", DayKey.DISCHARGE: "discharged_on"}


def summed(answers: Iterable[Iterable[types_pb2.DailyTotals]]) -> list[types_pb2.DailyTotals]:
    """Several hospitals' 3201 totals added up per clearing type and med_type (ordered as an agency answers: by
    clearing type, stays before visits)."""
    sums: dict[tuple[str, int], types_pb2.DailyTotals] = {}
    for totals in answers:
        for item in totals:
            into = sums.setdefault((item.clearing_type, -item.med_type), types_pb2.DailyTotals(
                clearing_type=item.clearing_type, med_type=item.med_type))
            into.settled += item.settled
            into.total_fen += item.total_fen
            into.fund_pay_fen += item.fund_pay_fen
            into.psn_pay_fen += item.psn_pay_fen
            into.pending += item.pending
    return [sums[kind] for kind in sorted(sums)]


async def reconcile_region(hospital, region: str, day: date, grace_s: int,  # noqa: ANN001 - the HospitalServicer
                           day_key: DayKey) -> types_pb2.ReconciliationReport:
    text, key = day.isoformat(), DAY_KEY_NUMBERS[day_key]
    codes = hospital.hospitals_of(region)
    async with hospital.pool.acquire() as conn:
        rows = await conn.fetch(f"SELECT * FROM discharges WHERE {DAY_COLUMNS[day_key]} = $1 AND treating_region = $2",
                                day, region)
    mine = {str(row["request_id"]): row["hospital_code"] for row in rows}
    answers = await asyncio.gather(*(hospital.hospital_stubs[code].GetDailyTotals(
        ta.GetDailyTotalsRequest(day=text, hospital_code=code, day_key=key), timeout=CALL_TIMEOUT_S) for code in codes))

    async def detail_of(code: str) -> list[types_pb2.DetailLine]:
        stream = hospital.hospital_stubs[code].StreamDailyDetail(
            ta.StreamDailyDetailRequest(day=text, hospital_code=code, day_key=key), timeout=CALL_TIMEOUT_S)
        return [item.line async for item in stream]

    async def detail() -> list[types_pb2.DetailLine]:
        return [line for lines in await asyncio.gather(*(detail_of(code) for code in codes)) for line in lines]

    async def repair(difference: Difference, up: types_pb2.DetailLine | None, down: types_pb2.DetailLine | None) -> None:
        if difference.key not in mine or difference.repair not in (Repair.REVERSE_STALE_PENDING, Repair.REVERSE_ORPHAN):
            raise PreconditionFailed("key", "it is not one of this HIS's settlements to reverse, or no rule a "
                                            "hospital applies fits it, so it is reported for the operator")
        stub = hospital.hospital_stubs[mine[difference.key]]  # the hospital that sent the Settle reverses it
        await stub.Reverse(ta.ReverseRequest(request_id=repair_request_id("his-reverse", difference.key),
                                             original_request_id=difference.key,
                                             reason="reconciliation: the HIS never learnt the outcome"),
                           timeout=CALL_TIMEOUT_S)
        async with hospital.pool.acquire() as conn:
            await conn.execute("UPDATE discharges SET status = 'reversed' WHERE request_id = $1",
                               uuid.UUID(difference.key))

    async def record(item: types_pb2.Repair) -> None:
        return None  # logged and reported by reconcile_pair; the simulator keeps no audit table

    return await reconcile_pair(f"hospitals<->treating_agency:{region}", text, day_key, [his_line(row) for row in rows],
                                summed(answer.totals for answer in answers), detail, grace_s, repair, record,
                                key=lambda line: line.request_id, party=Party("his"))
