"""Properties of the outpatient special-disease visit (SPEC §13.2, §13.4) over random policies, members,
accumulators and visits: the parts add up to the total, the fund never pays more than a limit leaves, and the
accumulators after a visit are those before plus the visit.

Self-contained like test_core_properties.py; repeatable (`derandomize=True`) and bounded.
"""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.bill import BillLine
from clearing.classify import LineClass, Reason
from clearing.explain import render_en, render_zh
from clearing.member import Member, Ytd
from clearing.money import BP_WHOLE
from clearing.outpatient.adjudicate import VisitAdjudication, VisitFacts, adjudicate_visit
from clearing.outpatient.member import Recognition, SpecialYtd, month_of
from clearing.policy import (
    Band, Disease, FilingStatus, Policy, Scheme, SchemePolicy, SpecialDiseasePolicy,
)

CORE = settings(max_examples=200, derandomize=True, deadline=None, database=None)
TREATING_REGION, INSURED_REGION = "440100", "430100"
YEAR_START = date(2026, 1, 1)

# Plain integers rarely reach the ends; the clamp to 0–10000 needs them.
ratios_bp = st.one_of(st.integers(0, BP_WHOLE), st.sampled_from([0, 500, 9000, 9800, BP_WHOLE]))
limits_fen = st.one_of(st.just(0), st.integers(1, 1_000_000))  # 0 = no limit


@st.composite
def sections(draw) -> SpecialDiseasePolicy:
    monthly = draw(st.booleans())
    limit_fen = draw(limits_fen)
    return SpecialDiseasePolicy(
        icd_prefixes=("N18",), deductible_fen=draw(st.integers(0, 60_000)),
        ratio_bp={level: draw(ratios_bp) for level in (1, 2, 3)},
        annual_limit_fen=None if monthly else limit_fen, monthly_limit_fen=limit_fen if monthly else None,
        shares_inpatient_cap=draw(st.booleans()))


@st.composite
def policies(draw, disease: Disease) -> Policy:
    schemes = {scheme: SchemePolicy(
        annual_cap_fen=draw(st.one_of(st.just(0), st.integers(1, 5_000_000))), annual_deductible_cap_fen=0,
        retired_bonus_bp=draw(st.one_of(st.integers(0, 2000), st.just(1000))), deductible_fen={1: 0, 2: 0, 3: 0},
        bands=(Band(None, {1: 9000, 2: 9000, 3: 9000}),), critical=None) for scheme in Scheme}
    filing = draw(st.one_of(st.none(), st.fixed_dictionaries({status: ratios_bp for status in FilingStatus})))
    return Policy(INSURED_REGION, "测试", YEAR_START, schemes, filing, None, None, {disease: draw(sections())})


@st.composite
def members(draw) -> Member:
    return Member(INSURED_REGION, "M001", draw(st.sampled_from(list(Scheme))), draw(st.booleans()), draw(st.booleans()),
                  None, draw(st.sampled_from(list(FilingStatus))))


def months_up_to(day: date) -> list[str]:
    return [f"2026-{month:02d}" for month in range(1, day.month + 1)]


@st.composite
def befores(draw, day: date) -> SpecialYtd:
    """Accumulators of the year so far, their month never after the visit's."""
    month = draw(st.one_of(st.none(), st.sampled_from(months_up_to(day))))
    paid_fen = draw(st.integers(0, 1_500_000))
    return SpecialYtd(draw(st.integers(0, 80_000)), paid_fen, month,
                      0 if month is None else draw(st.integers(0, paid_fen)))


def line(index: int, inscp_fen: int, selfpay_fen: int, day: date) -> LineClass:
    """A line in scope for `inscp_fen` and self-paid (as grade C) for `selfpay_fen`."""
    amount_fen = inscp_fen + selfpay_fen
    bill_line = BillLine(str(index), "X000", 10_000, amount_fen, amount_fen, day)
    return LineClass(bill_line, TREATING_REGION, "X000", "N1", None, None, None, "item", 0, None, selfpay_fen, 0, 0,
                     inscp_fen, Reason.GRADE_C if selfpay_fen else None)


@st.composite
def visit_lines(draw, day: date) -> tuple[LineClass, ...]:
    count = draw(st.integers(1, 4))
    return tuple(line(index, draw(st.integers(0, 400_000)), draw(st.integers(0, 50_000)), day) for index in range(count))


@st.composite
def cases(draw):  # noqa: ANN201 - (lines, facts, member, recognitions, policy, ytd, special)
    disease = draw(st.sampled_from(list(Disease)))
    day = YEAR_START + timedelta(days=draw(st.integers(0, 364)))
    facts = VisitFacts(draw(st.sampled_from([TREATING_REGION, INSURED_REGION])), draw(st.sampled_from([1, 2, 3])),
                       day, disease)
    ytd = Ytd(hifp_fen=draw(st.integers(0, 6_000_000)), admissions=draw(st.integers(0, 5)))
    special = {disease: draw(befores(day))} if draw(st.booleans()) else {}  # a missing entry means zeros
    return (draw(visit_lines(day)), facts, draw(members()), (Recognition(disease, YEAR_START, None),),
            draw(policies(disease)), ytd, special)


def half_up(numerator: int, denominator: int) -> int:
    """round_half_up by Fraction, independent of clearing.money."""
    exact = Fraction(numerator, denominator)
    floor = exact.numerator // exact.denominator
    return floor + 1 if exact - floor >= Fraction(1, 2) else floor


