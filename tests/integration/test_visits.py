"""Outpatient special-disease visits online (门诊慢特病, SPEC §13, issue 14 items 2 and 5): RegisterVisit, the lines
of the visit day, PreSettle (2206, nothing moves) and Settle (2207), adjudicated under the member's accumulators
row lock with the disease's accumulators; cancel and reversal restore them exactly; refusals name the field; and
the offline quote of a visit equals its online settlement. Few visits, on the session stack."""

from __future__ import annotations

import asyncio
from datetime import date

import grpc
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

from clearing.member import YTD_FIELDS, Member, Ytd
from clearing.outpatient.member import Recognition, SpecialYtd
from clearing.outpatient.quote import VISIT_SPLIT_KEYS, quote_visit, visit_adjudication_json
from clearing.outpatient.visit import visit_from_dict
from clearing.policy import Disease, FilingStatus, Scheme
from services.common.regions import load_policy_book

CHANGSHA, KUNMING = "430100", "530100"
DIALYSIS = types_pb2.SPECIAL_DISEASE_DIALYSIS
DIABETES = types_pb2.SPECIAL_DISEASE_DIABETES


async def recognise(kit, member, disease=DIALYSIS, diagnosis="N18.500", valid_from="2026-01-01"):  # noqa: ANN001, ANN201
    await kit.insured(member.region).RecordSpecialDisease(ia.RecordSpecialDiseaseRequest(
        request_id=kit.rid(), member_id=member.member_id, recognition=types_pb2.SpecialDiseaseRecognition(
            disease=disease, valid_from=valid_from, diagnosis=diagnosis)))


async def register(kit, hospital_code, member, visit_on, disease=DIALYSIS, request_id=None):  # noqa: ANN001, ANN201
    return await kit.treating(hospital_code[1:7]).RegisterVisit(ta.RegisterVisitRequest(
        request_id=request_id or kit.rid(), hospital_code=hospital_code, visit_on=visit_on, disease=disease,
        patient=ta.Patient(insured_region=member.region, member_id=member.member_id, id_number=member.id_number,
                           name=member.name)))


async def open_visit(kit, hospital_code, member, visit_on, lines, disease=DIALYSIS) -> str:  # noqa: ANN001
    registered = await register(kit, hospital_code, member, visit_on, disease)
    await kit.treating(hospital_code[1:7]).UploadCharges(ta.UploadChargesRequest(
        request_id=kit.rid(), encounter_id=registered.encounter_id, lines=lines))
    return registered.encounter_id


def one_line(kit, region, visit_on, amount_fen, line_id="1") -> list[types_pb2.BillLine]:  # noqa: ANN001
    """One plain grade-A line (no cap, no restriction): all of it is in scope."""
    return [kit.bill_line(line_id, kit.plain_codes(region)[0], "1", amount_fen, visit_on)]


async def settle_visit(kit, hospital_code, member, visit_on, amount_fen, request_id=None):  # noqa: ANN001, ANN201
    encounter_id = await open_visit(kit, hospital_code, member, visit_on,
                                    one_line(kit, hospital_code[1:7], visit_on, amount_fen))
    answer = await kit.treating(hospital_code[1:7]).Settle(ta.SettleRequest(
        request_id=request_id or kit.rid(), encounter_id=encounter_id))
    return answer.settlement


async def special(kit, member, disease="dialysis", year=2026) -> SpecialYtd:  # noqa: ANN001
    row = await (await kit.db(f"insured_{member.region}")).fetchrow(
        "SELECT * FROM special_accumulators WHERE member_id = $1 AND year = $2 AND disease = $3",
        member.member_id, year, disease)
    return SpecialYtd() if row is None else SpecialYtd(row["deductible_fen"], row["paid_fen"], row["month"],
                                                        row["month_paid_fen"])


