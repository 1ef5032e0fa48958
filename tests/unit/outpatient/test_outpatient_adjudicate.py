"""One outpatient special-disease visit (SPEC §13.2, readings of §13.4), worked out by hand.

The policy of `opd_cases`: diabetes 起付线 200.00 yuan a year, 60 % at level 3, 3,000.00 yuan a year; dialysis no
起付线, 90 %, a 定额 of 6,000.00 yuan a month. The member is an employee filed as a long-term resident (no cut)
treated in 广州 (440100) and insured in 长沙 (430100), unless a test says otherwise.
"""

from __future__ import annotations

from datetime import date

import pytest
from opd_cases import (
    CANCER, DIABETES, DIALYSIS, in_scope, member, policy, recognised, special, visit, visit_bill, ytd,
)

from clearing.catalogue import parse_catalogue_csv
from clearing.classify import Reason
from clearing.errors import InvalidField, PreconditionFailed
from clearing.explain import render_en, render_zh
from clearing.member import Ytd
from clearing.outpatient.adjudicate import adjudicate_visit
from clearing.outpatient.member import SpecialYtd
from clearing.outpatient.quote import quote_visit
from clearing.outpatient.visit import visit_from_dict
from clearing.policy import Disease, FilingStatus, Scheme

DIABETES_POLICY = policy(DIABETES, DIALYSIS, CANCER)
DEDUCTIBLE_PAID = 20_000  # the diabetes 起付线 already met this year


def diabetes_visit(inscp_fen: int, before: dict, **kwargs):  # noqa: ANN003, ANN201
    return adjudicate_visit((in_scope(inscp_fen),), visit(Disease.DIABETES, **kwargs.pop("visit", {})),
                            kwargs.pop("member", member()), recognised(Disease.DIABETES),
                            kwargs.pop("policy", DIABETES_POLICY), kwargs.pop("ytd", Ytd()), before)


# ---- the annual limit -------------------------------------------------------------------------------------


def test_the_annual_limit_is_crossed_mid_visit() -> None:
    # 2,500.00 of the 3,000.00 paid; 2,000.00 in scope, no 起付线 left: 60 % = 1,200.00, of which only the
    # 500.00 the limit leaves is paid; the patient pays 1,500.00 and nothing of the limit is left.
    result = diabetes_visit(200_000, special(Disease.DIABETES, DEDUCTIBLE_PAID, 250_000))
    assert (result.deductible_fen, result.eligible_fen, result.ratio_bp) == (0, 200_000, 6000)
    assert (result.hifp_fen, result.fund_pay_fen, result.psn_pay_fen) == (50_000, 50_000, 150_000)
    assert (result.hifmi_fen, result.maf_fen) == (0, 0)
    assert result.limit_left_fen == 0
    assert result.special_after == SpecialYtd(DEDUCTIBLE_PAID, 300_000, "2026-03", 50_000)
    assert result.ytd_after == Ytd()  # no shared cap: the inpatient accumulators do not move
    # The next visit of the year finds nothing left.
    again = diabetes_visit(200_000, {Disease.DIABETES: result.special_after}, visit={"on": date(2026, 4, 2)})
    assert (again.fund_pay_fen, again.psn_pay_fen, again.limit_left_fen) == (0, 200_000, 0)
    assert again.special_after == SpecialYtd(DEDUCTIBLE_PAID, 300_000, "2026-04", 0)


