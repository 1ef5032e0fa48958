"""Reconciliation between neighbours (3201 totals, 3202 detail) finds each kind of difference a crash can
leave and repairs it by its rule (clearing/reconcile.py); a second run finds nothing left.

A day is the settlements made that day (the settlement day the treating agency gives each one, carried in
the claim to every party), so the module runs on a stack of its own whose clock each test sets to a day of
its own: the day's lines are only its own. Partial states are made for real, as in test_reversal.py: a party
whose downstream neighbour is a port nobody listens on, or a downstream party called directly as its upstream
would have before crashing.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import grpc
import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import hospital_pb2 as hp
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

from services.stack.processes import free_port
from services.stack.wiring import start_region

H_GUANGZHOU = "H44010000001"
GUANGZHOU = "440100"
INSURED = "610924"
GRACE_S = 1


@pytest.fixture(scope="module")
def kit(own_kit):
    """The module's own stack: settling on a test's day must not meet the shared stack's settlements."""
    return own_kit


async def open_stay(kit, member, day: str) -> str:  # noqa: ANN001
    line = kit.bill_line("1", kit.plain_codes(GUANGZHOU)[0], "2", 150000, day)
    return await kit.open_encounter(H_GUANGZHOU, member, [line], day)


async def states(kit, settlement_id: str, insured: str = INSURED) -> tuple:  # noqa: ANN001
    sid = uuid.UUID(settlement_id)
    return (await (await kit.db(f"treating_{GUANGZHOU}")).fetchval("SELECT status FROM settlements WHERE settlement_id = $1", sid),
            await (await kit.db("clearinghouse")).fetchval("SELECT status FROM claims WHERE settlement_id = $1", sid),
            await (await kit.db(f"insured_{insured}")).fetchval("SELECT status FROM settlements WHERE settlement_id = $1", sid))


async def reconcile_all(kit, day: str, day_key: int = 0) -> list[types_pb2.ReconciliationReport]:  # noqa: ANN001
    """As `clearing-admin reconcile`: the clearing house with the insured agencies, then the treating agency. The
    day is the settlement day unless `day_key` says otherwise (unset, the request is as before the key existed)."""
    await asyncio.sleep(GRACE_S + 0.2)  # let pending rows age past the grace period
    key = {"day_key": day_key} if day_key else {}
    downstream = await kit.clearing().ReconcileInsuredAgencies(
        ch.ReconcileInsuredAgenciesRequest(day=day, pending_grace_s=GRACE_S, **key))
    upstream = await kit.treating(GUANGZHOU).Reconcile(ta.ReconcileRequest(day=day, pending_grace_s=GRACE_S, **key))
    return [*downstream.reports, *upstream.reports]


def settled_counts(reports) -> dict[str, tuple[int, int]]:  # noqa: ANN001
    """Per pair: settlements standing settled upstream and downstream (3201)."""
    return {report.pair: (sum(t.settled for t in report.upstream_totals),
                          sum(t.settled for t in report.downstream_totals)) for report in reports}


async def settlement_days(kit, settlement_id: str, insured: str = INSURED) -> tuple:  # noqa: ANN001
    """The settlement day each party stored."""
    sid = uuid.UUID(settlement_id)
    return tuple([await (await kit.db(party)).fetchval(f"SELECT settlement_day::text FROM {table} WHERE settlement_id = $1",
                                                       sid)
                  for party, table in ((f"treating_{GUANGZHOU}", "settlements"), ("clearinghouse", "claims"),
                                       (f"insured_{insured}", "settlements"))])


def repairs_of(reports) -> list[tuple[str, str, bool]]:  # noqa: ANN001
    return [(repair.pair, repair.action, repair.repaired) for report in reports for repair in report.repairs]


