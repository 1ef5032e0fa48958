"""The clearing house reconciles a day with every insured agency (3201/3202) and repairs by the core's
rules; the treating agencies reconcile with the clearing house in turn."""

from __future__ import annotations

from datetime import date

from clearinghouse.v1 import clearing_house_pb2 as pb
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import types_pb2

from clearing.errors import PreconditionFailed
from clearing.reconcile import DayKey, Difference, Repair
from services.clearinghouse import store
from services.common.metrics import Party
from services.common.reconciling import DAY_KEY_NUMBERS, reconcile_pair, repair_request_id

REPAIR_TIMEOUT_S = 10.0


class ClearingReconciliation:
    def __init__(self, clearing) -> None:  # noqa: ANN001 - the ClearingHouseServicer
        self.clearing = clearing

    async def run(self, day: date, grace_s: int, day_key: DayKey) -> list[types_pb2.ReconciliationReport]:
        reports = []
        for region in sorted(self.clearing.insured_stubs):
            reports.append(await self.with_region(region, day, grace_s, day_key))
        return reports

    async def with_region(self, region: str, day: date, grace_s: int,
                          day_key: DayKey) -> types_pb2.ReconciliationReport:
        text, key = day.isoformat(), DAY_KEY_NUMBERS[day_key]
        stub = self.clearing.stub_for(region)
        lines = await self.clearing.day_detail(day, day_key, None, region)
        totals = await stub.GetAdjudicationDailyTotals(ia.GetAdjudicationDailyTotalsRequest(day=text, day_key=key),
                                                       timeout=REPAIR_TIMEOUT_S)

        async def detail() -> list[types_pb2.DetailLine]:
            stream = stub.StreamAdjudicationDailyDetail(
                ia.StreamAdjudicationDailyDetailRequest(day=text, day_key=key), timeout=REPAIR_TIMEOUT_S * 6)
            return [item.line async for item in stream]

        async def record(repair: types_pb2.Repair) -> None:
            async with self.clearing.pool.acquire() as conn:
                await store.record_repair(conn, day, day_key, repair)

        async def repair(difference: Difference, up: types_pb2.DetailLine | None,
                         down: types_pb2.DetailLine | None) -> None:
            key = difference.key
            if difference.repair in (Repair.REVERSE_STALE_PENDING, Repair.FINISH_REVERSAL):
                request_id = repair_request_id("reverse", key)
                if difference.repair is Repair.FINISH_REVERSAL:
                    async with self.clearing.pool.acquire() as conn:
                        request_id = str((await store.find_reversal(conn, key))["request_id"])
                await self.clearing.reverse_claim(pb.ReverseClaimRequest(
                    request_id=request_id, settlement_id=key, treating_region=up.treating_region,
                    insured_region=up.insured_region), REPAIR_TIMEOUT_S,
                    only_if_pending=difference.repair is Repair.REVERSE_STALE_PENDING)
            elif difference.repair is Repair.REVERSE_ORPHAN:
                if up is None:
                    await self.check_unrecorded(key)
                await stub.ReverseAdjudication(ia.ReverseAdjudicationRequest(
                    request_id=repair_request_id("orphan", key), settlement_id=key), timeout=REPAIR_TIMEOUT_S)
            elif difference.repair is Repair.FINISH_CANCEL:
                await self.clearing.finish_cancel(key, down.cancel_request_id)
            else:
                raise AssertionError(difference.repair)

        return await reconcile_pair(f"clearing_house<->insured_agency:{region}", text, day_key, lines,
                                    list(totals.totals), detail, grace_s, repair, record,
                                    party=Party("clearinghouse"))

    async def check_unrecorded(self, settlement_id: str) -> None:
        """An orphan at the insured agency is reversed only if the clearing house has no claim of that id at all:
        a claim on another day (only a claim from before the settlement day travelled in the claim can be) is
        reported for the operator, never reversed on a guess."""
        async with self.clearing.pool.acquire() as conn:
            row = await store.find_claim(conn, settlement_id)
        if row is not None:
            raise PreconditionFailed("settlement_id", f"it is recorded here as {row['status']} on settlement day "
                                                      f"{row['settlement_day']} (discharged {row['discharged_on']}), so "
                                                      "it was not reversed; reconcile that day")