def test_the_annual_limit_explanation_says_which_disease_which_limit_and_what_is_left() -> None:
    result = diabetes_visit(200_000, special(Disease.DIABETES, DEDUCTIBLE_PAID, 250_000))
    steps = {step.key: step for step in result.explanation}
    assert render_zh(steps["special_annual_limit"]) == (
        "糖尿病年度支付限额 3,000.00 元，本年度已支付 2,500.00 元，剩余 500.00 元，本次支付 500.00 元")
    assert render_en(steps["special_annual_limit"]) == (
        "diabetes annual limit 3,000.00, 2,500.00 paid this year, 500.00 left: pays 500.00")
    assert render_zh(steps["special_limit_left"]) == "本次结算后糖尿病年度支付限额剩余 0.00 元"
    assert render_en(steps["special_limit_left"]) == "after this visit 0.00 of the diabetes annual limit is left"
    assert render_zh(steps["special_disease"]) == "门诊慢特病：糖尿病（认定有效期 2026-01-01 至 长期），就诊日 2026-03-05"
    assert [step.key for step in result.explanation] == [
        "special_disease", "total", "inscp", "special_deductible", "special_ratio", "special_annual_limit",
        "special_limit_left", "hifp", "fund_pay", "psn_pay"]


def test_a_limit_of_zero_is_no_limit() -> None:
    # Cancer therapy: annual_limit_fen = 0, 80 %: 1,000,000.00 paid already and still 80 % of 5,000.00 = 4,000.00.
    result = adjudicate_visit((in_scope(500_000),), visit(Disease.CANCER_THERAPY), member(),
                              recognised(Disease.CANCER_THERAPY), DIABETES_POLICY, Ytd(),
                              special(Disease.CANCER_THERAPY, 0, 100_000_000))
    assert (result.fund_pay_fen, result.limit_left_fen) == (400_000, None)
    steps = {step.key: step for step in result.explanation}
    assert render_zh(steps["special_no_limit"]) == "恶性肿瘤门诊放化疗不设年度支付限额，本次支付 4,000.00 元"
    assert "special_limit_left" not in steps
    monthly = policy(DIALYSIS.replace("monthly_limit_fen = 600000", "monthly_limit_fen = 0"))
    result = adjudicate_visit((in_scope(1_000_000),), visit(Disease.DIALYSIS), member(), recognised(Disease.DIALYSIS),
                              monthly, Ytd(), special(Disease.DIALYSIS, 0, 5_000_000, "2026-03", 5_000_000))
    assert result.fund_pay_fen == 900_000
    assert render_en({step.key: step for step in result.explanation}["special_no_limit"]) == (
        "dialysis for uraemia has no monthly limit: pays 9,000.00")


# ---- the monthly 定额 --------------------------------------------------------------------------------------


def test_the_monthly_limit_and_a_new_month_resetting_it() -> None:
    # March: 5,500.00 of the 6,000.00 定额 paid. A 1,000.00 session at 90 % = 900.00, of which 500.00 is left.
    march = special(Disease.DIALYSIS, 0, 1_100_000, "2026-03", 550_000)
    first = adjudicate_visit((in_scope(100_000),), visit(Disease.DIALYSIS, on=date(2026, 3, 20)), member(),
                             recognised(Disease.DIALYSIS), DIABETES_POLICY, Ytd(), march)
    assert (first.fund_pay_fen, first.psn_pay_fen, first.limit_left_fen) == (50_000, 50_000, 0)
    assert first.special_after == SpecialYtd(0, 1_150_000, "2026-03", 600_000)
    steps = {step.key: step for step in first.explanation}
    assert render_zh(steps["special_monthly_limit"]) == (
        "尿毒症透析月度定额（2026-03）6,000.00 元，本月已支付 5,500.00 元，剩余 500.00 元，本次支付 500.00 元")
    assert render_en(steps["special_limit_left"]) == (
        "after this visit 0.00 of the dialysis for uraemia monthly limit for 2026-03 is left")
    # Later in March: nothing left.
    second = adjudicate_visit((in_scope(100_000),), visit(Disease.DIALYSIS, on=date(2026, 3, 27)), member(),
                              recognised(Disease.DIALYSIS), DIABETES_POLICY, Ytd(), {Disease.DIALYSIS: first.special_after})
    assert (second.fund_pay_fen, second.psn_pay_fen) == (0, 100_000)
    assert second.special_after == SpecialYtd(0, 1_150_000, "2026-03", 600_000)
    # 1 April: a new month, the whole 定额 again: 900.00, and 5,100.00 of April's left.
    april = adjudicate_visit((in_scope(100_000),), visit(Disease.DIALYSIS, on=date(2026, 4, 1)), member(),
                             recognised(Disease.DIALYSIS), DIABETES_POLICY, Ytd(), {Disease.DIALYSIS: second.special_after})
    assert (april.fund_pay_fen, april.limit_left_fen) == (90_000, 510_000)
    assert april.special_after == SpecialYtd(0, 1_240_000, "2026-04", 90_000)


