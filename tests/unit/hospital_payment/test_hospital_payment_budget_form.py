"""What the DRG budget covers (budget_form), worked by hand: in the "fund_and_patients" form (the Zhejiang 点数法
form, the default) the point value is over the fund budget plus what the DRG stays' patients paid at discharge,
and the fund pays a hospital points × value less that; in the "fund" form nothing is deducted. The example
parameters: advance 85 %, hold-back 5 %, provisional point value 100 yuan, retention 60 %, overspend 50 % up to
10 % over."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hp_examples import EXAMPLE_TOML, WEIGHTS, example_params, stay

from clearing.errors import InvalidField
from clearing.hospital_payment import (
    HospitalYear, PaymentCase, PointValue, case_payments, cross_region_balance, drg_year_end, drg_year_to_date, month_payment,
    parse_payment_params, split_fixed_price,
)


def test_the_form_is_a_parameter_defaulting_to_fund_and_patients() -> None:
    assert example_params().budget_form == "fund_and_patients" and example_params().deducts_patients
    form = 'budget_form = "fund_and_patients"'
    assert form in EXAMPLE_TOML
    assert parse_payment_params(EXAMPLE_TOML.replace(form, "")).budget_form == "fund_and_patients"
    fund = parse_payment_params(EXAMPLE_TOML.replace(form, 'budget_form = "fund"'))
    assert fund.budget_form == "fund" and not fund.deducts_patients
    with pytest.raises(InvalidField) as raised:
        parse_payment_params(EXAMPLE_TOML.replace(form, 'budget_form = "gross"'))
    assert raised.value.field == "hospital_payment.budget_form"


def _with(case: PaymentCase, fund_pay_fen: int) -> PaymentCase:
    return replace(case, fund_pay_fen=fund_pay_fen)


def month_cases() -> list[PaymentCase]:
    return [
        _with(stay("a"), 24_000),  # normal, 157.5 points; the patient paid 6,000
        _with(stay("c", los_days=1, cost_fen=4_321), 3_000),  # by item: the fund pays its fund pay, 3,000
        _with(stay("d", principal_diagnosis="K35.800", main_procedure="47.0100"), 20_000),  # 单病种 800,000; patient 10,000
    ]


def test_month_fund_and_patients_hand_worked() -> None:
    params = example_params(global_budgets={})
    paid = case_payments(month_cases(), WEIGHTS, params)
    by_id = {payment.case_id: payment for payment in paid}
    assert (by_id["a"].patient_paid_fen, by_id["a"].fund_pay_fen) == (6_000, 24_000)
    assert (by_id["c"].by_item_fen, by_id["c"].patient_paid_fen) == (3_000, 1_321)  # not the total 4,321
    # the hospital gets the price; the patient paid 10,000 at discharge (item-based), the fund the rest
    assert (by_id["d"].fixed_price_fen, by_id["d"].fixed_price_fund_fen) == (800_000, 790_000)
    (row,) = month_payment(paid, params).hospitals
    # ⌊(157.5 × 10,000 − 6,000) × 85 %⌋ = ⌊1,569,000 × 0.85⌋ = 1,333,650; hold-back 66,682.5 → 66,683
    assert (row.points_e4, row.patients_fen, row.advance_fen, row.hold_back_fen) == (1_575_000, 6_000, 1_333_650, 66_683)
    assert (row.by_item_fen, row.fixed_price_fen) == (3_000, 790_000)
    assert row.paid_fen == 1_333_650 - 66_683 + 3_000 + 790_000
    # the "fund" form deducts nothing from the advance: 1,575,000 × 85 % = 1,338,750, hold-back 66,938
    fund = example_params(budget_form="fund", global_budgets={})
    (row,) = month_payment(case_payments(month_cases(), WEIGHTS, fund), fund).hospitals
    assert (row.patients_fen, row.advance_fen, row.hold_back_fen) == (0, 1_338_750, 66_938)
    assert row.by_item_fen == 3_000  # by item and 单病种 are the same in both forms
    # what the policy-ratio split of the price would be (shown beside it): 70 % fund → 560,000 / 240,000
    assert split_fixed_price(800_000, 7_000) == (560_000, 240_000)


def test_patients_paying_more_than_the_points_value_advance_nothing() -> None:
    tiny = example_params(provisional_point_value_fen=1, global_budgets={})
    (row,) = month_payment(case_payments([_with(stay("b", cost_fen=9_000), 0)], WEIGHTS, tiny), tiny).hospitals
    # a low outlier of 47.25 points × 1 fen = 47.25 fen < the 9,000 fen its patient paid: the advance is 0
    assert (row.points_e4, row.patients_fen, row.advance_fen, row.hold_back_fen, row.paid_fen) == (
        472_500, 9_000, 0, 0, 0)


def test_year_end_three_hospitals_fund_and_patients() -> None:
    """Fund budget 9,000,000 fen; the DRG stays' patients paid 600,000 (H1), 300,000 (H2), 100,000 (H3): gross
    10,000,000 over 500 + 300 + 200 points → 10,000 fen a point; gross payments 5, 3 and 2 million.

    H1 cost 4,000,000: surplus, keeps 60 % of 1,000,000 → final 4,600,000; fund final 4,000,000; advances 3,400,000
       → +600,000
    H2 cost 3,200,000: over by 200,000 (band 300,000), fund bears 50 % → 3,100,000; fund final 2,800,000;
       advances 2,600,000 → +200,000
    H3 cost 2,500,000: over by 500,000, band 200,000, 50 % → 2,100,000; fund final 2,000,000; advances 2,200,000
       → −200,000, a clawback (追回)
    """
    year = drg_year_end([
        HospitalYear("H44010000003", 2_000_000, 2_500_000, 2_200_000, 100_000),
        HospitalYear("H44010000001", 5_000_000, 4_000_000, 3_400_000, 600_000),
        HospitalYear("H44010000002", 3_000_000, 3_200_000, 2_600_000, 300_000),
    ], example_params(year_budget_fen=9_000_000))
    assert (year.point_value, year.budget_fen, year.fund_budget_fen) == (PointValue(10_000, 1), 10_000_000, 9_000_000)
    rows = [(row.hospital, row.payment_fen, row.retained_fen, row.shared_fen, row.final_fen, row.patients_fen,
             row.fund_final_fen, row.settlement_fen) for row in year.hospitals]
    assert rows == [
        ("H44010000001", 5_000_000, 600_000, 0, 4_600_000, 600_000, 4_000_000, 600_000),
        ("H44010000002", 3_000_000, 0, 100_000, 3_100_000, 300_000, 2_800_000, 200_000),
        ("H44010000003", 2_000_000, 0, 100_000, 2_100_000, 100_000, 2_000_000, -200_000),
    ]
    assert sum(row.payment_fen - row.patients_fen for row in year.hospitals) == 9_000_000
    # the "fund" form: the point value is the fund budget over the points, 9,000 fen; nothing deducted
    fund = drg_year_end([HospitalYear("H44010000001", 5_000_000, 0, 0, 600_000),
                         HospitalYear("H44010000002", 5_000_000, 0, 0, 0)],
                        example_params(year_budget_fen=9_000_000, budget_form="fund"))
    assert fund.point_value == PointValue(9_000, 1)
    assert [(row.payment_fen, row.patients_fen) for row in fund.hospitals] == [(4_500_000, 0), (4_500_000, 0)]


def test_year_end_in_the_fund_form_weighs_the_fund_payment_against_the_funds_part_of_the_cost() -> None:
    """"fund" form, fund budget 9,000,000 over 500 + 500 points: 4,500,000 each, fund money. H1's stays cost
    5,000,000, its patients paid 1,000,000: the fund's part 4,000,000 is under its payment — 结余留用, it keeps 60 %
    of 500,000 → 4,300,000 (weighed against the whole bill it would have looked 500,000 over and got 4,725,000).
    H2's cost 5,400,000, patients 400,000: fund's part 5,000,000, over by 500,000, band 450,000, the fund bears
    50 % → 4,725,000."""
    fund = drg_year_end([HospitalYear("H44010000001", 5_000_000, 5_000_000, 0, 1_000_000),
                         HospitalYear("H44010000002", 5_000_000, 5_400_000, 0, 400_000)],
                        example_params(year_budget_fen=9_000_000, budget_form="fund"))
    assert [(row.cost_fen, row.retained_fen, row.shared_fen, row.final_fen, row.settlement_fen)
            for row in fund.hospitals] == [(4_000_000, 300_000, 0, 4_300_000, 4_300_000),
                                           (5_000_000, 0, 225_000, 4_725_000, 4_725_000)]


def test_year_end_fen_remainder_fund_and_patients() -> None:
    # fund 999,999 + the patients' 1 fen at H1 = 1,000,000 over three equal hospitals: 333,334 to the lowest code
    year = drg_year_end([HospitalYear(code, 1, 0, 0, patients) for code, patients in
                         (("H44010000001", 1), ("H44010000002", 0), ("H44010000003", 0))],
                        example_params(year_budget_fen=999_999))
    assert [row.payment_fen for row in year.hospitals] == [333_334, 333_333, 333_333]
    # no cost: each keeps 60 % of its payment (200,000.4 → 200,000; 199,999.8 → 200,000), H1 less its patient's 1 fen
    assert [row.fund_final_fen for row in year.hospitals] == [199_999, 200_000, 200_000]
    assert sum(row.payment_fen - row.patients_fen for row in year.hospitals) == 999_999


def test_year_to_date_preview_uses_months_twelfths_of_the_budget() -> None:
    # 3 months of 12,000,000: 3,000,000 fund + 1,000,000 patients → 4,000,000 over 400 points = 10,000 a point
    preview = drg_year_to_date([HospitalYear("H44010000001", 4_000_000, 0, 0, 1_000_000)],
                               example_params(year_budget_fen=12_000_000), 3)
    assert (preview.fund_budget_fen, preview.budget_fen, preview.point_value) == (3_000_000, 4_000_000,
                                                                                  PointValue(10_000, 1))


def test_cross_region_balance_deducts_the_patients_share() -> None:
    params = example_params(global_budgets={})
    paid = case_payments([_with(stay("a", cross_region=True), 24_000),  # 157.5 points, patient 6,000
                          _with(stay("b", cross_region=True, cost_fen=9_000), 8_000)],  # 47.25 points, patient 1,000
                         WEIGHTS, params)
    # 204.75 points × 10,000 = 2,047,500 − the patients' 7,000 = 2,040,500; the funds sent 32,000 → −2,008,500
    month = cross_region_balance(paid, None, params.provisional_point_value_fen, deduct_patients=True)
    assert (month.patients_fen, month.drg_payment_fen, month.fund_pay_fen, month.gain_fen) == (
        7_000, 2_040_500, 32_000, -2_008_500)
    fund = cross_region_balance(paid, None, params.provisional_point_value_fen)
    assert (fund.patients_fen, fund.drg_payment_fen, fund.gain_fen) == (0, 2_047_500, 32_000 - 2_047_500)


def test_a_fund_pay_above_the_cost_is_refused() -> None:
    with pytest.raises(InvalidField) as raised:
        case_payments([_with(stay("a"), 30_001)], WEIGHTS, example_params())
    assert raised.value.field == "cases[0].fund_pay_fen"