async def settle_cut_off(kit, encounter_id: str, day: str, clearing_house_address: str) -> str:  # noqa: ANN001
    """Settle through a treating agency (same database) whose clearing house is unreachable; returns the
    HIS request id (the call fails UNAVAILABLE with the settlement left pending)."""
    region = await start_region(GUANGZHOU, kit.stack.config.dsn(f"treating_{GUANGZHOU}"),
                                kit.stack.config.dsn(f"insured_{GUANGZHOU}"), clearing_house_address,
                                transport=kit.stack.transport)
    address = f"127.0.0.1:{region.port}"
    request_id = kit.rid()
    try:
        error = await kit.refusal(kit.stack.treating(GUANGZHOU, address).Settle(
            ta.SettleRequest(request_id=request_id, encounter_id=encounter_id, discharged_on=day), timeout=5))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await region.stop()
    return request_id


async def settlement_of(kit, request_id: str) -> str:  # noqa: ANN001
    return str(await (await kit.db(f"treating_{GUANGZHOU}")).fetchval(
        "SELECT settlement_id FROM settlements WHERE request_id = $1", uuid.UUID(request_id)))


async def test_a_clean_day_agrees_on_the_totals_without_the_detail(kit, timeline):
    day = "2026-05-04"
    timeline.at(day)
    member = await kit.new_member(INSURED)
    local_member = await kit.new_member(GUANGZHOU)
    for who in (member, member, local_member):
        await kit.treating(GUANGZHOU).Settle(ta.SettleRequest(
            request_id=kit.rid(), encounter_id=await open_stay(kit, who, day), discharged_on=day))
    reports = await reconcile_all(kit, day)
    assert all(report.totals_agreed for report in reports)
    assert repairs_of(reports) == []
    by_pair = {report.pair: report for report in reports}
    cross = by_pair[f"treating_agency:{GUANGZHOU}<->clearing_house"]
    assert [(t.clearing_type, t.settled) for t in cross.upstream_totals] == [("cross_region", 2)]
    assert cross.upstream_totals == cross.downstream_totals
    local = by_pair[f"treating_agency:{GUANGZHOU}<->insured_agency:{GUANGZHOU}"]
    assert [(t.clearing_type, t.settled) for t in local.upstream_totals] == [("local", 1)]
    totals = await kit.treating(GUANGZHOU).GetDailyTotals(ta.GetDailyTotalsRequest(day=day, hospital_code=H_GUANGZHOU))
    assert sum(t.settled for t in totals.totals) == 3
    detail = [item.line async for item in kit.treating(GUANGZHOU).StreamDailyDetail(ta.StreamDailyDetailRequest(day=day))]
    assert len(detail) == 3 and all(line.request_id for line in detail)
    assert sum(line.fund_pay_fen for line in detail) == sum(t.fund_pay_fen for t in totals.totals)


async def test_a_pending_left_at_the_treating_agency_only_is_reversed(kit, timeline):
    day = "2026-05-05"
    timeline.at(day)
    member = await kit.new_member(INSURED)
    encounter_id = await open_stay(kit, member, day)
    request_id = await settle_cut_off(kit, encounter_id, day, f"127.0.0.1:{free_port()}")
    settlement_id = await settlement_of(kit, request_id)
    assert await states(kit, settlement_id) == ("pending", None, None)

    reports = await reconcile_all(kit, day)
    assert (f"treating_agency:{GUANGZHOU}<->clearing_house", "reverse_stale_pending", True) in repairs_of(reports)
    assert await states(kit, settlement_id) == ("reversed", None, None)
    assert repairs_of(await reconcile_all(kit, day)) == [], "a second run finds nothing left"
    logged = await (await kit.db(f"treating_{GUANGZHOU}")).fetch(
        "SELECT action, repaired FROM repairs WHERE key = $1", settlement_id)
    assert [tuple(row) for row in logged] == [("reverse_stale_pending", True)], "every repair is kept"


