"""Monthly advances, the year end, 结余留用/超支分担, 单病种 and 总额预付, worked by hand
(clearing/hospital_payment/settle.py). The example parameters: advance 85 %, hold-back 5 %, provisional point
value 100 yuan (10,000 fen), retention 60 %, overspend shared 50 % up to 10 % over."""

from __future__ import annotations

import pytest
from hp_examples import WEIGHTS, example_params, stay

from clearing.errors import InvalidField, PreconditionFailed
from clearing.hospital_payment import (
    HospitalYear, Method, PointValue, allocate_budget, case_payments, cross_region_balance, drg_year_end,
    global_budget_year_end,
    hospital_years, month_payment, point_value, retention_and_sharing, split_fixed_price,
)
from clearing.hospital_payment.settle import advance_for, count_methods, global_budget_month_fen


def test_month_hand_worked() -> None:
    cases = [
        stay("a"),  # normal: 157.5 points
        stay("b", cost_fen=75_000),  # high outlier: 232.5 points
        stay("c", los_days=1, cost_fen=4_321),  # by item
        stay("d", principal_diagnosis="K35.800", main_procedure="47.0100"),  # 单病种 800,000
        stay("e", hospital="H44010000002", level=2),  # 142.5 points
        stay("f", hospital="H44010000004", level=1),  # 总额预付
    ]
    month = month_payment(case_payments(cases, WEIGHTS, example_params()), example_params())
    first, second, budgeted = month.hospitals
    # 390 points × 10,000 fen × 85 % = 3,315,000; hold-back 5 % = 165,750
    assert (first.hospital, first.cases, first.drg_cases, first.points_e4) == ("H44010000001", 4, 2, 3_900_000)
    assert (first.advance_fen, first.hold_back_fen, first.by_item_fen, first.fixed_price_fen) == (
        3_315_000, 165_750, 4_321, 800_000)
    assert first.paid_fen == 3_315_000 - 165_750 + 4_321 + 800_000
    assert (first.cost_fen, first.drg_cost_fen) == (30_000 + 75_000 + 4_321 + 30_000, 105_000)
    # 142.5 × 10,000 × 0.85 = 1,211,250; hold-back 60,562.5 → 60,563
    assert (second.advance_fen, second.hold_back_fen, second.paid_fen) == (1_211_250, 60_563, 1_150_687)
    # 1,200,000 × 90 % ÷ 12 = 90,000, no points
    assert (budgeted.hospital, budgeted.points_e4, budgeted.global_budget_fen, budgeted.paid_fen) == (
        "H44010000004", 0, 90_000, 90_000)
    assert month.paid_fen == first.paid_fen + second.paid_fen + 90_000
    assert month.points_e4 == 3_900_000 + 1_425_000


def test_advance_rounds_down() -> None:
    # 123.4567 points × 10,001 fen × 85 % = 1,049,486.888… → 1,049,486 (never more than the exact figure)
    assert advance_for(1_234_567, 10_001, 8_500) == 1_049_486
    assert advance_for(0, 10_001, 8_500) == 0


def test_global_budget_month_and_year() -> None:
    assert global_budget_month_fen(1_200_000, 9_000) == 90_000
    assert global_budget_month_fen(1_000_001, 10_000) == 83_333  # 83,333.41… rounded down
    # cost 1,100,000 under the annual 1,200,000: keeps 60 % of 100,000 → final 1,160,000; advances 12 × 90,000
    year = global_budget_year_end(HospitalYear("H44010000004", 0, 1_100_000, 1_080_000), example_params())
    assert (year.payment_fen, year.retained_fen, year.final_fen, year.settlement_fen) == (
        1_200_000, 60_000, 1_160_000, 80_000)
    with pytest.raises(InvalidField):
        global_budget_year_end(HospitalYear("H44010000001", 0, 1, 0), example_params())


def test_month_lists_a_global_budget_hospital_without_stays() -> None:
    month = month_payment([], example_params())
    assert [(row.hospital, row.paid_fen) for row in month.hospitals] == [("H44010000004", 90_000)]