async def test_local_dialysis_visits_hand_worked_monthly_limit_cancel_and_reversal(kit):
    """长沙 dialysis: 85 % at a level-3 hospital, 5,500.00 a month (定额), sharing the inpatient cap. Visits of
    4,000.00: 3,400.00, then what October leaves (2,100.00), then November starts afresh (3,400.00)."""
    member = await kit.new_member(CHANGSHA)
    await recognise(kit, member)
    hospital = kit.hospital(CHANGSHA, level=3)
    first = await settle_visit(kit, hospital, member, "2026-10-05", 400000)
    assert first.local and first.claim.med_type == types_pb2.MED_TYPE_OUTPATIENT_SPECIAL
    assert first.claim.disease == DIALYSIS and list(first.claim.stay.diagnoses) == []
    assert (first.adjudication.split.fund_pay_fen, first.adjudication.split.psn_pay_fen) == (340000, 60000)
    assert first.adjudication.visit.limit_left_fen == 550000 - 340000
    second = await settle_visit(kit, hospital, member, "2026-10-07", 400000)
    assert second.adjudication.split.fund_pay_fen == 210000 and second.adjudication.visit.limit_left_fen == 0
    texts = [step.text_zh for step in second.adjudication.explanation]
    assert any("尿毒症透析" in text and "2026-10" in text for text in texts), texts
    # `clearing-admin settlement explain / show` of the visit: which disease, which limit, how much is left.
    from rich.console import Console

    from services.cli import online

    assert any("尿毒症透析" in line and "剩余 0.00 元" in line for line in online.explain(second, "zh"))
    assert any("dialysis" in line and "5,500.00" in line for line in online.explain(second, "en"))
    console = Console(record=True, width=200)
    online.show_settlement(console, second)
    shown = console.export_text()
    assert "门诊慢特病 尿毒症透析" in shown and "visit on 2026-10-07" in shown and "limit left after the visit ¥0.00" in shown
    third = await settle_visit(kit, hospital, member, "2026-11-02", 400000)
    assert third.adjudication.split.fund_pay_fen == 340000
    assert await special(kit, member) == SpecialYtd(0, 890000, "2026-11", 340000)
    assert (await kit.accumulators(member)).hifp_fen == 890000  # shares the inpatient cap
    assert (await kit.accumulators(member)).admissions == 0  # a visit is no admission

    # A late visit (October, after November's) is refused: visits of a disease settle in month order.
    late = await open_visit(kit, hospital, member, "2026-10-20", one_line(kit, CHANGSHA, "2026-10-20", 1000))
    kit.assert_refused(await kit.refusal(kit.treating(CHANGSHA).Settle(ta.SettleRequest(
        request_id=kit.rid(), encounter_id=late))), grpc.StatusCode.FAILED_PRECONDITION, subject="visit_on")

    # Cancel the second visit (a later one settled since): its pay comes off the year, not off November.
    await kit.treating(CHANGSHA).Cancel(ta.CancelRequest(request_id=kit.rid(), settlement_id=second.settlement_id,
                                                         reason="wrong patient"))
    assert await special(kit, member) == SpecialYtd(0, 680000, "2026-11", 340000)
    assert (await kit.accumulators(member)).hifp_fen == 680000

    # A fourth visit, then its reversal (冲正): everything exactly as before it.
    before, ytd_before = await special(kit, member), kit.ytd_dict(await kit.accumulators(member))
    request_id = kit.rid()
    fourth = await settle_visit(kit, hospital, member, "2026-11-04", 400000, request_id=request_id)
    assert fourth.adjudication.split.fund_pay_fen == 550000 - 340000
    reversed_ = await kit.treating(CHANGSHA).Reverse(ta.ReverseRequest(
        request_id=kit.rid(), original_request_id=request_id, reason="timeout"))
    assert reversed_.outcome == types_pb2.REVERSAL_OUTCOME_REVERSED
    assert await special(kit, member) == before
    assert kit.ytd_dict(await kit.accumulators(member)) == ytd_before