@given(cases())
@CORE
def test_totals_equal_parts_and_the_fund_stays_within_every_limit(case) -> None:  # noqa: ANN001
    lines, facts, member, recognitions, policy, ytd, special = case
    result = adjudicate_visit(lines, facts, member, recognitions, policy, ytd, special)
    section = policy.outpatient_special[facts.disease]
    before = special.get(facts.disease, SpecialYtd())
    # totals equal parts
    assert result.total_fen == sum(item.line.amount_fen for item in lines)
    assert result.inscp_fen == sum(item.inscp_fen for item in lines)
    assert result.inscp_fen + result.fulamt_ownpay_fen + result.overlmt_selfpay_fen + result.preselfpay_fen == \
        result.total_fen
    assert result.fund_pay_fen == result.hifp_fen + result.hifmi_fen + result.maf_fen == result.hifp_fen
    assert result.hifmi_fen == result.maf_fen == 0
    assert result.fund_pay_fen + result.psn_pay_fen == result.total_fen
    assert result.eligible_fen == result.inscp_fen - result.deductible_fen
    assert min(result.deductible_fen, result.eligible_fen, result.fund_pay_fen, result.psn_pay_fen) >= 0
    # the fund never pays more than the ratio gives, nor than any limit leaves
    assert result.fund_pay_fen <= half_up(result.eligible_fen * result.ratio_bp, BP_WHOLE) <= result.eligible_fen
    assert result.deductible_fen <= max(0, section.deductible_fen - before.deductible_fen)
    if section.annual_limit_fen:
        assert result.fund_pay_fen <= max(0, section.annual_limit_fen - before.paid_fen)
    if section.monthly_limit_fen:
        month_paid_fen = before.month_paid_fen if before.month == month_of(facts.visit_on) else 0
        assert result.fund_pay_fen <= max(0, section.monthly_limit_fen - month_paid_fen)
    cap_fen = policy.schemes[member.scheme].annual_cap_fen
    if section.shares_inpatient_cap and cap_fen:
        assert result.fund_pay_fen <= max(0, cap_fen - ytd.hifp_fen)
    # the ratio: level + retired employee's bonus − filing cut (none in the member's region), clamped once
    bonus = policy.schemes[member.scheme].retired_bonus_bp if member.retired and member.scheme is Scheme.EMPLOYEE else 0
    cut = 0 if facts.treating_region == INSURED_REGION or policy.filing_cut_bp is None \
        else policy.filing_cut_bp[member.filing]
    assert result.ratio_bp == min(BP_WHOLE, max(0, section.ratio_bp[facts.hospital_level] + bonus - cut))
    # every step renders in both languages
    assert all(render_zh(step) and render_en(step) for step in result.explanation)


@given(cases())
@CORE
def test_the_accumulators_after_are_those_before_plus_this_visit(case) -> None:  # noqa: ANN001
    lines, facts, member, recognitions, policy, ytd, special = case
    result = adjudicate_visit(lines, facts, member, recognitions, policy, ytd, special)
    before = special.get(facts.disease, SpecialYtd())
    month = month_of(facts.visit_on)
    assert result.special_before == before
    assert result.special_after.deductible_fen == before.deductible_fen + result.deductible_fen
    assert result.special_after.paid_fen == before.paid_fen + result.fund_pay_fen
    assert result.special_after.month == month
    earlier_fen = before.month_paid_fen if before.month == month else 0
    assert result.special_after.month_paid_fen == earlier_fen + result.fund_pay_fen
    shared = policy.outpatient_special[facts.disease].shares_inpatient_cap
    assert result.ytd_after == Ytd(**{**ytd.as_dict(), "hifp_fen": ytd.hifp_fen + (result.fund_pay_fen if shared else 0)})
    assert result.ytd_after.admissions == ytd.admissions  # a visit is no admission
    if result.limit_left_fen is not None:
        assert result.limit_left_fen >= 0


@given(st.data())
@settings(CORE, max_examples=50)
def test_a_year_of_visits_never_pays_more_than_the_limits(data) -> None:  # noqa: ANN001
    """Visits in day order, each starting from the accumulators the one before left: the year's deductible, the
    year's pay and each month's pay stay within the section's figures."""
    disease = data.draw(st.sampled_from(list(Disease)))
    policy = data.draw(policies(disease))
    member = data.draw(members())
    section = policy.outpatient_special[disease]
    days = sorted(data.draw(st.lists(st.integers(0, 364), min_size=1, max_size=12)))
    special: dict[Disease, SpecialYtd] = {}
    ytd = Ytd()
    paid_by_month: dict[str, int] = {}
    results: list[VisitAdjudication] = []
    for offset in days:
        day = YEAR_START + timedelta(days=offset)
        result = adjudicate_visit(data.draw(visit_lines(day)), VisitFacts(TREATING_REGION, 3, day, disease), member,
                                  (Recognition(disease, YEAR_START, None),), policy, ytd, special)
        special, ytd = {disease: result.special_after}, result.ytd_after
        paid_by_month[month_of(day)] = paid_by_month.get(month_of(day), 0) + result.fund_pay_fen
        results.append(result)
    assert sum(result.deductible_fen for result in results) <= section.deductible_fen
    assert special[disease].paid_fen == sum(result.fund_pay_fen for result in results)
    if section.annual_limit_fen:
        assert special[disease].paid_fen <= section.annual_limit_fen
    if section.monthly_limit_fen:
        assert max(paid_by_month.values()) <= section.monthly_limit_fen
    cap_fen = policy.schemes[member.scheme].annual_cap_fen
    if section.shares_inpatient_cap:
        assert ytd.hifp_fen == special[disease].paid_fen
        if cap_fen:
            assert ytd.hifp_fen <= cap_fen
    else:
        assert ytd == Ytd()
