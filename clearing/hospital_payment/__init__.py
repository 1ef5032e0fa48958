"""Paying the treating region's hospitals (医保支付): DRG points, 单病种 and 总额预付, pure (issue 13 items 3–4).

    params  = parse_payment_params(text)                 # the region's [hospital_payment] section
    weights = compute_weights(history, params.weights_cases_min)
    paid    = case_payments(cases, weights, params, special_review={...})
    month   = month_payment(paid, params)                # advances, hold-back, by item, 单病种, 总额预付
    year    = drg_year_end(hospital_years(year_paid, months), params)

docs/hospital-payment.md gives every formula, rounding and parameter.
"""

from clearing.hospital_payment.cases import ByItemReason, CasePayment, Method, PaymentCase, case_payments
from clearing.hospital_payment.params import (
    FixedPrice, GlobalBudget, PaymentParams, parse_payment_params, payment_params_from_table,
)
from clearing.hospital_payment.settle import (
    Clearing, CrossRegionBalance, HospitalYear, MonthHospital, MonthPayment, PointValue, YearEnd, allocate_budget,
    cross_region_balance, drg_year_end, drg_year_to_date, global_budget_year_end, hospital_years, month_payment, point_value,
    retention_and_sharing, split_fixed_price,
)
from clearing.hospital_payment.weights import HistoryCase, Weight, WeightSource, WeightTable, compute_weights

__all__ = [
    "ByItemReason", "CasePayment", "Clearing", "CrossRegionBalance", "FixedPrice", "GlobalBudget", "HistoryCase",
    "HospitalYear", "Method", "MonthHospital", "MonthPayment", "PaymentCase", "PaymentParams", "PointValue", "Weight",
    "WeightSource", "WeightTable", "YearEnd", "allocate_budget", "case_payments", "compute_weights",
    "cross_region_balance", "drg_year_end", "drg_year_to_date", "global_budget_year_end", "hospital_years", "month_payment",
    "parse_payment_params", "payment_params_from_table", "point_value", "retention_and_sharing", "split_fixed_price",
]