async def test_pre_settle_moves_nothing_and_refusals_name_the_field(kit):
    member = await kit.new_member(CHANGSHA)
    hospital = kit.hospital(CHANGSHA, level=3)
    encounter_id = await open_visit(kit, hospital, member, "2026-10-05", one_line(kit, CHANGSHA, "2026-10-05", 1000))
    stub = kit.treating(CHANGSHA)
    before = await kit.counts("insured_430100", "treating_430100")
    # No recognition of the disease valid on the visit day: refused, nothing recorded anywhere.
    for call in (stub.PreSettle(ta.PreSettleRequest(encounter_id=encounter_id)),
                 stub.Settle(ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id))):
        kit.assert_refused(await kit.refusal(call), grpc.StatusCode.FAILED_PRECONDITION,
                           subject="member.special_diseases")
    after = await kit.counts("insured_430100", "treating_430100")
    assert {key: value for key, value in after.items() if key[0] == "insured_430100"} == \
        {key: value for key, value in before.items() if key[0] == "insured_430100"}

    await recognise(kit, member, valid_from="2026-10-01")
    quoted = await stub.PreSettle(ta.PreSettleRequest(encounter_id=encounter_id))
    assert quoted.settlement.adjudication.split.fund_pay_fen == 850
    assert await special(kit, member) == SpecialYtd()  # a quote moves nothing
    for request, field in [
        (ta.PreSettleRequest(encounter_id=encounter_id, discharged_on="2026-10-06"), "discharged_on"),
        (ta.PreSettleRequest(encounter_id=encounter_id, diagnoses=["N18.5"]), "diagnoses"),
        (ta.PreSettleRequest(encounter_id=encounter_id, procedures=["39.9501"]), "procedures"),  # no 病案首页
    ]:
        kit.assert_refused(await kit.refusal(stub.PreSettle(request)), grpc.StatusCode.INVALID_ARGUMENT, field)
    # A line of another day than the visit's.
    kit.assert_refused(await kit.refusal(stub.UploadCharges(ta.UploadChargesRequest(
        request_id=kit.rid(), encounter_id=encounter_id, lines=one_line(kit, CHANGSHA, "2026-10-04", 10, "2")))),
        grpc.StatusCode.INVALID_ARGUMENT, "lines[0].service_date")
    audited = await stub.AuditBill(ta.AuditBillRequest(encounter_id=encounter_id))  # 事前 advice on a visit too
    assert audited.line_count == 1
    settled = await stub.Settle(ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id,
                                                 discharged_on="2026-10-05"))
    assert settled.settlement.adjudication.split.fund_pay_fen == 850


async def test_register_visit_is_idempotent_and_refuses_bad_input(kit):
    member = await kit.new_member(CHANGSHA)
    hospital = kit.hospital(CHANGSHA)
    request_id = kit.rid()
    first = await register(kit, hospital, member, "2026-10-05", request_id=request_id)
    assert kit.same_bytes(first, await register(kit, hospital, member, "2026-10-05", request_id=request_id))
    kit.assert_refused(await kit.refusal(register(kit, hospital, member, "2026-10-06", request_id=request_id)),
                       grpc.StatusCode.ALREADY_EXISTS)
    before = await kit.counts("treating_430100")
    for call, field in [
        (register(kit, hospital, member, "2026-10-05", disease=types_pb2.SPECIAL_DISEASE_UNSPECIFIED), "disease"),
        (register(kit, hospital, member, "2026-13-01"), "visit_on"),
        (register(kit, hospital, member, "2099-01-01"), "visit_on"),
    ]:
        kit.assert_refused(await kit.refusal(call), grpc.StatusCode.INVALID_ARGUMENT, field)
    assert await kit.counts("treating_430100") == before


