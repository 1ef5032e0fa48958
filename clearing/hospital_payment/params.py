"""A treating region's hospital-payment parameters (医保支付参数), parsed from TOML and validated (issue 13).

`parse_payment_params(text)` reads the `[hospital_payment]` section of a region's configuration text (the
caller reads the file); `payment_params_from_table` takes the section already parsed. Every error is an
`InvalidField` naming the key (`hospital_payment.level_coefficient_bp.2`), like `clearing/policy.py`.

Money is integer fen, ratios and factors integer basis points (10000 = 1×). docs/hospital-payment.md gives
each parameter's meaning and which values are published and which illustrative.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any

from clearing.bill import HOSPITAL_LEVELS, check_hospital_code
from clearing.drg.case import DIAGNOSIS_PATTERN, PROCEDURE_PATTERN
from clearing.errors import InvalidField
from clearing.money import BP_WHOLE
from clearing.policy import AMOUNT_FEN_MAX, amount, check_keys, ratio

SECTION = "hospital_payment"
FACTOR_BP_MAX = 10 * BP_WHOLE  # 10×: a cut multiple or coefficient beyond this is a typo
DAYS_MAX = 366
FIXED_PRICES_MAX = 10_000
GLOBAL_BUDGETS_MAX = 10_000
WEIGHTS_CASES_MIN_DEFAULT = 5  # 病例数过少(原则上少于5例): the group falls back to its ADRG
# What the DRG budget covers (docs/hospital-payment.md, "What the budget covers"):
FUND_AND_PATIENTS = "fund_and_patients"  # 点值 = (统筹基金预算 + 参保人员个人负担) ÷ 总点数; the fund pays points × value − ps
FUND = "fund"  # 点值 = fund budget ÷ points; nothing deducted
BUDGET_FORMS = (FUND_AND_PATIENTS, FUND)


@dataclass(frozen=True, slots=True)
class FixedPrice:
    """A per-disease fixed price (单病种): principal diagnosis + main procedure ("" = none) → price in fen."""

    principal_diagnosis: str
    procedure: str
    price_fen: int


@dataclass(frozen=True, slots=True)
class GlobalBudget:
    """A hospital paid by global budget (总额预付) instead of DRG points."""

    hospital: str
    annual_fen: int  # 年度总额
    monthly_share_bp: int  # share of 1/12 advanced each month (按月预拨比例)


@dataclass(frozen=True, slots=True)
class PaymentParams:
    """One treating region's parameters for paying its hospitals (DRG 点数法, 单病种, 总额预付)."""

    year_budget_fen: int  # DRG 年度预算总额 (the year's points are paid out of exactly this)
    advance_share_bp: int  # 月度预拨比例, e.g. 8500
    hold_back_bp: int  # 调剂金: withheld from each monthly advance, e.g. 500
    provisional_point_value_fen: int  # 预估点值: fen per point for the monthly advance
    high_outlier_factor_bp: int  # 高倍率: cost > factor × group average, default 20000 (2×)
    low_outlier_factor_bp: int  # 低倍率: cost < factor × group average, default 4000 (0.4×)
    short_stay_days_max: int  # a stay of at most this many days is outside DRG (paid by item), default 2
    long_stay_days_min: int  # a stay of at least this many days is outside DRG, default 60
    readmission_days: int  # 15日内再入院同一DRG: the earlier stay's points are halved, default 15
    level_coefficient_bp: dict[int, int]  # 差异系数 by hospital level 1, 2, 3
    retention_share_bp: int  # 结余留用: share of (payment − cost) a hospital keeps when it spends less
    overspend_share_bp: int  # 超支分担: share of the overspend the fund bears …
    overspend_band_bp: int  # … on the part of the overspend up to band × payment (e.g. 1000: 10 % over)
    special_review_cap_bp: int  # 特病单议: at most this share of a hospital's cases, default 500
    cross_region_in_drg: bool  # 异地就医纳入就医地DRG管理 (the per-region switch)
    weights_cases_min: int  # a group with fewer history cases takes its ADRG's average
    fixed_prices: tuple[FixedPrice, ...]  # sorted by (principal_diagnosis, procedure)
    global_budgets: dict[str, GlobalBudget]  # by hospital code
    budget_form: str = FUND_AND_PATIENTS  # FUND_AND_PATIENTS or FUND

    @property
    def deducts_patients(self) -> bool:
        """The fund_and_patients form: a hospital's DRG money is points × value less what its patients paid."""
        return self.budget_form == FUND_AND_PATIENTS

    def fixed_price_fen(self, principal_diagnosis: str, procedure: str) -> int | None:
        """The 单病种 price of a stay (its principal diagnosis and main procedure, "" for none), or None."""
        for price in self.fixed_prices:  # bounded by FIXED_PRICES_MAX
            if price.principal_diagnosis == principal_diagnosis and price.procedure == procedure:
                return price.price_fen
        return None