async def test_a_settlement_whose_answer_never_reached_the_treating_agency_is_reversed_everywhere(kit, timeline):
    day = "2026-05-06"
    timeline.at(day)
    member = await kit.new_member(INSURED)
    before = await kit.accumulators(member)
    encounter_id = await open_stay(kit, member, day)
    request_id = await settle_cut_off(kit, encounter_id, day, f"127.0.0.1:{free_port()}")
    settlement_id = await settlement_of(kit, request_id)
    claim = types_pb2.Claim.FromString(bytes(await (await kit.db(f"treating_{GUANGZHOU}")).fetchval(
        "SELECT claim FROM settlements WHERE settlement_id = $1", uuid.UUID(settlement_id))))
    await kit.clearing().SettleClaim(ch.SettleClaimRequest(request_id=settlement_id, claim=claim))
    assert await states(kit, settlement_id) == ("pending", "settled", "settled")

    reports = await reconcile_all(kit, day)
    assert (f"treating_agency:{GUANGZHOU}<->clearing_house", "reverse_stale_pending", True) in repairs_of(reports)
    assert await states(kit, settlement_id) == ("reversed", "reversed", "reversed")
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(before)
    ledger = await kit.ledger(settlement_id)
    assert {account: ledger["settlement"][account] + ledger["reversal"][account] for account in ledger["settlement"]} \
        == dict.fromkeys(ledger["settlement"], 0)
    assert repairs_of(await reconcile_all(kit, day)) == []


async def test_an_adjudication_nobody_upstream_recorded_is_reversed(kit, timeline):
    day = "2026-05-07"
    timeline.at(day)
    member = await kit.new_member(INSURED)
    before = await kit.accumulators(member)
    encounter_id = await open_stay(kit, member, day)
    quoted = await kit.treating(GUANGZHOU).PreSettle(ta.PreSettleRequest(encounter_id=encounter_id, discharged_on=day))
    orphan_id = str(uuid.uuid4())
    claim = types_pb2.Claim()
    claim.CopyFrom(quoted.settlement.claim)
    claim.settlement_id = orphan_id
    await kit.insured(INSURED).Adjudicate(ia.AdjudicateRequest(request_id=orphan_id, claim=claim))
    assert await states(kit, orphan_id) == (None, None, "settled")

    reports = await reconcile_all(kit, day)
    assert (f"clearing_house<->insured_agency:{INSURED}", "reverse_orphan", True) in repairs_of(reports)
    assert await states(kit, orphan_id) == (None, None, "reversed")
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(before)
    assert repairs_of(await reconcile_all(kit, day)) == []


async def test_a_cancel_that_stopped_half_way_is_completed_upstream(kit, timeline):
    day = "2026-05-08"
    timeline.at(day)
    member = await kit.new_member(INSURED)
    encounter_id = await open_stay(kit, member, day)
    settled = (await kit.treating(GUANGZHOU).Settle(ta.SettleRequest(
        request_id=kit.rid(), encounter_id=encounter_id, discharged_on=day))).settlement
    cancel_id = kit.rid()  # the insured agency cancelled; the clearing house and the agency crashed before
    await kit.insured(INSURED).CancelAdjudication(ia.CancelAdjudicationRequest(
        request_id=cancel_id, settlement_id=settled.settlement_id))
    assert await states(kit, settled.settlement_id) == ("settled", "settled", "cancelled")

    reports = await reconcile_all(kit, day)
    assert [(pair, action) for pair, action, done in repairs_of(reports) if done] == [
        (f"clearing_house<->insured_agency:{INSURED}", "finish_cancel"),
        (f"treating_agency:{GUANGZHOU}<->clearing_house", "finish_cancel")]
    assert await states(kit, settled.settlement_id) == ("cancelled", "cancelled", "cancelled")
    assert set(await kit.ledger(settled.settlement_id)) == {"settlement", "cancel"}
    retried = await kit.treating(GUANGZHOU).Cancel(ta.CancelRequest(request_id=cancel_id,
                                                                     settlement_id=settled.settlement_id))
    assert retried.settlement.status == types_pb2.SETTLEMENT_STATUS_CANCELLED, "the HIS's retry gets the cancel"
    assert repairs_of(await reconcile_all(kit, day)) == []