def test_month_fields_follow_every_visit_also_of_an_annual_limit_disease() -> None:
    # §13.4: after any visit `month` is the visit's month and `month_paid_fen` that month's earlier pay + pay,
    # whatever the disease's limit. February's 100.00 does not count in March.
    before = special(Disease.DIABETES, DEDUCTIBLE_PAID, 10_000, "2026-02", 10_000)
    result = diabetes_visit(100_000, before)  # 60 % of 1,000.00
    assert result.special_after == SpecialYtd(DEDUCTIBLE_PAID, 70_000, "2026-03", 60_000)
    same_month = diabetes_visit(100_000, {Disease.DIABETES: result.special_after}, visit={"on": date(2026, 3, 31)})
    assert same_month.special_after == SpecialYtd(DEDUCTIBLE_PAID, 130_000, "2026-03", 120_000)
    # A visit that pays nothing still moves the month: March's pay is not April's.
    exhausted = diabetes_visit(100_000, special(Disease.DIABETES, DEDUCTIBLE_PAID, 300_000, "2026-03", 60_000),
                               visit={"on": date(2026, 4, 1)})
    assert exhausted.fund_pay_fen == 0
    assert exhausted.special_after == SpecialYtd(DEDUCTIBLE_PAID, 300_000, "2026-04", 0)


def test_accumulators_of_a_later_month_are_refused() -> None:
    with pytest.raises(InvalidField) as caught:
        adjudicate_visit((in_scope(100_000),), visit(Disease.DIALYSIS), member(), recognised(Disease.DIALYSIS),
                         DIABETES_POLICY, Ytd(), special(Disease.DIALYSIS, 0, 90_000, "2026-04", 90_000))
    assert caught.value.field == "member.ytd_special.dialysis.month"


# ---- the deductible ------------------------------------------------------------------------------------------


def test_the_yearly_deductible_is_taken_once_across_visits() -> None:
    # 起付线 200.00 a year. Visit 1: 150.00 in scope, all of it deducted, nothing paid.
    first = diabetes_visit(15_000, {})
    assert (first.deductible_fen, first.eligible_fen, first.fund_pay_fen, first.psn_pay_fen) == (15_000, 0, 0, 15_000)
    assert first.special_after == SpecialYtd(15_000, 0, "2026-03", 0)
    # Visit 2: 1,000.00; the 50.00 left of the 起付线, then 60 % of 950.00 = 570.00.
    second = diabetes_visit(100_000, {Disease.DIABETES: first.special_after})
    assert (second.deductible_fen, second.eligible_fen, second.fund_pay_fen) == (5_000, 95_000, 57_000)
    assert second.special_after == SpecialYtd(20_000, 57_000, "2026-03", 57_000)
    # Visit 3: nothing left to deduct: 60 % of 1,000.00.
    third = diabetes_visit(100_000, {Disease.DIABETES: second.special_after})
    assert (third.deductible_fen, third.fund_pay_fen) == (0, 60_000)
    steps = {step.key: step for step in second.explanation}
    assert render_zh(steps["special_deductible"]) == "糖尿病年度起付线 200.00 元，本年度尚余 50.00 元，本次计 50.00 元"