async def test_two_visits_of_one_member_at_once_never_take_the_same_limit(kit):
    """Two 长沙 dialysis visits of one member in two regions at the same moment: 3,400.00 and what is left
    (2,100.00), in either order, never 3,400.00 twice."""
    member = await kit.new_member(CHANGSHA)
    await recognise(kit, member)
    settled = await asyncio.gather(
        settle_visit(kit, kit.hospital(CHANGSHA, level=3), member, "2026-09-10", 400000),
        settle_visit(kit, kit.hospital(CHANGSHA, level=3), member, "2026-09-11", 400000))
    assert sorted(item.adjudication.split.fund_pay_fen for item in settled) == [210000, 340000]
    assert await special(kit, member) == SpecialYtd(0, 550000, "2026-09", 550000)


def offline_member(member) -> Member:  # noqa: ANN001 - the conftest's Member
    return Member(region=member.region, member_id=member.member_id, scheme=Scheme(member.scheme),
                  retired=member.retired, poverty=member.poverty, assistance=None, filing=FilingStatus(member.filing))


async def test_offline_quote_equals_online_settlement_of_visits(kit):
    """Visits of 长沙 members at 昆明 hospitals (cross-region, no agreement: the treating rule) and at home, with generated lines (restricted and
    grade-B rows included): the quote of each, run in-process, equals the online settlement."""
    import random

    from services.datagen.bills import generate_bill

    cases = [(KUNMING, "employee", True, "resident", "diabetes", DIABETES, "E11.900"),
             (KUNMING, "resident", False, None, "dialysis", DIALYSIS, "N18.500"),
             (CHANGSHA, "employee", False, None, "diabetes", DIABETES, "E11.900")]
    for index, (treating, scheme, retired, filing, key, disease, diagnosis) in enumerate(cases):
        member = await kit.new_member(CHANGSHA, scheme=scheme, retired=retired, filing=filing,
                                      filing_region=KUNMING if filing else "")
        await recognise(kit, member, disease=disease, diagnosis=diagnosis)
        for day in ("2026-08-03", "2026-08-17"):
            code, level = random.Random(index).choice(kit.hospitals(treating))
            bill = generate_bill(100 + index, kit.catalogue_rows(treating), treating, code, level, date.fromisoformat(day))
            lines = [dict(line, service_date=day) for line in bill["lines"]][:12]
            visit = visit_from_dict({"kind": "outpatient_special", "disease": key, "region": treating,
                                     "hospital": {"code": code, "level": level}, "visit_on": day, "lines": lines})
            ytd = await kit.accumulators(member)
            expected = visit_adjudication_json(quote_visit(
                visit, kit.catalogue(treating), offline_member(member),
                (Recognition(Disease(key), date(2026, 1, 1), None),), load_policy_book(CHANGSHA).on(visit.visit_on),
                Ytd(*(getattr(ytd, name) for name in YTD_FIELDS)), {Disease(key): await special(kit, member, key)}))
            encounter_id = await open_visit(kit, code, member, day, kit.lines_from_bill({"lines": lines}), disease)
            settled = (await kit.treating(treating).Settle(ta.SettleRequest(
                request_id=kit.rid(), encounter_id=encounter_id))).settlement
            adjudication = settled.adjudication
            assert settled.local is (treating == CHANGSHA)
            assert {key_: getattr(adjudication.split, key_) for key_ in VISIT_SPLIT_KEYS} == \
                {key_: expected[key_] for key_ in VISIT_SPLIT_KEYS}
            assert [(item.line.line_id, item.inscp_fen) for item in adjudication.lines] == \
                [(item["line_id"], item["inscp_fen"]) for item in expected["lines"]]
            assert kit.ytd_dict(adjudication.ytd_after) == expected["ytd_after"]
            after = adjudication.visit.special_after
            assert {"deductible_fen": after.deductible_fen, "paid_fen": after.paid_fen, "month": after.month or None,
                    "month_paid_fen": after.month_paid_fen} == expected["ytd_special_after"]
            assert [(step.step, step.amount_fen) for step in adjudication.explanation] == \
                [(step["step"], step["amount_fen"]) for step in expected["explanation"]]