REQUIRED = {"year_budget_fen", "advance_share_bp", "hold_back_bp", "provisional_point_value_fen",
            "level_coefficient_bp", "retention_share_bp", "overspend_share_bp", "overspend_band_bp"}
OPTIONAL = {"high_outlier_factor_bp", "low_outlier_factor_bp", "short_stay_days_max", "long_stay_days_min",
            "readmission_days", "special_review_cap_bp", "cross_region_in_drg", "weights_cases_min",
            "fixed_prices", "global_budgets", "budget_form"}


def parse_payment_params(text: str) -> PaymentParams:
    """Parse the `[hospital_payment]` section of a region configuration's TOML text."""
    try:
        document = tomllib.loads(text)
    except ValueError as error:  # TOMLDecodeError, and ValueError for integers of thousands of digits
        raise InvalidField(SECTION, f"not valid TOML: {error}") from None
    if SECTION not in document:
        raise InvalidField(SECTION, "is required")
    return payment_params_from_table(document[SECTION])


def payment_params_from_table(table: Any, where: str = SECTION) -> PaymentParams:
    """Validate an already parsed `[hospital_payment]` table; errors name `where.key`."""
    if not isinstance(table, dict):
        raise InvalidField(where, "must be a table")
    check_keys(table, where, required=REQUIRED, optional=OPTIONAL)
    high = factor(table.get("high_outlier_factor_bp", 20_000), f"{where}.high_outlier_factor_bp")
    low = factor(table.get("low_outlier_factor_bp", 4_000), f"{where}.low_outlier_factor_bp")
    if high < BP_WHOLE:
        raise InvalidField(f"{where}.high_outlier_factor_bp", "must be at least 10000 (1× the group average)")
    if low > BP_WHOLE:
        raise InvalidField(f"{where}.low_outlier_factor_bp", "must be at most 10000 (1× the group average)")
    short_max = days(table.get("short_stay_days_max", 2), f"{where}.short_stay_days_max")
    long_min = days(table.get("long_stay_days_min", 60), f"{where}.long_stay_days_min")
    if long_min <= short_max:
        raise InvalidField(f"{where}.long_stay_days_min", "must be greater than short_stay_days_max")
    cross_region = table.get("cross_region_in_drg", True)
    if not isinstance(cross_region, bool):
        raise InvalidField(f"{where}.cross_region_in_drg", "must be true or false")
    budget_form = table.get("budget_form", FUND_AND_PATIENTS)
    if budget_form not in BUDGET_FORMS:
        raise InvalidField(f"{where}.budget_form", f'must be "{FUND_AND_PATIENTS}" or "{FUND}"')
    cases_min = table.get("weights_cases_min", WEIGHTS_CASES_MIN_DEFAULT)
    if isinstance(cases_min, bool) or not isinstance(cases_min, int) or not 1 <= cases_min <= 1000:
        raise InvalidField(f"{where}.weights_cases_min", "must be an integer between 1 and 1000")
    return PaymentParams(
        year_budget_fen=positive_amount(table["year_budget_fen"], f"{where}.year_budget_fen"),
        advance_share_bp=ratio(table["advance_share_bp"], f"{where}.advance_share_bp"),
        hold_back_bp=ratio(table["hold_back_bp"], f"{where}.hold_back_bp"),
        provisional_point_value_fen=positive_amount(table["provisional_point_value_fen"],
                                                    f"{where}.provisional_point_value_fen"),
        high_outlier_factor_bp=high,
        low_outlier_factor_bp=low,
        short_stay_days_max=short_max,
        long_stay_days_min=long_min,
        readmission_days=days(table.get("readmission_days", 15), f"{where}.readmission_days"),
        level_coefficient_bp=coefficients(table["level_coefficient_bp"], f"{where}.level_coefficient_bp"),
        retention_share_bp=ratio(table["retention_share_bp"], f"{where}.retention_share_bp"),
        overspend_share_bp=ratio(table["overspend_share_bp"], f"{where}.overspend_share_bp"),
        overspend_band_bp=ratio(table["overspend_band_bp"], f"{where}.overspend_band_bp"),
        special_review_cap_bp=ratio(table.get("special_review_cap_bp", 500), f"{where}.special_review_cap_bp"),
        cross_region_in_drg=cross_region,
        weights_cases_min=cases_min,
        fixed_prices=fixed_prices(table.get("fixed_prices", []), f"{where}.fixed_prices"),
        global_budgets=global_budgets(table.get("global_budgets", []), f"{where}.global_budgets"),
        budget_form=budget_form,
    )