def test_out_of_scope_parts_are_the_patients() -> None:
    # 1,400.00 of which 300.00 全自费 and 100.00 先行自付: 60 % of the 1,000.00 in scope = 600.00; patient 800.00.
    result = adjudicate_visit((in_scope(100_000, fulamt_ownpay_fen=30_000, preselfpay_fen=10_000),),
                              visit(Disease.DIABETES), member(), recognised(Disease.DIABETES), DIABETES_POLICY, Ytd(),
                              special(Disease.DIABETES, DEDUCTIBLE_PAID))
    assert (result.total_fen, result.inscp_fen, result.fulamt_ownpay_fen, result.preselfpay_fen) == (
        140_000, 100_000, 30_000, 10_000)
    assert (result.fund_pay_fen, result.psn_pay_fen) == (60_000, 80_000)


# ---- recognition, coverage and the other refusals --------------------------------------------------------------


@pytest.mark.parametrize("recognitions", [
    (),
    recognised(Disease.HYPERTENSION),
    recognised(Disease.DIABETES, valid_to=date(2026, 3, 4)),  # ended the day before
    recognised(Disease.DIABETES, valid_from=date(2026, 3, 6)),  # starts the day after
])
def test_a_member_without_a_recognition_valid_on_the_day_is_refused(recognitions) -> None:  # noqa: ANN001
    with pytest.raises(PreconditionFailed) as caught:
        adjudicate_visit((in_scope(100_000),), visit(Disease.DIABETES), member(), recognitions, DIABETES_POLICY,
                         Ytd(), {})
    assert caught.value.subject == "member.special_diseases"


@pytest.mark.parametrize("recognitions", [
    recognised(Disease.DIABETES, valid_to=date(2026, 3, 5)),  # both ends inclusive
    recognised(Disease.DIABETES, valid_from=date(2026, 3, 5)),
    recognised(Disease.DIABETES, valid_from=date(2020, 1, 1), valid_to=date(2021, 1, 1))
    + recognised(Disease.DIABETES, valid_from=date(2026, 3, 1)),  # a renewed recognition
])
def test_a_recognition_valid_on_the_day_is_enough(recognitions) -> None:  # noqa: ANN001
    result = adjudicate_visit((in_scope(100_000),), visit(Disease.DIABETES), member(), recognitions, DIABETES_POLICY,
                              Ytd(), special(Disease.DIABETES, DEDUCTIBLE_PAID))
    assert result.fund_pay_fen == 60_000


def test_a_region_without_the_disease_refuses_the_visit() -> None:
    with pytest.raises(PreconditionFailed) as caught:
        adjudicate_visit((in_scope(100_000),), visit(Disease.DIALYSIS), member(), recognised(Disease.DIALYSIS),
                         policy(DIABETES), Ytd(), {})
    assert caught.value.subject == "outpatient_special.dialysis"


def test_the_refusals_come_in_the_spec_order() -> None:
    lines = (in_scope(100_000),)
    with pytest.raises(InvalidField) as wrong_region:  # even with no section and no recognition
        adjudicate_visit(lines, visit(Disease.DIALYSIS), member(region="440100"), (), policy(), Ytd(), {})
    assert wrong_region.value.field == "member.region"
    with pytest.raises(PreconditionFailed) as too_early:
        adjudicate_visit(lines, visit(Disease.DIALYSIS, on=date(2025, 12, 31)), member(), (), policy(), Ytd(), {})
    assert too_early.value.subject == "visit_on"
    employee_only = policy(DIABETES)
    employee_only = type(employee_only)(**{**{name: getattr(employee_only, name) for name in employee_only.__slots__},
                                           "schemes": {Scheme.EMPLOYEE: employee_only.schemes[Scheme.EMPLOYEE]}})
    with pytest.raises(InvalidField) as no_scheme:
        adjudicate_visit(lines, visit(Disease.DIALYSIS), member(scheme=Scheme.RESIDENT), (), employee_only, Ytd(), {})
    assert no_scheme.value.field == "member.scheme"
    with pytest.raises(PreconditionFailed) as no_section:
        adjudicate_visit(lines, visit(Disease.DIALYSIS), member(), (), employee_only, Ytd(), {})
    assert no_section.value.subject == "outpatient_special.dialysis"


