"""The [hospital_payment] section: parsed values, defaults, and errors naming the key
(clearing/hospital_payment/params.py)."""

from __future__ import annotations

import pytest
from hp_examples import EXAMPLE_TOML

from clearing.errors import InvalidField
from clearing.hospital_payment import parse_payment_params

MINIMAL = """
[hospital_payment]
year_budget_fen = 100
advance_share_bp = 8500
hold_back_bp = 500
provisional_point_value_fen = 10000
retention_share_bp = 6000
overspend_share_bp = 5000
overspend_band_bp = 1000
level_coefficient_bp = { "1" = 9000, "2" = 9500, "3" = 10000 }
"""


def test_example_parses() -> None:
    params = parse_payment_params(EXAMPLE_TOML)
    assert params.year_budget_fen == 10_000_000
    assert params.level_coefficient_bp == {1: 9000, 2: 9500, 3: 10500}
    assert params.fixed_price_fen("K35.800", "47.0100") == 800_000
    assert params.fixed_price_fen("K35.800", "") is None  # the price is for the pair, not the diagnosis alone
    assert params.global_budgets["H44010000004"].monthly_share_bp == 9000


def test_defaults() -> None:
    params = parse_payment_params(MINIMAL)
    assert (params.high_outlier_factor_bp, params.low_outlier_factor_bp) == (20_000, 4_000)
    assert (params.short_stay_days_max, params.long_stay_days_min, params.readmission_days) == (2, 60, 15)
    assert params.special_review_cap_bp == 500
    assert params.cross_region_in_drg is True
    assert params.weights_cases_min == 5
    assert params.fixed_prices == () and params.global_budgets == {}


@pytest.mark.parametrize(("edit", "field"), [
    (("advance_share_bp = 8500", "advance_share_bp = 10001"), "hospital_payment.advance_share_bp"),
    (("hold_back_bp = 500", "hold_back_bp = -1"), "hospital_payment.hold_back_bp"),
    (("year_budget_fen = 100", "year_budget_fen = 0"), "hospital_payment.year_budget_fen"),
    (("year_budget_fen = 100", "year_budget_fen = 1.5"), "hospital_payment.year_budget_fen"),
    (("provisional_point_value_fen = 10000", "provisional_point_value_fen = 0"),
     "hospital_payment.provisional_point_value_fen"),
    (('"2" = 9500', '"2" = 0'), "hospital_payment.level_coefficient_bp.2"),
    (('"3" = 10000', '"4" = 10000'), "hospital_payment.level_coefficient_bp.4"),
    (("retention_share_bp = 6000", "retention_share_bp = true"), "hospital_payment.retention_share_bp"),
    (("overspend_band_bp = 1000", "overspend_band_bp = 1000\nhigh_outlier_factor_bp = 9999"),
     "hospital_payment.high_outlier_factor_bp"),
    (("overspend_band_bp = 1000", "overspend_band_bp = 1000\nlow_outlier_factor_bp = 10001"),
     "hospital_payment.low_outlier_factor_bp"),
    (("overspend_band_bp = 1000", "overspend_band_bp = 1000\nlong_stay_days_min = 2"),
     "hospital_payment.long_stay_days_min"),
    (("overspend_band_bp = 1000", "overspend_band_bp = 1000\ncross_region_in_drg = 1"),
     "hospital_payment.cross_region_in_drg"),
    (("overspend_band_bp = 1000", "overspend_band_bp = 1000\nweights_cases_min = 0"),
     "hospital_payment.weights_cases_min"),
    (("overspend_band_bp = 1000", "overspend_band_bp = 1000\nbudget = 1"), "hospital_payment.budget"),
    (("overspend_band_bp = 1000\n", ""), "hospital_payment.overspend_band_bp"),
])
def test_bad_values_name_the_key(edit: tuple[str, str], field: str) -> None:
    old, new = edit
    assert old in MINIMAL
    with pytest.raises(InvalidField) as raised:
        parse_payment_params(MINIMAL.replace(old, new))
    assert raised.value.field == field


@pytest.mark.parametrize(("extra", "field"), [
    ('[[hospital_payment.fixed_prices]]\nprincipal_diagnosis = "k35"\nprice_fen = 1',
     "hospital_payment.fixed_prices[0].principal_diagnosis"),
    ('[[hospital_payment.fixed_prices]]\nprincipal_diagnosis = "K35.800"\nprocedure = "x"\nprice_fen = 1',
     "hospital_payment.fixed_prices[0].procedure"),
    ('[[hospital_payment.fixed_prices]]\nprincipal_diagnosis = "K35.800"\nprice_fen = 0',
     "hospital_payment.fixed_prices[0].price_fen"),
    ('[[hospital_payment.fixed_prices]]\nprincipal_diagnosis = "K35.800"\nprice_fen = 1\n'
     '[[hospital_payment.fixed_prices]]\nprincipal_diagnosis = "K35.800"\nprocedure = ""\nprice_fen = 2',
     "hospital_payment.fixed_prices[1]"),
    ('[[hospital_payment.global_budgets]]\nhospital = "H4401"\nannual_fen = 1',
     "hospital_payment.global_budgets[0].hospital"),
    ('[[hospital_payment.global_budgets]]\nhospital = "H44010000004"\nannual_fen = 1\nmonthly_share_bp = 20000',
     "hospital_payment.global_budgets[0].monthly_share_bp"),
    ('[[hospital_payment.global_budgets]]\nhospital = "H44010000004"\nannual_fen = 1\n'
     '[[hospital_payment.global_budgets]]\nhospital = "H44010000004"\nannual_fen = 2',
     "hospital_payment.global_budgets[1].hospital"),
])
def test_bad_tables_name_the_entry(extra: str, field: str) -> None:
    with pytest.raises(InvalidField) as raised:
        parse_payment_params(MINIMAL + extra)
    assert raised.value.field == field


def test_missing_section_and_bad_toml() -> None:
    with pytest.raises(InvalidField) as raised:
        parse_payment_params("[other]\nx = 1\n")
    assert raised.value.field == "hospital_payment"
    with pytest.raises(InvalidField) as raised:
        parse_payment_params("[hospital_payment\n")
    assert raised.value.field == "hospital_payment"