def test_year_end_three_hospitals() -> None:
    """Budget 10,000,000 fen; 500 + 300 + 200 points → 10,000 fen a point; payments 5, 3 and 2 million.

    H1 cost 4,000,000: surplus 1,000,000, keeps 60 % = 600,000 → final 4,600,000; advances 4,000,000 → +600,000
    H2 cost 3,200,000: over by 200,000 (band 10 % of 3,000,000 = 300,000), fund bears 50 % → 3,100,000; − 2,900,000
    H3 cost 2,500,000: over by 500,000, band 200,000, fund bears 50 % of 200,000 → 2,100,000; − 2,300,000 = clawback
    """
    year = drg_year_end([
        HospitalYear("H44010000003", 2_000_000, 2_500_000, 2_300_000),
        HospitalYear("H44010000001", 5_000_000, 4_000_000, 4_000_000),
        HospitalYear("H44010000002", 3_000_000, 3_200_000, 2_900_000),
    ], example_params())
    assert year.point_value == PointValue(10_000, 1)
    rows = [(row.hospital, row.payment_fen, row.retained_fen, row.shared_fen, row.final_fen, row.settlement_fen)
            for row in year.hospitals]
    assert rows == [
        ("H44010000001", 5_000_000, 600_000, 0, 4_600_000, 600_000),
        ("H44010000002", 3_000_000, 0, 100_000, 3_100_000, 200_000),
        ("H44010000003", 2_000_000, 0, 100_000, 2_100_000, -200_000),
    ]
    assert sum(row.payment_fen for row in year.hospitals) == 10_000_000


def test_budget_remainder_largest_remainder_ties_by_code() -> None:
    # 1,000 fen over three equal hospitals: 333 each and 1 fen left; equal remainders → the lowest code
    assert allocate_budget(1_000, {"H44010000003": 1, "H44010000001": 1, "H44010000002": 1}) == {
        "H44010000001": 334, "H44010000002": 333, "H44010000003": 333}
    # 100 fen by 1 : 2 : 4 points: 14.29, 28.57, 57.14 → 14, 28, 57 and 1 fen left to the largest remainder .57
    assert allocate_budget(100, {"H44010000001": 1, "H44010000002": 2, "H44010000003": 4}) == {
        "H44010000001": 14, "H44010000002": 29, "H44010000003": 57}
    assert allocate_budget(100, {"H44010000001": 0, "H44010000002": 3}) == {"H44010000001": 0, "H44010000002": 100}
    with pytest.raises(PreconditionFailed):
        allocate_budget(100, {"H44010000001": 0})


def test_year_end_exhausts_the_budget_with_a_fraction_point_value() -> None:
    params = example_params(year_budget_fen=1_000_000)
    year = drg_year_end([HospitalYear("H44010000001", 1_000_000, 0, 0), HospitalYear("H44010000002", 2_000_000, 0, 0)],
                        params)
    # 1,000,000 fen ÷ 300 points = 3,333.33… fen a point, kept as 10,000 / 3
    assert year.point_value == PointValue(10_000, 3)
    assert year.point_value.fen_e4() == 33_333_333
    assert [row.payment_fen for row in year.hospitals] == [333_333, 666_667]  # .33 and .67: the .67 gets the fen
    assert point_value(7, 30_000) == PointValue(7, 3)


@pytest.mark.parametrize(("cost_fen", "retained", "shared", "final"), [
    (2_000_000, 0, 0, 2_000_000),  # cost = payment
    (1_999_999, 1, 0, 2_000_000),  # surplus 1 fen: 60 % of 1 = 0.6 → 1
    (1_999_998, 1, 0, 1_999_999),  # surplus 2: 1.2 → 1
    (2_200_000, 0, 100_000, 2_100_000),  # overspend exactly at the band (10 % of 2,000,000)
    (2_200_001, 0, 100_000, 2_100_000),  # one fen beyond the band: the fund shares no more
    (2_199_999, 0, 100_000, 2_100_000),  # 199,999 × 50 % = 99,999.5 → 100,000
    (2_199_998, 0, 99_999, 2_099_999),
])
def test_retention_and_sharing_edges(cost_fen: int, retained: int, shared: int, final: int) -> None:
    assert retention_and_sharing(2_000_000, cost_fen, example_params()) == (retained, shared, final)