async def test_a_reversal_that_never_reached_downstream_is_driven_again(kit, timeline):
    day = "2026-05-11"
    timeline.at(day)
    member = await kit.new_member(INSURED)
    before = await kit.accumulators(member)
    encounter_id = await open_stay(kit, member, day)
    settle = ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on=day)
    settled = (await kit.treating(GUANGZHOU).Settle(settle)).settlement
    region = await start_region(GUANGZHOU, kit.stack.config.dsn(f"treating_{GUANGZHOU}"),
                                kit.stack.config.dsn(f"insured_{GUANGZHOU}"), f"127.0.0.1:{free_port()}",
                                transport=kit.stack.transport)
    address = f"127.0.0.1:{region.port}"
    try:
        error = await kit.refusal(kit.stack.treating(GUANGZHOU, address).Reverse(
            ta.ReverseRequest(request_id=kit.rid(), original_request_id=settle.request_id), timeout=5))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await region.stop()
    assert await states(kit, settled.settlement_id) == ("settled", "settled", "settled")

    reports = await reconcile_all(kit, day)
    assert (f"treating_agency:{GUANGZHOU}<->clearing_house", "finish_reversal", True) in repairs_of(reports)
    assert await states(kit, settled.settlement_id) == ("reversed", "reversed", "reversed")
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(before)
    assert repairs_of(await reconcile_all(kit, day)) == []


async def test_amounts_that_differ_are_reported_not_guessed_at(kit, timeline):
    day = "2026-05-12"
    timeline.at(day)
    member = await kit.new_member(INSURED)
    encounter_id = await open_stay(kit, member, day)
    settled = (await kit.treating(GUANGZHOU).Settle(ta.SettleRequest(
        request_id=kit.rid(), encounter_id=encounter_id, discharged_on=day))).settlement
    # Tamper with the treating agency's copy: the patient's share is 1 fen off.
    await (await kit.db(f"treating_{GUANGZHOU}")).execute(
        "UPDATE settlements SET psn_pay_fen = psn_pay_fen + 1, total_fen = total_fen + 1 WHERE settlement_id = $1",
        uuid.UUID(settled.settlement_id))
    reports = await reconcile_all(kit, day)
    assert (f"treating_agency:{GUANGZHOU}<->clearing_house", "report", False) in repairs_of(reports)
    assert await states(kit, settled.settlement_id) == ("settled", "settled", "settled"), "nothing is changed"


async def test_the_hospitals_reverse_what_they_never_learnt_the_fate_of(kit, timeline):
    day = "2026-08-28"
    timeline.at(day)
    member = await kit.new_member(INSURED)
    before = await kit.accumulators(member)
    lost = ta.SettleRequest(request_id=kit.rid(), encounter_id=await open_stay(kit, member, day), discharged_on=day)
    settled = (await kit.treating(GUANGZHOU).Settle(lost)).settlement  # it went through; the answer was lost
    never_arrived = kit.rid()  # a Settle that never reached the agency
    his = await kit.db("his")
    for request_id in (lost.request_id, never_arrived):  # the HIS's own record: no answer to either
        await his.execute(
            "INSERT INTO discharges (request_id, run_request_id, treating_region, insured_region, hospital_code, "
            "member_id, month, status, discharged_on, settlement_day, created_at) VALUES ($1, $2, $3, $4, $5, $6, "
            "'2026-08', 'unknown', $7, $7, now() - interval '1 hour')", uuid.UUID(request_id), uuid.uuid4(), GUANGZHOU,
            INSURED, H_GUANGZHOU, member.member_id, date.fromisoformat(day))

    answer = await kit.hospital_service().ReconcileWithAgencies(
        hp.ReconcileWithAgenciesRequest(day=day, pending_grace_s=GRACE_S))
    repairs = {(item.key, item.action, item.repaired) for report in answer.reports for item in report.repairs}
    assert repairs == {(lost.request_id, "reverse_stale_pending", True),
                       (never_arrived, "reverse_stale_pending", True)}
    assert await states(kit, settled.settlement_id) == ("reversed", "reversed", "reversed")
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(before)
    assert {row["status"] for row in await his.fetch(
        "SELECT status FROM discharges WHERE request_id = ANY($1::uuid[])",
        [uuid.UUID(lost.request_id), uuid.UUID(never_arrived)])} == {"reversed"}
    again = await kit.hospital_service().ReconcileWithAgencies(
        hp.ReconcileWithAgenciesRequest(day=day, pending_grace_s=GRACE_S))
    assert [item for report in again.reports for item in report.repairs] == []
    assert repairs_of(await reconcile_all(kit, day)) == [], "the agencies agree with each other too"