# ---- the shared inpatient cap -----------------------------------------------------------------------------------


SHARED_DIALYSIS = DIALYSIS + "shares_inpatient_cap = true\n"


def test_a_shared_inpatient_cap_limits_the_pay_and_grows_the_inpatient_hifp() -> None:
    # The employee cap 400,000.00 with 399,800.00 paid on stays: of the 900.00 the 定额 allows, 200.00 is paid,
    # and the year's hifp reaches the cap. The admissions do not change for a visit.
    before = ytd(deductible_fen=120_000, eligible_fen=50_000_000, hifp_fen=39_980_000, burden_fen=10_000_000,
                 admissions=2)
    result = adjudicate_visit((in_scope(100_000),), visit(Disease.DIALYSIS), member(), recognised(Disease.DIALYSIS),
                              policy(SHARED_DIALYSIS), before, {})
    assert (result.fund_pay_fen, result.psn_pay_fen, result.limit_left_fen) == (20_000, 80_000, 580_000)
    assert result.ytd_after == ytd(deductible_fen=120_000, eligible_fen=50_000_000, hifp_fen=40_000_000,
                                   burden_fen=10_000_000, admissions=2)
    assert result.special_after == SpecialYtd(0, 20_000, "2026-03", 20_000)
    steps = {step.key: step for step in result.explanation}
    assert render_zh(steps["special_inpatient_cap"]) == (
        "与住院共用统筹基金年度限额 400,000.00 元，已支付 399,800.00 元，剩余 200.00 元，本次支付 200.00 元")
    assert render_en(steps["special_limit_left"]) == (
        "after this visit 5,800.00 of the dialysis for uraemia monthly limit for 2026-03 is left")


def test_without_sharing_the_inpatient_cap_is_not_touched() -> None:
    before = ytd(hifp_fen=39_980_000, admissions=2)
    result = adjudicate_visit((in_scope(100_000),), visit(Disease.DIALYSIS), member(), recognised(Disease.DIALYSIS),
                              DIABETES_POLICY, before, {})
    assert result.fund_pay_fen == 90_000
    assert result.ytd_after == before


def test_a_shared_cap_of_zero_is_no_cap_but_the_pay_still_counts() -> None:
    result = adjudicate_visit((in_scope(100_000),), visit(Disease.DIALYSIS), member(), recognised(Disease.DIALYSIS),
                              policy(SHARED_DIALYSIS, employee_cap_fen=0), ytd(hifp_fen=99_000_000), {})
    assert result.fund_pay_fen == 90_000
    assert result.ytd_after == ytd(hifp_fen=99_090_000)


# ---- the ratio: retired bonus and filing cut ----------------------------------------------------------------------


@pytest.mark.parametrize(("scheme", "retired", "filing", "treating_region", "ratio_bp", "pay_fen"), [
    (Scheme.EMPLOYEE, False, FilingStatus.RESIDENT, "440100", 6000, 60_000),
    (Scheme.EMPLOYEE, True, FilingStatus.RESIDENT, "440100", 6500, 65_000),  # + employee retired_bonus_bp 500
    (Scheme.RESIDENT, True, FilingStatus.RESIDENT, "440100", 6000, 60_000),  # a resident's 700 does not apply
    (Scheme.EMPLOYEE, False, FilingStatus.UNFILED, "440100", 4000, 40_000),  # − unfiled 2000
    (Scheme.EMPLOYEE, True, FilingStatus.TEMPORARY, "440100", 5500, 55_000),  # + 500 − 1000
    (Scheme.EMPLOYEE, False, FilingStatus.UNFILED, "430100", 6000, 60_000),  # in the member's own region: no cut
])
def test_the_retired_bonus_and_the_filing_cut(scheme, retired, filing, treating_region, ratio_bp, pay_fen) -> None:  # noqa: ANN001
    result = diabetes_visit(100_000, special(Disease.DIABETES, DEDUCTIBLE_PAID),
                            member=member(scheme=scheme, retired=retired, filing=filing),
                            visit={"treating_region": treating_region})
    assert (result.ratio_bp, result.fund_pay_fen) == (ratio_bp, pay_fen)


