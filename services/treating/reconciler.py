"""The treating agency reconciles a day with its downstream neighbours (3201/3202): the clearing house for
cross-region stays, its own region's insured agency for local ones, and repairs by the core's rules."""

from __future__ import annotations

from datetime import date

from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import treating_agency_pb2 as pb
from clearinghouse.v1 import types_pb2

from clearing.errors import PreconditionFailed
from clearing.reconcile import DayKey, Difference, Repair
from services.common.metrics import Party
from services.common.reconciling import DAY_KEY_NUMBERS, reconcile_pair, repair_request_id
from services.treating import store

REPAIR_TIMEOUT_S = 10.0


class TreatingReconciliation:
    def __init__(self, agency) -> None:  # noqa: ANN001 - the TreatingAgencyServicer
        self.agency = agency
        self.region = agency.region

    async def run(self, day: date, grace_s: int, day_key: DayKey) -> list[types_pb2.ReconciliationReport]:
        text, key = day.isoformat(), DAY_KEY_NUMBERS[day_key]
        lines = await self.agency.day_detail(day, day_key)
        clearing, insured = self.agency.clearing_house, self.agency.local_insured
        cross_totals = await clearing.GetClaimDailyTotals(
            ch.GetClaimDailyTotalsRequest(day=text, treating_region=self.region, day_key=key), timeout=REPAIR_TIMEOUT_S)
        local_totals = await insured.GetAdjudicationDailyTotals(
            ia.GetAdjudicationDailyTotalsRequest(day=text, treating_region=self.region, day_key=key),
            timeout=REPAIR_TIMEOUT_S)

        async def cross_detail() -> list[types_pb2.DetailLine]:
            stream = clearing.StreamClaimDailyDetail(
                ch.StreamClaimDailyDetailRequest(day=text, treating_region=self.region, day_key=key),
                timeout=REPAIR_TIMEOUT_S * 6)
            return [item.line async for item in stream]

        async def local_detail() -> list[types_pb2.DetailLine]:
            stream = insured.StreamAdjudicationDailyDetail(
                ia.StreamAdjudicationDailyDetailRequest(day=text, treating_region=self.region, day_key=key),
                timeout=REPAIR_TIMEOUT_S * 6)
            return [item.line async for item in stream]

        async def record(repair: types_pb2.Repair) -> None:
            async with self.agency.pool.acquire() as conn:
                await store.record_repair(conn, day, day_key, repair)

        party = Party("treating", self.region)
        return [
            await reconcile_pair(f"treating_agency:{self.region}<->clearing_house", text, day_key,
                                 [line for line in lines if not line.local], list(cross_totals.totals), cross_detail,
                                 grace_s, self.repair, record, party=party),
            await reconcile_pair(f"treating_agency:{self.region}<->insured_agency:{self.region}", text, day_key,
                                 [line for line in lines if line.local], list(local_totals.totals), local_detail,
                                 grace_s, self.repair, record, party=party),
        ]

    async def repair(self, difference: Difference, up: types_pb2.DetailLine | None,
                     down: types_pb2.DetailLine | None) -> None:
        key = difference.key
        if difference.repair is Repair.REVERSE_STALE_PENDING:
            await self.agency.reverse(pb.ReverseRequest(
                request_id=repair_request_id("reverse", key), original_request_id=up.request_id,
                reason="reconciliation: pending past the grace period"), REPAIR_TIMEOUT_S, only_if_pending=True)
        elif difference.repair is Repair.FINISH_REVERSAL:
            async with self.agency.pool.acquire() as conn:
                reversal = await store.find_reversal(conn, up.request_id)
            await self.agency.reverse(pb.ReverseRequest(
                request_id=str(reversal["request_id"]), original_request_id=up.request_id, reason=reversal["reason"]),
                REPAIR_TIMEOUT_S)
        elif difference.repair is Repair.REVERSE_ORPHAN:
            if up is None:
                await self.check_unrecorded(key)
            if down.local:
                await self.agency.local_insured.ReverseAdjudication(ia.ReverseAdjudicationRequest(
                    request_id=repair_request_id("orphan", key), settlement_id=key), timeout=REPAIR_TIMEOUT_S)
            else:
                await self.agency.clearing_house.ReverseClaim(ch.ReverseClaimRequest(
                    request_id=repair_request_id("orphan", key), settlement_id=key,
                    treating_region=down.treating_region, insured_region=down.insured_region), timeout=REPAIR_TIMEOUT_S)
        elif difference.repair is Repair.FINISH_CANCEL:
            await self.agency.finish_cancel(key, down.cancel_request_id)
        else:
            raise AssertionError(difference.repair)

    async def check_unrecorded(self, settlement_id: str) -> None:
        """An orphan downstream is reversed only if this agency has no record of it at all: a record on another
        day (a day that differs between the parties, which only a row from before the settlement day travelled in
        the claim can have) is reported for the operator, never reversed on a guess."""
        async with self.agency.pool.acquire() as conn:
            row = await store.find_settlement(conn, settlement_id)
        if row is not None:
            raise PreconditionFailed("settlement_id", f"it is recorded here as {row['status']} on settlement day "
                                                      f"{row['settlement_day']} (discharged {row['discharged_on']}), so "
                                                      "it was not reversed; reconcile that day")