# ---------------------------------------------------------------------------------------------
# The day is the settlement day (issue 9 item 15)
# ---------------------------------------------------------------------------------------------

CROSS = f"treating_agency:{GUANGZHOU}<->clearing_house"
DOWNSTREAM = f"clearing_house<->insured_agency:{INSURED}"


async def test_a_stay_settled_the_day_after_its_discharge_is_reconciled_on_its_settlement_day(kit, timeline):
    """The issue's scenario: discharged on D, settled on D+1. The daily run over D+1 sees it — and finds and
    repairs a difference planted on it — while the run over D does not count it."""
    discharged, settled_on, cancelled_on = "2026-06-01", "2026-06-02", "2026-06-04"
    timeline.at(settled_on, hour=9)
    member = await kit.new_member(INSURED)
    encounter_id = await open_stay(kit, member, discharged)
    settled = (await kit.treating(GUANGZHOU).Settle(ta.SettleRequest(
        request_id=kit.rid(), encounter_id=encounter_id, discharged_on=discharged))).settlement

    reports = await reconcile_all(kit, settled_on)
    assert settled_counts(reports)[CROSS] == (1, 1), "the run over the settlement day sees it"
    assert settled_counts(reports)[DOWNSTREAM] == (1, 1)
    assert all(report.totals_agreed for report in reports) and repairs_of(reports) == []
    assert {report.day_key for report in reports} == {types_pb2.DAY_KEY_SETTLEMENT}
    before = await reconcile_all(kit, discharged)
    assert set(settled_counts(before).values()) == {(0, 0)}, "the run over the discharge day does not count it"
    assert repairs_of(before) == []
    by_discharge = await reconcile_all(kit, discharged, types_pb2.DAY_KEY_DISCHARGE)
    assert settled_counts(by_discharge)[CROSS] == (1, 1), "by discharge day, on request"
    assert {report.day_key for report in by_discharge} == {types_pb2.DAY_KEY_DISCHARGE}
    assert settled.claim.settlement_day == settled_on
    assert await settlement_days(kit, settled.settlement_id) == (settled_on,) * 3, "every party stored the day"

    # Two days later the cancel (撤销) reaches the clearing house and the insured agency, and the treating agency
    # crashes before recording it. The cancel belongs to its settlement's day: the run over the cancel's day
    # does not see it, the run over the settlement day finds it and completes the cancel upstream.
    timeline.at(cancelled_on, hour=10)
    cancel_id = kit.rid()
    await kit.clearing().CancelClaim(ch.CancelClaimRequest(request_id=cancel_id, settlement_id=settled.settlement_id,
                                                           reason="corrected bill"))
    assert await states(kit, settled.settlement_id) == ("settled", "cancelled", "cancelled")
    assert repairs_of(await reconcile_all(kit, cancelled_on)) == []
    reports = await reconcile_all(kit, settled_on)
    assert settled_counts(reports)[CROSS] == (1, 0), "the cancel moved its settlement day's totals downstream"
    assert repairs_of(reports) == [(CROSS, "finish_cancel", True)]
    assert await states(kit, settled.settlement_id) == ("cancelled", "cancelled", "cancelled")
    again = await reconcile_all(kit, settled_on)
    assert repairs_of(again) == [] and all(report.totals_agreed for report in again)
    assert set(settled_counts(again).values()) == {(0, 0)}, "cancelled: it stands nowhere, at both ends alike"
    logged = await (await kit.db(f"treating_{GUANGZHOU}")).fetch(
        "SELECT day::text, day_key, action FROM repairs WHERE key = $1", settled.settlement_id)
    assert [tuple(row) for row in logged] == [(settled_on, "settlement", "finish_cancel")]