async def test_visits_are_their_own_clearing_type_in_reconciliation_statements_and_payouts(kit):
    """A cross-region visit (长沙 member at a 昆明 hospital) is med_type 14 in the 3201 totals and 3202 lines at the
    treating agency, the clearing house and the insured agency, which agree; in the clearing house's statement
    figures and in the treating agency's payout list it is counted apart from the stays."""
    from services.clearinghouse import store as clearing_store
    from services.common.clock import clearing_month, now_utc, shanghai_today

    member = await kit.new_member(CHANGSHA, filing="resident", filing_region=KUNMING)
    await recognise(kit, member, disease=DIABETES, diagnosis="E11.900")
    hospital = kit.hospital(KUNMING, level=3)
    month = clearing_month(now_utc())
    statement_before = await clearing_store.statement_totals(await kit.db("clearinghouse"), [month], CHANGSHA)
    payouts_before = await kit.treating(KUNMING).ListPayouts(ta.ListPayoutsRequest(month=month))
    encounter_id = await open_visit(kit, hospital, member, "2026-11-02", one_line(kit, KUNMING, "2026-11-02", 50000),
                                    DIABETES)
    settled = (await kit.treating(KUNMING).Settle(ta.SettleRequest(request_id=kit.rid(),
                                                                   encounter_id=encounter_id))).settlement
    fund_fen = settled.adjudication.split.fund_pay_fen
    assert not settled.local and fund_fen > 0
    today = shanghai_today().isoformat()

    treating = [item.line async for item in kit.treating(KUNMING).StreamDailyDetail(ta.StreamDailyDetailRequest(
        day=today, hospital_code=hospital))]
    mine = [line for line in treating if line.settlement_id == settled.settlement_id]
    assert [line.med_type for line in mine] == [types_pb2.MED_TYPE_OUTPATIENT_SPECIAL]
    totals = (await kit.treating(KUNMING).GetDailyTotals(ta.GetDailyTotalsRequest(day=today,
                                                                                  hospital_code=hospital))).totals
    visits = [item for item in totals if item.med_type == types_pb2.MED_TYPE_OUTPATIENT_SPECIAL]
    assert [item.clearing_type for item in visits] == ["cross_region"]
    assert visits[0].fund_pay_fen == sum(line.fund_pay_fen for line in treating if line.status ==
                                         types_pb2.SETTLEMENT_STATUS_SETTLED and line.med_type == 14 and not line.local)
    assert all(item.med_type == types_pb2.MED_TYPE_INPATIENT for item in totals if item not in visits)
    claims = [item.line async for item in kit.clearing().StreamClaimDailyDetail(ch.StreamClaimDailyDetailRequest(
        day=today, treating_region=KUNMING, insured_region=CHANGSHA))]
    assert [line.med_type for line in claims if line.settlement_id == settled.settlement_id] == [14]
    adjudications = [item.line async for item in kit.insured(CHANGSHA).StreamAdjudicationDailyDetail(
        ia.StreamAdjudicationDailyDetailRequest(day=today, treating_region=KUNMING))]
    assert [line.med_type for line in adjudications if line.settlement_id == settled.settlement_id] == [14]
    reports = (await kit.treating(KUNMING).Reconcile(ta.ReconcileRequest(day=today))).reports
    assert not [repair for report in reports for repair in report.repairs if repair.key == settled.settlement_id]

    statement = await clearing_store.statement_totals(await kit.db("clearinghouse"), [month], CHANGSHA)
    assert statement["visit_owed_by_fen"] - statement_before["visit_owed_by_fen"] == fund_fen
    assert statement["visit_entries_as_insured"] - statement_before["visit_entries_as_insured"] == 1
    assert statement["owed_by_fen"] - statement_before["owed_by_fen"] == fund_fen  # visits are in the totals too
    payouts = await kit.treating(KUNMING).ListPayouts(ta.ListPayoutsRequest(month=month))

    def visit_fen(answer) -> int:  # noqa: ANN001
        return sum(item.outpatient_special_fen for item in answer.payouts if item.hospital_code == hospital)

    assert visit_fen(payouts) - visit_fen(payouts_before) == fund_fen