def test_the_ratio_is_clamped_once_after_the_adjustments() -> None:
    high = DIALYSIS.replace('"3" = 9000', '"3" = 9800')
    result = adjudicate_visit((in_scope(100_000),), visit(Disease.DIALYSIS), member(retired=True),
                              recognised(Disease.DIALYSIS), policy(high), Ytd(), {})
    assert (result.ratio_bp, result.fund_pay_fen) == (10_000, 100_000)  # 9800 + 500, not 103 %
    low = DIALYSIS.replace('"3" = 9000', '"3" = 1500')
    result = adjudicate_visit((in_scope(100_000),), visit(Disease.DIALYSIS), member(retired=True,
                              filing=FilingStatus.UNFILED), recognised(Disease.DIALYSIS), policy(low), Ytd(), {})
    assert (result.ratio_bp, result.fund_pay_fen) == (0, 0)  # 1500 + 500 − 2000


# ---- icd: restrictions judged by the disease's prefixes ------------------------------------------------------------

CATALOGUE = parse_catalogue_csv(
    "local_code,national_code,relation,kind,name,grade,selfpay_bp,price_cap_fen,restriction,valid_from,valid_to\n"
    'D0001,XA10BA02,equivalent,drug,二甲双胍,A,0,,"限糖尿病 icd:E11",2025-01-01,\n'
    'D0002,XA10BA02,equivalent,drug,二甲双胍缓释,A,0,,"icd:E11.9",2025-01-01,\n'
    'D0003,XL01XX01,equivalent,drug,吉非替尼,A,0,,"icd:C34",2025-01-01,\n'
    'D0004,XL01BC01,equivalent,drug,氟尿嘧啶,A,0,,"icd:c",2025-01-01,\n'
    'S0001,0031100001,equivalent,service,血液透析,A,0,,"icd:n18",2025-01-01,\n'
    'D0005,XA10BA02,equivalent,drug,普通药,A,0,,"限门诊",2025-01-01,\n', "440100")


def reasons_for(disease: str, *codes: str, diagnoses: list[str] | None = None) -> list[Reason | None]:
    lines = [{"line_id": str(index), "code": code, "qty": "1", "unit_price_fen": 1000, "amount_fen": 1000}
             for index, code in enumerate(codes)]
    extra = {} if diagnoses is None else {"diagnoses": diagnoses}
    the_visit = visit_from_dict(visit_bill(disease=disease, lines=lines, **extra))
    result = quote_visit(the_visit, CATALOGUE, member(), recognised(Disease(disease)), DIABETES_POLICY, Ytd(), {})
    return [item.reason for item in result.lines]


def test_an_icd_prefix_is_met_when_a_disease_prefix_starts_with_it() -> None:
    # diabetes ["E10" … "E14"]: icd:E11 is met ("E11" starts with it), icd:E11.9 is not (no prefix starts with
    # "E119"); a restriction without an icd: list is informational.
    assert reasons_for("diabetes", "D0001", "D0002", "D0005") == [None, Reason.RESTRICTED, None]
    # cancer ["C"]: icd:C34 is not met by the broad "C", icd:c is (case ignored).
    assert reasons_for("cancer_therapy", "D0003", "D0004") == [Reason.RESTRICTED, None]
    # dialysis ["N18.5", "N18.6", …]: icd:n18 is met, dots and case ignored; a diabetes drug is not.
    assert reasons_for("dialysis", "S0001", "D0001") == [None, Reason.RESTRICTED]


def test_the_bills_diagnoses_are_ignored() -> None:
    assert reasons_for("diabetes", "D0003", diagnoses=["C34.1"]) == [Reason.RESTRICTED]