async def test_a_pending_left_on_its_settlement_day_is_reversed_when_that_day_is_reconciled(kit, timeline):
    """A Settle that reached the treating agency late on day S (of a stay discharged days before) and never got
    further: the next morning's run over S reverses it; the runs over its discharge day and the next day do
    not touch it."""
    discharged, settled_on, next_day = "2026-06-08", "2026-06-10", "2026-06-11"
    timeline.at(settled_on, hour=23)
    member = await kit.new_member(INSURED)
    encounter_id = await open_stay(kit, member, discharged)
    request_id = await settle_cut_off(kit, encounter_id, discharged, f"127.0.0.1:{free_port()}")
    settlement_id = await settlement_of(kit, request_id)
    assert await states(kit, settlement_id) == ("pending", None, None)

    timeline.at(next_day, hour=8)
    for other in (discharged, next_day):
        reports = await reconcile_all(kit, other)
        assert repairs_of(reports) == [] and all(report.totals_agreed for report in reports), other
    assert await states(kit, settlement_id) == ("pending", None, None)
    reports = await reconcile_all(kit, settled_on)
    assert repairs_of(reports) == [(CROSS, "reverse_stale_pending", True)]
    assert [(t.clearing_type, t.pending) for t in next(r for r in reports if r.pair == CROSS).upstream_totals] == \
        [("cross_region", 1)], "3201 counts the pending on its day"
    assert await states(kit, settlement_id) == ("reversed", None, None)
    assert repairs_of(await reconcile_all(kit, settled_on)) == []


async def test_a_claim_that_crosses_midnight_between_hops_is_on_one_day_at_every_party(kit, timeline):
    """The treating agency records the settlement pending at 23:59; the clearing house and the insured agency
    record it after midnight, when the HIS retries. It is on the treating agency's day at every party, so the
    run over that day agrees on the totals, and the run over the next day has nothing."""
    day, next_day = "2026-06-15", "2026-06-16"
    timeline.at(day, hour=23)
    member = await kit.new_member(INSURED)
    encounter_id = await open_stay(kit, member, day)
    request_id = await settle_cut_off(kit, encounter_id, day, f"127.0.0.1:{free_port()}")
    settlement_id = await settlement_of(kit, request_id)
    timeline.at(next_day, hour=0)
    retried = await kit.treating(GUANGZHOU).Settle(ta.SettleRequest(request_id=request_id, encounter_id=encounter_id,
                                                                    discharged_on=day))
    assert retried.settlement.settlement_id == settlement_id
    assert await states(kit, settlement_id) == ("settled", "settled", "settled")
    assert await settlement_days(kit, settlement_id) == (day, day, day)

    reports = await reconcile_all(kit, day)
    assert all(report.totals_agreed for report in reports) and repairs_of(reports) == []
    assert settled_counts(reports)[CROSS] == (1, 1) and settled_counts(reports)[DOWNSTREAM] == (1, 1)
    later = await reconcile_all(kit, next_day)
    assert set(settled_counts(later).values()) == {(0, 0)} and repairs_of(later) == []


async def test_an_orphan_whose_upstream_record_is_on_another_day_is_reported_not_reversed(kit, timeline):
    """Rows from before the settlement day travelled in the claim got their day from when each party recorded
    them, so a claim that crossed midnight then can sit on two days. Downstream's line then looks like an
    orphan on its day; it is reported, and nothing that stands is reversed."""
    day = "2026-06-18"
    timeline.at(day, hour=12)
    member = await kit.new_member(INSURED)
    settled = (await kit.treating(GUANGZHOU).Settle(ta.SettleRequest(
        request_id=kit.rid(), encounter_id=await open_stay(kit, member, day), discharged_on=day))).settlement
    await (await kit.db(f"treating_{GUANGZHOU}")).execute(  # as a backfilled row of before would be
        "UPDATE settlements SET settlement_day = settlement_day - 1 WHERE settlement_id = $1",
        uuid.UUID(settled.settlement_id))
    reports = await reconcile_all(kit, day)
    assert repairs_of(reports) == [(CROSS, "reverse_orphan", False)]
    repair = next(item for report in reports for item in report.repairs)
    assert "2026-06-17" in repair.error and "not reversed" in repair.error
    assert await states(kit, settled.settlement_id) == ("settled", "settled", "settled"), "nothing is undone"
