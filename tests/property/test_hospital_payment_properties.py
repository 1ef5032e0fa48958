"""Properties of hospital payment (clearing/hospital_payment/): the budget is exhausted to the fen, payment is
monotone in points, an advance never exceeds share × points × value, and the order of the stays changes nothing.
Repeatable (`derandomize=True`, no example database) and bounded."""

from __future__ import annotations

import sys
from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.hospital_payment import (
    HistoryCase, HospitalYear, PaymentCase, WeightSource, allocate_budget, case_payments, compute_weights,
    drg_year_end, month_payment, retention_and_sharing,
)
from clearing.hospital_payment.settle import advance_for
from clearing.money import BP_WHOLE

sys.path.insert(0, str(Path(__file__).parent.parent / "unit" / "hospital_payment"))
from hp_examples import WEIGHTS, example_params  # noqa: E402 - the shared example lives beside the unit tests

PAYMENT = settings(max_examples=200, derandomize=True, deadline=None, database=None)
HOSPITALS = tuple(f"H4401000000{index}" for index in range(1, 9))
BUDGET_FEN_MAX = 10**13
POINTS_E4_MAX = 10**12

budgets = st.integers(0, BUDGET_FEN_MAX)
points_maps = st.dictionaries(st.sampled_from(HOSPITALS), st.integers(0, POINTS_E4_MAX), min_size=1, max_size=8).filter(
    lambda points: sum(points.values()) > 0)


@PAYMENT
@given(budgets, points_maps)
def test_allocation_sums_to_the_budget_and_stays_within_a_fen(budget_fen: int, points_e4: dict[str, int]) -> None:
    allocation = allocate_budget(budget_fen, points_e4)
    assert sum(allocation.values()) == budget_fen
    total = sum(points_e4.values())
    for hospital, points in points_e4.items():
        exact = Fraction(budget_fen * points, total)
        assert exact - 1 < allocation[hospital] < exact + 1
        assert allocation[hospital] >= 0


@PAYMENT
@given(budgets, points_maps, st.sampled_from(HOSPITALS), st.integers(1, POINTS_E4_MAX))
def test_payment_monotone_in_points(budget_fen: int, points_e4: dict[str, int], hospital: str, more: int) -> None:
    before = allocate_budget(budget_fen, points_e4)
    after = allocate_budget(budget_fen, points_e4 | {hospital: points_e4.get(hospital, 0) + more})
    assert after[hospital] >= before.get(hospital, 0)
    # and, within one year, more points never get less money
    for one in points_e4:
        for other in points_e4:
            if points_e4[one] > points_e4[other]:
                assert before[one] >= before[other]


@PAYMENT
@given(st.integers(0, POINTS_E4_MAX), st.integers(1, 10**7), st.integers(0, BP_WHOLE))
def test_advance_never_exceeds_share_of_points_times_value(points_e4: int, value_fen: int, share_bp: int) -> None:
    advance_fen = advance_for(points_e4, value_fen, share_bp)
    exact = Fraction(points_e4, 10_000) * value_fen * Fraction(share_bp, BP_WHOLE)
    assert exact - 1 < advance_fen <= exact


@PAYMENT
@given(st.integers(0, 10**12), st.integers(0, 10**12), st.integers(0, BP_WHOLE), st.integers(0, BP_WHOLE),
       st.integers(0, BP_WHOLE))
def test_retention_and_sharing_bounds(payment_fen: int, cost_fen: int, keep_bp: int, share_bp: int,
                                      band_bp: int) -> None:
    params = example_params(retention_share_bp=keep_bp, overspend_share_bp=share_bp, overspend_band_bp=band_bp)
    retained, shared, final = retention_and_sharing(payment_fen, cost_fen, params)
    assert min(payment_fen, cost_fen) <= final <= max(payment_fen, cost_fen)
    assert retained == 0 or shared == 0
    assert final <= payment_fen + Fraction(payment_fen * band_bp, BP_WHOLE) * Fraction(share_bp, BP_WHOLE) + 1


DAY0 = date(2026, 1, 1)


@st.composite
def stays(draw) -> list[PaymentCase]:
    """Up to 30 stays at four hospitals (one under a global budget) by six members, some readmissions."""
    count = draw(st.integers(0, 30))
    cases = []
    for index in range(count):
        hospital = draw(st.sampled_from(("H44010000001", "H44010000002", "H44010000003", "H44010000004")))
        admitted_on = DAY0 + timedelta(days=draw(st.integers(0, 80)))
        los_days = draw(st.sampled_from((1, 2, 3, 5, 8, 20, 59, 60)))
        cases.append(PaymentCase(
            case_id=f"c{index:03d}", hospital=hospital, hospital_level=draw(st.sampled_from((1, 2, 3))),
            member_key=draw(st.sampled_from(("m1", "m2", "m3", "m4", "m5", "m6"))),
            drg=draw(st.sampled_from(("ER31", "ER31", "FR19", "GB11", "0000"))),
            principal_diagnosis=draw(st.sampled_from(("J80.x00", "K35.800"))),
            main_procedure=draw(st.sampled_from(("", "47.0100"))), los_days=los_days,
            admitted_on=admitted_on, discharged_on=admitted_on + timedelta(days=los_days),
            cost_fen=draw(st.integers(0, 200_000)), cross_region=draw(st.booleans()),
            readmission_justified=draw(st.booleans()),
        ))
    return cases


