"""Days a party will not take, and lines a hospital takes back (issue 9 item 5).

* An admission, a discharge or a service day after today (Asia/Shanghai) is refused at every party that sees
  it: settled, a discharge next year would be adjudicated against that year's empty accumulators.
* A line dated before the admission is refused when it is uploaded, not at discharge, where it would make the
  encounter unsettlable.
* 退费: the HIS voids uploaded lines of an encounter that is not settled; they leave the bill and stay on record.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import treating_agency_pb2 as ta

from services.common.clock import shanghai_today

TREATING, INSURED = "440100", "610924"
H_GUANGZHOU = "H44010000001"
ADMITTED_ON, DISCHARGED_ON = "2026-03-02", "2026-03-06"
PARTIES = (f"treating_{TREATING}", "clearinghouse", f"insured_{INSURED}")


def tomorrow() -> str:
    return (shanghai_today() + timedelta(days=1)).isoformat()


def next_year() -> str:
    return shanghai_today().replace(month=1, day=10, year=shanghai_today().year + 1).isoformat()


async def test_an_admission_after_today_is_refused_and_nothing_is_recorded(kit):
    member = await kit.new_member(INSURED)
    for day in (tomorrow(), next_year()):
        before = await kit.counts(*PARTIES)
        error = await kit.refusal(kit.admit(H_GUANGZHOU, member, day))
        kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="admitted_on")
        assert "after today" in error.details()
        assert await kit.counts(*PARTIES) == before


async def test_a_discharge_after_today_is_refused_by_every_party_and_moves_no_accumulator(kit):
    member = await kit.new_member(INSURED, filing="resident")
    today = shanghai_today().isoformat()
    line = kit.bill_line("1", kit.plain_codes(TREATING)[0], "2", 150000, today)
    encounter_id = await kit.open_encounter(H_GUANGZHOU, member, [line], today)
    before = await kit.counts(*PARTIES)
    ytd = await kit.accumulators(member, year=shanghai_today().year + 1)
    for day in (tomorrow(), next_year()):
        for call in (kit.treating(TREATING).PreSettle(ta.PreSettleRequest(encounter_id=encounter_id, discharged_on=day)),
                     kit.treating(TREATING).Settle(ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id,
                                                                     discharged_on=day))):
            kit.assert_refused(await kit.refusal(call), grpc.StatusCode.INVALID_ARGUMENT, field="discharged_on")
    assert await kit.counts(*PARTIES) == before
    assert kit.ytd_dict(await kit.accumulators(member, year=shanghai_today().year + 1)) == kit.ytd_dict(ytd)

    # The clearing house and the insured agency refuse such a claim too, whoever sends it.
    quoted = await kit.treating(TREATING).PreSettle(ta.PreSettleRequest(encounter_id=encounter_id, discharged_on=today))
    claim = quoted.settlement.claim
    claim.settlement_id = kit.rid()
    claim.stay.discharged_on = next_year()
    error = await kit.refusal(kit.clearing().SettleClaim(ch.SettleClaimRequest(request_id=claim.settlement_id,
                                                                               claim=claim)))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="claim.stay.discharged_on")
    error = await kit.refusal(kit.insured(INSURED).Adjudicate(ia.AdjudicateRequest(request_id=claim.settlement_id,
                                                                                   claim=claim)))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="claim.stay.discharged_on")
    assert await kit.counts(*PARTIES) == before


async def test_a_line_dated_before_the_admission_or_after_today_is_refused_at_upload(kit):
    member = await kit.new_member(INSURED)
    admitted = await kit.admit(H_GUANGZHOU, member, ADMITTED_ON)
    code = kit.plain_codes(TREATING)[0]
    good = kit.bill_line("1", code, "1", 5000, ADMITTED_ON)
    for bad_day, reason in (("2026-03-01", "before the admission day 2026-03-02"), (tomorrow(), "after today")):
        before = await kit.counts(f"treating_{TREATING}")
        error = await kit.refusal(kit.treating(TREATING).UploadCharges(ta.UploadChargesRequest(
            request_id=kit.rid(), encounter_id=admitted.encounter_id,
            lines=[good, kit.bill_line("2", code, "1", 5000, bad_day)])))
        kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="lines[1].service_date")
        assert reason in error.details()
        assert await kit.counts(f"treating_{TREATING}") == before, "not even the good line"


async def test_voided_lines_leave_the_bill_and_their_ids_are_not_used_again(kit):
    member = await kit.new_member(INSURED, filing="resident")
    code = kit.plain_codes(TREATING)[0]
    lines = [kit.bill_line("1", code, "2", 150000, "2026-03-02"), kit.bill_line("2", code, "1", 90000, "2026-03-03"),
             kit.bill_line("3", code, "1", 70000, "2026-03-08")]  # after the discharge below: settling is refused
    encounter_id = await kit.open_encounter(H_GUANGZHOU, member, lines, ADMITTED_ON)
    treating = kit.treating(TREATING)
    error = await kit.refusal(treating.Settle(ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id,
                                                               discharged_on=DISCHARGED_ON)))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="lines[2].service_date")

    void = ta.VoidChargesRequest(request_id=kit.rid(), encounter_id=encounter_id, line_ids=["3", "2"],
                                 reason="退费: 药品退回")
    answer = await treating.VoidCharges(void)
    assert (answer.line_count, answer.total_fen, answer.voided_count, answer.voided_fen) == (1, 300000, 2, 160000)
    assert kit.same_bytes(answer, await treating.VoidCharges(void)), "a retry replays"
    conflict = await kit.refusal(treating.VoidCharges(ta.VoidChargesRequest(
        request_id=void.request_id, encounter_id=encounter_id, line_ids=["3"], reason=void.reason)))
    kit.assert_refused(conflict, grpc.StatusCode.ALREADY_EXISTS, field="line_ids")
    rows = await (await kit.db(f"treating_{TREATING}")).fetch(
        "SELECT line_id, voided_at IS NOT NULL AS voided, void_reason FROM charge_lines WHERE encounter_id = $1 "
        "ORDER BY line_id", uuid.UUID(encounter_id))
    assert [tuple(row) for row in rows] == [("1", False, None), ("2", True, "退费: 药品退回"), ("3", True, "退费: 药品退回")]

    before = await kit.counts(f"treating_{TREATING}")
    for line_ids, field, code_ in ((["2"], "line_ids[0]", "voided already"), (["9"], "line_ids[0]", "not a line"),
                                   (["1", "1"], "line_ids[1]", "twice"), ([], "line_ids", "at least one")):
        error = await kit.refusal(treating.VoidCharges(ta.VoidChargesRequest(
            request_id=kit.rid(), encounter_id=encounter_id, line_ids=line_ids)))
        kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field=field)
        assert code_ in error.details()
    error = await kit.refusal(treating.UploadCharges(ta.UploadChargesRequest(
        request_id=kit.rid(), encounter_id=encounter_id, lines=[kit.bill_line("2", code, "1", 100, "2026-03-04")])))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="lines[0].line_id")
    assert await kit.counts(f"treating_{TREATING}") == before

    quoted = await treating.PreSettle(ta.PreSettleRequest(encounter_id=encounter_id, discharged_on=DISCHARGED_ON))
    assert [line.line.line_id for line in quoted.settlement.claim.lines] == ["1"]
    settled = (await treating.Settle(ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id,
                                                      discharged_on=DISCHARGED_ON))).settlement
    assert settled.adjudication.split.total_fen == 300000
    error = await kit.refusal(treating.VoidCharges(ta.VoidChargesRequest(
        request_id=kit.rid(), encounter_id=encounter_id, line_ids=["1"])))
    kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="encounter_id")
