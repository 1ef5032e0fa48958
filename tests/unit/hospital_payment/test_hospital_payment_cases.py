"""Each way a stay is paid, worked by hand (clearing/hospital_payment/cases.py).

The weights (hp_examples.WEIGHTS): ER31 has 150 base points (RW 1.5) and an average cost of 30,000 fen.
The example parameters: level coefficients 0.90 / 0.95 / 1.05, high cut 2×, low cut 0.4×, LOS 2 / 60 days.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hp_examples import DAY0, WEIGHTS, example_params, stay

from clearing.errors import InvalidField
from clearing.hospital_payment import ByItemReason, Method, Weight, WeightSource, case_payments


def pay_one(case, params=None, special_review=()):  # noqa: ANN001, ANN202 - test helper
    (payment,) = case_payments([case], WEIGHTS, params or example_params(), special_review)
    return payment


def test_normal_by_level() -> None:
    # 150 × 1.05 = 157.5 points at a level-3 hospital; 150 × 0.95 = 142.5 at level 2; 150 × 0.90 = 135 at level 1
    assert (pay_one(stay("a")).method, pay_one(stay("a")).points_e4) == (Method.NORMAL, 1_575_000)
    assert pay_one(stay("b", level=2)).points_e4 == 1_425_000
    assert pay_one(stay("c", level=1)).points_e4 == 1_350_000


def test_high_outlier() -> None:
    # cost 75,000 > 2 × 30,000: 150 × 1.05 + 150 × (75,000 − 60,000) / 30,000 = 157.5 + 75 = 232.5 points
    payment = pay_one(stay("a", cost_fen=75_000))
    assert (payment.method, payment.points_e4) == (Method.HIGH_OUTLIER, 2_325_000)
    # the excess is not multiplied by the level coefficient: level 1 gets 135 + 75 = 210
    assert pay_one(stay("b", cost_fen=75_000, level=1)).points_e4 == 2_100_000
    # 60,001 fen: 157.5 + 150 × 1 / 30,000 = 157.505 points
    assert pay_one(stay("c", cost_fen=60_001)).points_e4 == 1_575_050


def test_high_outlier_edge_is_normal() -> None:
    payment = pay_one(stay("a", cost_fen=60_000))  # exactly 2×: not more than the cut
    assert (payment.method, payment.points_e4) == (Method.NORMAL, 1_575_000)


def test_low_outlier() -> None:
    # cost 9,000 < 0.4 × 30,000: 157.5 × 9,000 / 30,000 = 47.25 points
    payment = pay_one(stay("a", cost_fen=9_000))
    assert (payment.method, payment.points_e4) == (Method.LOW_OUTLIER, 472_500)
    # 11,999: 157.5 × 11,999 / 30,000 = 62.99475 points
    assert pay_one(stay("b", cost_fen=11_999)).points_e4 == 629_948  # 629,947.5 e4 rounds half up
    assert pay_one(stay("c", cost_fen=12_000)).method is Method.NORMAL  # exactly 0.4×: not below the cut


def test_points_round_half_up_once() -> None:
    # level 2, cost 1 fen: 142.5 × 1 / 30,000 = 0.00475 points = 47.5 e4 → 48
    assert pay_one(stay("a", cost_fen=1, level=2)).points_e4 == 48
    # level 1, FR19 (80 points, average 16,000), cost 3 fen: 72 × 3 / 16,000 = 0.0135 points = 135 e4 exactly
    assert pay_one(stay("b", drg="FR19", cost_fen=3, level=1)).points_e4 == 135


@pytest.mark.parametrize(("los_days", "method", "reason"), [
    (0, Method.BY_ITEM, ByItemReason.SHORT_STAY),
    (2, Method.BY_ITEM, ByItemReason.SHORT_STAY),
    (3, Method.NORMAL, None),
    (59, Method.NORMAL, None),
    (60, Method.BY_ITEM, ByItemReason.LONG_STAY),
])
def test_length_of_stay_outside_drg(los_days: int, method: Method, reason: ByItemReason | None) -> None:
    payment = pay_one(stay("a", los_days=los_days, cost_fen=31_234))
    assert (payment.method, payment.by_item_reason) == (method, reason)
    if method is Method.BY_ITEM:
        assert (payment.points_e4, payment.by_item_fen) == (0, 31_234)  # paid its item amount
    else:
        assert (payment.points_e4, payment.by_item_fen) == (1_575_000, 0)


def test_ungroupable_and_no_weight_by_item() -> None:
    assert pay_one(stay("a", drg="0000")).by_item_reason is ByItemReason.UNGROUPABLE
    payment = pay_one(stay("b", drg="GB11", cost_fen=5_000))
    assert (payment.method, payment.by_item_reason, payment.by_item_fen) == (
        Method.BY_ITEM, ByItemReason.NO_WEIGHT, 5_000)


def test_readmission_halves_the_earlier_stay() -> None:
    # a: admitted 1 March, 8 days, discharged 9 March; b: same member and DRG, admitted 24 March (15 days later)
    first = stay("a", member_key="m1")
    again = stay("b", member_key="m1", admitted_on=DAY0 + timedelta(days=23))
    by_id = {payment.case_id: payment for payment in case_payments([again, first], WEIGHTS, example_params())}
    assert (by_id["a"].points_e4, by_id["a"].halved_by) == (787_500, "b")  # 157.5 / 2 = 78.75
    assert (by_id["b"].points_e4, by_id["b"].halved_by) == (1_575_000, None)


@pytest.mark.parametrize(("days_later", "changes", "halved"), [
    (24, {}, False),  # 16 days after discharge: outside the window
    (8, {}, True),  # admitted on the day of discharge
    (23, {"readmission_justified": True}, False),  # a reason (放化疗 …)
    (23, {"drg": "FR19"}, False),  # another DRG
    (23, {"member_key": "m2"}, False),  # another member
    (23, {"hospital": "H44010000002"}, True),  # another hospital: the member's DRG counts, not where
    (23, {"los_days": 1}, False),  # the later stay is outside DRG
])
def test_readmission_conditions(days_later: int, changes: dict, halved: bool) -> None:
    first = stay("a", member_key="m1")
    fields = {"member_key": "m1", "admitted_on": DAY0 + timedelta(days=days_later)} | changes
    again = stay("b", **fields)
    by_id = {payment.case_id: payment for payment in case_payments([first, again], WEIGHTS, example_params())}
    assert (by_id["a"].points_e4 == 787_500) is halved
    assert (by_id["a"].halved_by == "b") is halved


def test_special_review_at_most_five_percent() -> None:
    cases = [stay(f"c{index:02d}", cost_fen=40_000) for index in range(20)]
    payments = case_payments(cases, WEIGHTS, example_params(), special_review={"c07"})  # 1 of 20 = 5 %
    chosen = [payment for payment in payments if payment.case_id == "c07"][0]
    assert (chosen.method, chosen.by_item_reason, chosen.by_item_fen) == (Method.BY_ITEM, ByItemReason.SPECIAL_REVIEW,
                                                                          40_000)
    assert sum(payment.method is Method.NORMAL for payment in payments) == 19
    with pytest.raises(InvalidField) as raised:
        case_payments(cases, WEIGHTS, example_params(), special_review={"c07", "c08"})  # 2 of 20 = 10 %
    assert raised.value.field == "special_review.H44010000001"
    with pytest.raises(InvalidField) as raised:
        case_payments(cases, WEIGHTS, example_params(), special_review={"nope"})
    assert raised.value.field == "special_review"
    with pytest.raises(InvalidField) as raised:
        case_payments(cases, WEIGHTS, example_params(), special_review="c07")  # a string, not a set of ids
    assert raised.value.field == "special_review"


def test_fixed_price() -> None:
    payment = pay_one(stay("a", principal_diagnosis="K35.800", main_procedure="47.0100", cost_fen=650_000))
    assert (payment.method, payment.fixed_price_fen, payment.points_e4, payment.by_item_fen) == (
        Method.FIXED_PRICE, 800_000, 0, 0)
    # 单病种 comes before the length-of-stay rule, after 特病单议
    short = stay("b", principal_diagnosis="K35.800", main_procedure="47.0100", los_days=1)
    assert pay_one(short).method is Method.FIXED_PRICE
    assert pay_one(stay("c", principal_diagnosis="K35.800", main_procedure="")).method is Method.NORMAL


def test_cross_region_switch() -> None:
    case = stay("a", cross_region=True)
    assert pay_one(case).method is Method.NORMAL  # in the treating region's DRG
    payment = pay_one(case, example_params(cross_region_in_drg=False))
    assert (payment.method, payment.by_item_reason, payment.by_item_fen) == (Method.BY_ITEM, ByItemReason.CROSS_REGION,
                                                                             30_000)


def test_global_budget_hospital() -> None:
    payment = pay_one(stay("a", hospital="H44010000004", level=1))
    assert (payment.method, payment.points_e4, payment.by_item_fen) == (Method.GLOBAL_BUDGET, 0, 0)


@pytest.mark.parametrize(("changes", "field"), [
    ({"case_id": ""}, "cases[0].case_id"),
    ({"level": 4}, "cases[0].hospital_level"),
    ({"cost_fen": -1}, "cases[0].cost_fen"),
    ({"los_days": -1}, "cases[0].los_days"),
    ({"hospital": "H4401"}, "cases[0].hospital"),
    ({"drg": "ER3"}, "cases[0].drg"),
])
def test_bad_cases(changes: dict, field: str) -> None:
    fields = {"case_id": "a"} | changes
    case_id = fields.pop("case_id")
    with pytest.raises(InvalidField) as raised:
        case_payments([stay(case_id, **fields)], WEIGHTS, example_params())
    assert raised.value.field == field


@pytest.mark.parametrize(("changes", "field"), [
    ({"discharged_on": DAY0 - timedelta(days=1)}, "cases[0].discharged_on"),
    ({"member_key": ""}, "cases[0].member_key"),
    ({"hospital_level": True}, "cases[0].hospital_level"),
])
def test_bad_case_fields(changes: dict, field: str) -> None:
    with pytest.raises(InvalidField) as raised:
        case_payments([replace(stay("a"), **changes)], WEIGHTS, example_params())
    assert raised.value.field == field


def test_repeated_case() -> None:
    with pytest.raises(InvalidField) as raised:
        case_payments([stay("a"), stay("a")], WEIGHTS, example_params())
    assert raised.value.field == "cases[1].case_id"


def test_special_review_stay_is_no_readmission() -> None:
    # the later stay went to 特病单议: it is not a DRG stay, so it halves nothing
    cases = [stay(f"c{index:02d}", member_key=f"x{index}") for index in range(18)]
    cases += [stay("a", member_key="m1"), stay("b", member_key="m1", admitted_on=DAY0 + timedelta(days=10))]
    by_id = {payment.case_id: payment for payment in case_payments(cases, WEIGHTS, example_params(), {"b"})}
    assert (by_id["a"].points_e4, by_id["a"].halved_by) == (1_575_000, None)
    assert by_id["b"].by_item_reason is ByItemReason.SPECIAL_REVIEW


def test_weight_with_zero_average_cost_is_by_item() -> None:
    weights = replace(WEIGHTS, weights=dict(WEIGHTS.weights) | {"ZZ19": Weight("ZZ19", 0, 0, 5, WeightSource.DRG)})
    payment = pay_one(stay("a", drg="ZZ19", cost_fen=100), special_review=())
    assert payment.by_item_reason is ByItemReason.NO_WEIGHT  # not in WEIGHTS at all
    (payment,) = case_payments([stay("a", drg="ZZ19", cost_fen=100)], weights, example_params())
    assert (payment.method, payment.by_item_reason) == (Method.BY_ITEM, ByItemReason.NO_WEIGHT)