@settings(PAYMENT, max_examples=100)  # each example draws up to 30 stays
@given(stays(), st.randoms(use_true_random=False), st.booleans())
def test_order_of_cases_changes_nothing(cases: list[PaymentCase], random,  # noqa: ANN001 - a hypothesis Random
                                        cross_region_in_drg: bool) -> None:
    params = example_params(cross_region_in_drg=cross_region_in_drg)
    shuffled = list(cases)
    random.shuffle(shuffled)
    first = case_payments(cases, WEIGHTS, params)
    second = case_payments(shuffled, WEIGHTS, params)
    assert first == second
    reversed_payments = tuple(reversed(second))
    assert month_payment(first, params) == month_payment(reversed_payments, params)
    month = month_payment(first, params)
    for row in month.hospitals:
        exact = Fraction(row.points_e4, 10_000) * params.provisional_point_value_fen * Fraction(
            params.advance_share_bp, BP_WHOLE)
        assert row.advance_fen - row.hold_back_fen <= row.advance_fen <= exact
    # every stay is paid exactly one way
    for payment in first:
        assert (payment.points_e4 > 0) <= payment.method.has_points
        assert payment.by_item_fen == 0 or payment.fixed_price_fen == 0


@PAYMENT
@given(budgets.filter(lambda budget: budget > 0), points_maps)
def test_year_end_payments_sum_to_the_budget(budget_fen: int, points_e4: dict[str, int]) -> None:
    year = drg_year_end([HospitalYear(hospital, points, 0, 0) for hospital, points in points_e4.items()],
                        example_params(year_budget_fen=budget_fen, global_budgets={}))
    assert sum(row.payment_fen for row in year.hospitals) == budget_fen
    assert Fraction(year.point_value.numerator, year.point_value.denominator) == Fraction(
        budget_fen * 10_000, sum(points_e4.values()))


histories = st.lists(st.builds(HistoryCase, st.sampled_from(("ER31", "ER33", "ER35", "FR19", "FR11", "GB11", "0000")),
                               st.integers(0, 10**7)), max_size=60).filter(
    lambda cases: sum(case.cost_fen for case in cases) > 0)


@PAYMENT
@given(histories, st.integers(1, 8), st.randoms(use_true_random=False))
def test_weights_are_the_rounded_exact_ratio(history: list[HistoryCase], cases_min: int, random) -> None:  # noqa: ANN001
    table = compute_weights(history, cases_min)
    shuffled = list(history)
    random.shuffle(shuffled)
    assert compute_weights(shuffled, cases_min) == table  # the order of the history changes nothing
    everyone = Fraction(sum(case.cost_fen for case in history), len(history))
    for drg, weight in table.weights.items():
        own = [case.cost_fen for case in history if case.drg == drg]
        pool = own if len(own) >= cases_min else [case.cost_fen for case in history if case.drg[:3] == drg[:3]]
        assert weight.source is (WeightSource.DRG if len(own) >= cases_min else WeightSource.ADRG)
        assert len(pool) >= cases_min and weight.cases == len(pool)
        exact_rw = Fraction(sum(pool), len(pool)) / everyone
        assert abs(Fraction(weight.rw_e4, 10_000) - exact_rw) <= Fraction(1, 20_000)
        assert weight.base_points_e4 == weight.rw_e4 * 100
        assert weight.average_cost_fen > 0
    for drg in {case.drg for case in history} - set(table.weights) - {"0000"}:  # left out: too little history …
        own = [case.cost_fen for case in history if case.drg == drg]
        pool = own if len(own) >= cases_min else [case.cost_fen for case in history if case.drg[:3] == drg[:3]]
        average_rounds_to_zero = 2 * sum(pool) < len(pool)  # … or an average cost of 0 fen
        assert len(pool) < cases_min or average_rounds_to_zero


@PAYMENT
@given(budgets.filter(lambda budget: budget > 0), points_maps, st.lists(st.integers(0, 10**11), min_size=8, max_size=8),
       st.sampled_from(("fund_and_patients", "fund")))
def test_fund_payments_sum_to_the_fund_budget(budget_fen: int, points_e4: dict[str, int], patients: list[int],
                                              form: str) -> None:
    """Σ over hospitals of (payment − patients' share) is the fund budget to the fen, in either form."""
    years = [HospitalYear(hospital, points, 0, 0, patients[HOSPITALS.index(hospital)])
             for hospital, points in points_e4.items()]
    year = drg_year_end(years, example_params(year_budget_fen=budget_fen, global_budgets={}, budget_form=form))
    assert sum(row.payment_fen - row.patients_fen for row in year.hospitals) == budget_fen
    deducted = sum(patients[HOSPITALS.index(hospital)] for hospital in points_e4) if form == "fund_and_patients" else 0
    assert year.budget_fen == budget_fen + deducted
    assert sum(row.payment_fen for row in year.hospitals) == year.budget_fen


@PAYMENT
@given(st.integers(0, POINTS_E4_MAX), st.integers(1, 10**6), st.integers(0, BP_WHOLE), st.integers(0, 10**12))
def test_advance_never_exceeds_the_points_value_less_the_patients(points_e4: int, value_fen: int, share_bp: int,
                                                                  patients_fen: int) -> None:
    advance = advance_for(points_e4, value_fen, share_bp, patients_fen)
    exact = max(Fraction(0), Fraction(points_e4 * value_fen, 10_000) - patients_fen) * Fraction(share_bp, BP_WHOLE)
    assert 0 <= advance <= exact < advance + 1