async def test_the_his_simulator_runs_a_month_of_visits_of_the_members_enrolment_recognised(kit):
    """Enrolment recorded the recognitions (services/datagen/visits.py); RunVisits settles October's first visits of
    those patients at their own hospitals (dialysis on its weekdays), and GetSummary shows them by disease and insured
    region apart from the stays. A second run of the same request settles nothing twice."""
    from clearinghouse.v1 import hospital_pb2 as hp

    from services.common.regions import load_regions
    from services.datagen.visits import special_patients, visit_days

    regions = sorted(load_regions())
    patients = [item for region in regions for item in special_patients(region, 30, kit.seed, regions)]
    assert patients, "the test stack's members include recognised patients"
    request = hp.RunVisitsRequest(request_id=kit.rid(), month="2026-10", count=25, concurrency=4)
    progress = [item async for item in kit.hospital_service().RunVisits(request)]
    assert progress[-1].done == progress[-1].total == 25 and progress[-1].failed == 0
    summary = await kit.hospital_service().GetSummary(hp.GetSummaryRequest(month="2026-10",
                                                                           run_request_id=request.request_id))
    assert sum(item.visits for item in summary.visits) == 25 and not summary.pairs
    assert all(item.fund_pay_fen > 0 for item in summary.visits)
    first_days = sorted(day for patient in patients for day in visit_days(patient, date(2026, 10, 1),
                                                                          date(2026, 10, 31)))[:25]
    rows = await (await kit.db("his")).fetch(
        "SELECT discharged_on, med_type, disease FROM discharges WHERE run_request_id = $1 ORDER BY discharged_on",
        __import__("uuid").UUID(request.request_id))
    assert [row["discharged_on"] for row in rows] == first_days and {row["med_type"] for row in rows} == {14}
    again = [item async for item in kit.hospital_service().RunVisits(request)]
    assert again[-1].failed == 0
    assert await (await kit.db("his")).fetchval("SELECT count(*) FROM discharges WHERE run_request_id = $1",
                                                __import__("uuid").UUID(request.request_id)) == 25


async def test_a_cross_region_visit_is_quoted_settled_and_cancelled_through_the_clearing_house(kit):
    """A 长沙 dialysis patient at a 昆明 hospital: PreSettle (2206) through the clearing house's QuoteClaim moves
    nothing, Settle pays what it quoted, Cancel (撤销) through CancelClaim gives the disease's accumulators back."""
    member = await kit.new_member(CHANGSHA, filing="resident", filing_region=KUNMING)
    await recognise(kit, member)
    hospital = kit.hospital(KUNMING, level=3)
    encounter_id = await open_visit(kit, hospital, member, "2026-11-03", one_line(kit, KUNMING, "2026-11-03", 200000))
    quoted = (await kit.treating(KUNMING).PreSettle(ta.PreSettleRequest(encounter_id=encounter_id))).settlement
    assert not quoted.local and quoted.claim.med_type == types_pb2.MED_TYPE_OUTPATIENT_SPECIAL
    assert await special(kit, member) == SpecialYtd()
    settled = (await kit.treating(KUNMING).Settle(ta.SettleRequest(request_id=kit.rid(),
                                                                   encounter_id=encounter_id))).settlement
    assert settled.adjudication.split == quoted.adjudication.split
    pay = settled.adjudication.split.fund_pay_fen
    assert pay == 170000  # 长沙 dialysis at level 3: 85 %, a resident filing takes no cut
    assert await special(kit, member) == SpecialYtd(0, pay, "2026-11", pay)
    cancelled = (await kit.treating(KUNMING).Cancel(ta.CancelRequest(
        request_id=kit.rid(), settlement_id=settled.settlement_id, reason="entered twice"))).settlement
    assert cancelled.status == types_pb2.SETTLEMENT_STATUS_CANCELLED
    assert await special(kit, member) == SpecialYtd()
    assert (await kit.accumulators(member)).hifp_fen == 0