def test_split_fixed_price() -> None:
    assert split_fixed_price(800_000, 7_000) == (560_000, 240_000)
    assert split_fixed_price(10_001, 5_000) == (5_001, 5_000)  # 5,000.5 rounds half up for the fund
    with pytest.raises(InvalidField) as raised:
        split_fixed_price(1, 10_001)
    assert raised.value.field == "fund_ratio_bp"
    with pytest.raises(InvalidField) as raised:
        split_fixed_price(-1, 1)
    assert raised.value.field == "price_fen"


def test_hospital_years_from_cases_and_months() -> None:
    params = example_params()
    march = case_payments([stay("a"), stay("c", los_days=1)], WEIGHTS, params)
    april = case_payments([stay("b", cost_fen=75_000)], WEIGHTS, params)
    months = [month_payment(march, params), month_payment(april, params)]
    years = hospital_years(march + april, months)
    # points 157.5 + 232.5; DRG cost 30,000 + 75,000; paid 1,338,750 − 66,938 and 1,976,250 − 98,813
    assert years == (HospitalYear("H44010000001", 3_900_000, 105_000, 1_271_812 + 1_877_437),)
    assert count_methods(march)[Method.BY_ITEM] == 1


def test_bad_hospital_years() -> None:
    with pytest.raises(InvalidField) as raised:
        drg_year_end([HospitalYear("H44010000001", 1, 0, 0), HospitalYear("H44010000001", 1, 0, 0)], example_params())
    assert raised.value.field == "hospitals[1].hospital"
    with pytest.raises(InvalidField) as raised:
        drg_year_end([HospitalYear("H44010000001", -1, 0, 0)], example_params())
    assert raised.value.field == "hospitals[0].points_e4"
    with pytest.raises(PreconditionFailed):
        drg_year_end([HospitalYear("H44010000001", 0, 0, 5)], example_params())


def test_year_end_refuses_a_global_budget_hospital() -> None:
    with pytest.raises(InvalidField) as raised:
        drg_year_end([HospitalYear("H44010000001", 1, 0, 0), HospitalYear("H44010000004", 1, 0, 0)], example_params())
    assert raised.value.field == "hospitals[1].hospital"


def test_cross_region_balance() -> None:
    params = example_params()
    paid = case_payments([
        stay("a", cross_region=True),  # 157.5 points
        stay("b", cross_region=True, cost_fen=9_000),  # low outlier: 47.25 points
        stay("c"),  # local: not counted
        stay("d", cross_region=True, los_days=1),  # by item: not counted
    ], WEIGHTS, params)
    fund_pay = {"a": 1_500_000, "b": 400_000}
    # at the provisional 10,000 fen a point: 204.75 points → 2,047,500 fen; the funds sent 1,900,000 → −147,500
    month = cross_region_balance(paid, fund_pay, params.provisional_point_value_fen)
    assert (month.cases, month.points_e4, month.drg_payment_fen, month.fund_pay_fen, month.gain_fen) == (
        2, 2_047_500, 2_047_500, 1_900_000, -147_500)
    # at the year's 10,000/3 fen a point: 204.75 × 3,333.33… = 682,500 fen → the budget gains 1,217,500
    year = cross_region_balance(paid, fund_pay, PointValue(10_000, 3))
    assert (year.drg_payment_fen, year.gain_fen) == (682_500, 1_217_500)
    with pytest.raises(InvalidField) as raised:
        cross_region_balance(paid, {"a": 1}, 10_000)
    assert raised.value.field == "fund_pay_fen.b"