def positive_amount(value: Any, where: str) -> int:
    parsed = amount(value, where)
    if parsed == 0:
        raise InvalidField(where, "must be positive")
    return parsed


def factor(value: Any, where: str) -> int:
    """A multiple in basis points, 1..FACTOR_BP_MAX (a cut multiple or a coefficient is never 0)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(where, "must be an integer number of basis points (10000 = 1×)")
    if not 1 <= value <= FACTOR_BP_MAX:
        raise InvalidField(where, f"must be between 1 and {FACTOR_BP_MAX} basis points")
    return value


def days(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= DAYS_MAX:
        raise InvalidField(where, f"must be an integer number of days between 0 and {DAYS_MAX}")
    return value


def coefficients(raw: Any, where: str) -> dict[int, int]:
    """差异系数 by hospital level: a table with keys "1", "2", "3"."""
    if not isinstance(raw, dict):
        raise InvalidField(where, 'must be a table with keys "1", "2", "3"')
    check_keys(raw, where, required={str(level) for level in HOSPITAL_LEVELS}, optional=set())
    return {level: factor(raw[str(level)], f"{where}.{level}") for level in HOSPITAL_LEVELS}


def table_list(raw: Any, where: str, count_max: int) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise InvalidField(where, "must be a list of tables")
    if len(raw) > count_max:
        raise InvalidField(where, f"must have at most {count_max} entries")
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidField(f"{where}[{index}]", "must be a table")
    return raw


def fixed_prices(raw: Any, where: str) -> tuple[FixedPrice, ...]:
    """单病种 prices; one price per (principal_diagnosis, procedure)."""
    prices: dict[tuple[str, str], FixedPrice] = {}
    for index, item in enumerate(table_list(raw, where, FIXED_PRICES_MAX)):
        at = f"{where}[{index}]"
        check_keys(item, at, required={"principal_diagnosis", "price_fen"}, optional={"procedure"})
        diagnosis = item["principal_diagnosis"]
        if not isinstance(diagnosis, str) or not DIAGNOSIS_PATTERN.match(diagnosis):
            raise InvalidField(f"{at}.principal_diagnosis", "must be an ICD-10 医保版 2.0 code such as K35.800")
        procedure = item.get("procedure", "")
        if not isinstance(procedure, str) or (procedure and not PROCEDURE_PATTERN.match(procedure)):
            raise InvalidField(f"{at}.procedure", 'must be an ICD-9-CM3 医保版 2.0 code such as 47.0100, or ""')
        key = (diagnosis, procedure)
        if key in prices:
            raise InvalidField(at, f"a second price for {diagnosis} with procedure {procedure or '(none)'}")
        prices[key] = FixedPrice(diagnosis, procedure, positive_amount(item["price_fen"], f"{at}.price_fen"))
    return tuple(prices[key] for key in sorted(prices))


def global_budgets(raw: Any, where: str) -> dict[str, GlobalBudget]:
    """总额预付 hospitals; one budget per hospital."""
    budgets: dict[str, GlobalBudget] = {}
    for index, item in enumerate(table_list(raw, where, GLOBAL_BUDGETS_MAX)):
        at = f"{where}[{index}]"
        check_keys(item, at, required={"hospital", "annual_fen"}, optional={"monthly_share_bp"})
        hospital = check_hospital_code(item["hospital"], f"{at}.hospital")
        if hospital in budgets:
            raise InvalidField(f"{at}.hospital", f"{hospital} has a second global budget")
        budgets[hospital] = GlobalBudget(
            hospital=hospital,
            annual_fen=positive_amount(item["annual_fen"], f"{at}.annual_fen"),
            monthly_share_bp=ratio(item.get("monthly_share_bp", BP_WHOLE), f"{at}.monthly_share_bp"),
        )
    return dict(sorted(budgets.items()))


assert AMOUNT_FEN_MAX * FACTOR_BP_MAX < 2**63  # a budget times a factor stays in int64
