"""How each inpatient stay is paid, and its DRG points (病例点数), issue 13 items 3 and 4.

A stay's method is decided in this order (the first that applies wins):

1. its hospital is under a global budget (总额预付)                 → GLOBAL_BUDGET, no points;
2. it is a cross-region stay and the region's switch is off        → BY_ITEM (paid through clearing, 按项目);
3. the operator chose it for 特病单议 (at most 5 % of the hospital's cases) → BY_ITEM;
4. its principal diagnosis + main procedure has a 单病种 price     → FIXED_PRICE, the price;
5. it lasted ≤ 2 or ≥ 60 days                                      → BY_ITEM;
6. it is ungroupable ("0000") or its DRG has no weight             → BY_ITEM;
7. otherwise DRG points, by its cost against the group's average cost A (次均费用), with B the base points
   and k the hospital's level coefficient (差异系数):
   * HIGH_OUTLIER (高倍率), cost > f_high × A:  B × k + B × (cost − f_high × A) ÷ A
     (the common formula: the excess over the cut, in group averages, at the base points, without k);
   * LOW_OUTLIER (低倍率), cost < f_low × A:    B × k × cost ÷ A;
   * NORMAL:                                    B × k.
   A DRG stay whose member is admitted again with the same DRG within 15 days of its discharge, the later stay
   not carrying a reason (`readmission_justified`, e.g. 放化疗), has its points halved (前一次住院点数减半).
   Only stays in the same call are compared: the year end passes the whole year, so a readmission across a
   month boundary halves the earlier stay there (the month's advance is not revisited).

Rounding: a stay's points are one exact rational, rounded half up once to ten-thousandths of a point
(`points_e4`); sums of points are sums of those integers, so any order of the cases gives the same totals.
BY_ITEM: the fund pays the stay's fund pay (the patient paid the rest at discharge); FIXED_PRICE: the hospital
gets the price, the fund pays max(0, price − what the patient paid at discharge); neither has points.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from fractions import Fraction

from clearing.bill import HOSPITAL_LEVELS, check_hospital_code
from clearing.drg import UNGROUPABLE
from clearing.errors import InvalidField
from clearing.hospital_payment.params import PaymentParams
from clearing.hospital_payment.weights import COST_FEN_MAX, POINTS_SCALE, Weight, WeightTable
from clearing.money import BP_WHOLE, round_half_up_div

CASES_MAX = 10_000_000  # a region-year of stays


class Method(StrEnum):
    NORMAL = "normal"  # 正常倍率病例
    HIGH_OUTLIER = "high_outlier"  # 高倍率病例
    LOW_OUTLIER = "low_outlier"  # 低倍率病例
    BY_ITEM = "by_item"  # 按项目付费 (outside DRG)
    FIXED_PRICE = "fixed_price"  # 单病种
    GLOBAL_BUDGET = "global_budget"  # 总额预付

    @property
    def has_points(self) -> bool:
        return self in (Method.NORMAL, Method.HIGH_OUTLIER, Method.LOW_OUTLIER)


class ByItemReason(StrEnum):
    CROSS_REGION = "cross_region"  # the switch is off: the clearing pays the stay by item
    SPECIAL_REVIEW = "special_review"  # 特病单议
    SHORT_STAY = "short_stay"  # ≤ short_stay_days_max
    LONG_STAY = "long_stay"  # ≥ long_stay_days_min
    UNGROUPABLE = "ungroupable"  # "0000"
    NO_WEIGHT = "no_weight"  # the DRG (and its ADRG) has too little history


@dataclass(frozen=True, slots=True)
class PaymentCase:
    """One discharged stay at a hospital of the treating region, as payment needs it.

    `member_key` is an opaque key of the patient (never the ID number: it only links readmissions).
    `cost_fen` is the stay's total cost (医疗总费用); `fund_pay_fen` what the funds paid of it at discharge
    (统筹基金支付, None: all of it), the rest the patient paid (个人负担, `patient_paid_fen`)."""

    case_id: str
    hospital: str
    hospital_level: int
    member_key: str
    drg: str  # "0000" when ungroupable
    principal_diagnosis: str
    main_procedure: str  # "" when none
    los_days: int
    admitted_on: date
    discharged_on: date
    cost_fen: int
    cross_region: bool = False  # 异地就医: the member is insured in another region
    readmission_justified: bool = False  # this stay is a readmission with a reason (不减半前次)
    fund_pay_fen: int | None = None  # None: the fund paid the whole cost (the patient nothing)

    @property
    def patient_paid_fen(self) -> int:
        """What the patient paid at discharge: the total less the fund pay (everything the fund did not pay)."""
        return 0 if self.fund_pay_fen is None else self.cost_fen - self.fund_pay_fen


@dataclass(frozen=True, slots=True)
class CasePayment:
    """How one stay is paid: its method, points (DRG methods only) and the fen it brings outside DRG."""

    case_id: str
    hospital: str
    method: Method
    by_item_reason: ByItemReason | None
    points_e4: int  # 0 unless method.has_points
    by_item_fen: int  # what the fund pays when BY_ITEM (the stay's fund pay), else 0
    fixed_price_fen: int  # the 单病种 price when FIXED_PRICE (what the hospital gets), else 0
    cost_fen: int
    cross_region: bool
    halved_by: str | None  # the readmission's case_id when the points were halved
    fund_pay_fen: int = 0  # what the funds paid at discharge (through clearing when cross-region)
    patient_paid_fen: int = 0  # what the patient paid at discharge (cost − fund pay)

    @property
    def fixed_price_fund_fen(self) -> int:
        """单病种: the fund's part, max(0, price − what the patient paid at discharge); 0 for other methods."""
        return max(0, self.fixed_price_fen - self.patient_paid_fen) if self.method is Method.FIXED_PRICE else 0


def case_payments(cases: Iterable[PaymentCase], weights: WeightTable, params: PaymentParams,
                  special_review: Collection[str] = ()) -> tuple[CasePayment, ...]:
    """Every stay's method and points, sorted by case_id (see the module docstring for the rules).

    `special_review` holds the case_ids an operator chose for 特病单议. Raises `InvalidField` for a malformed
    or repeated case, a chosen case_id that is not among the cases, or a hospital whose chosen cases exceed
    `special_review_cap_bp` of its cases (`special_review.H44010000001`)."""
    checked = check_cases(cases)
    chosen = check_special_review(checked, special_review, params.special_review_cap_bp)
    readmitted = readmissions(checked, weights, params, chosen)
    return tuple(pay_case(case, weights, params, case.case_id in chosen, readmitted.get(case.case_id))
                 for case in checked)


def pay_case(case: PaymentCase, weights: WeightTable, params: PaymentParams, chosen: bool,
             halved_by: str | None) -> CasePayment:
    method, reason = method_of(case, weights, params, chosen)
    points_e4 = 0
    if method.has_points:
        weight = weights.weight_of(case.drg)
        assert weight is not None
        points = exact_points(case, weight, params, method)
        if halved_by is not None:
            points /= 2
        points_e4 = round_half_up_div(points.numerator, points.denominator)
    fixed = None
    if method is Method.FIXED_PRICE:
        fixed = params.fixed_price_fen(case.principal_diagnosis, case.main_procedure)
    return CasePayment(
        case_id=case.case_id, hospital=case.hospital, method=method, by_item_reason=reason, points_e4=points_e4,
        by_item_fen=case.cost_fen - case.patient_paid_fen if method is Method.BY_ITEM else 0,
        fixed_price_fen=fixed or 0, cost_fen=case.cost_fen, cross_region=case.cross_region,
        halved_by=halved_by if method.has_points else None,
        fund_pay_fen=case.cost_fen - case.patient_paid_fen, patient_paid_fen=case.patient_paid_fen,
    )


def method_of(case: PaymentCase, weights: WeightTable, params: PaymentParams,
              chosen: bool) -> tuple[Method, ByItemReason | None]:
    """The first rule of the module docstring's list that applies."""
    if case.hospital in params.global_budgets:
        return Method.GLOBAL_BUDGET, None
    if case.cross_region and not params.cross_region_in_drg:
        return Method.BY_ITEM, ByItemReason.CROSS_REGION
    if chosen:
        return Method.BY_ITEM, ByItemReason.SPECIAL_REVIEW
    if params.fixed_price_fen(case.principal_diagnosis, case.main_procedure) is not None:
        return Method.FIXED_PRICE, None
    if case.los_days <= params.short_stay_days_max:
        return Method.BY_ITEM, ByItemReason.SHORT_STAY
    if case.los_days >= params.long_stay_days_min:
        return Method.BY_ITEM, ByItemReason.LONG_STAY
    if case.drg == UNGROUPABLE:
        return Method.BY_ITEM, ByItemReason.UNGROUPABLE
    weight = weights.weight_of(case.drg)
    if weight is None or weight.average_cost_fen == 0:  # no average to measure outliers against
        return Method.BY_ITEM, ByItemReason.NO_WEIGHT
    return outlier_method(case.cost_fen, weight.average_cost_fen, params), None


def outlier_method(cost_fen: int, average_cost_fen: int, params: PaymentParams) -> Method:
    """HIGH_OUTLIER when cost > f_high × A, LOW_OUTLIER when cost < f_low × A (strict), else NORMAL."""
    assert average_cost_fen >= 0
    if cost_fen * BP_WHOLE > params.high_outlier_factor_bp * average_cost_fen:
        return Method.HIGH_OUTLIER
    if cost_fen * BP_WHOLE < params.low_outlier_factor_bp * average_cost_fen:
        return Method.LOW_OUTLIER
    return Method.NORMAL


def exact_points(case: PaymentCase, weight: Weight, params: PaymentParams, method: Method) -> Fraction:
    """The stay's points in ten-thousandths, exact (before the one rounding), by the module docstring's formulas."""
    base_e4 = weight.base_points_e4
    k_bp = params.level_coefficient_bp[case.hospital_level]
    average_fen = weight.average_cost_fen
    normal = Fraction(base_e4 * k_bp, BP_WHOLE)
    if method is Method.NORMAL:
        return normal
    assert average_fen > 0  # an outlier needs a positive average: cost > f × 0 is HIGH only when cost > 0
    if method is Method.HIGH_OUTLIER:
        excess = Fraction(case.cost_fen * BP_WHOLE - params.high_outlier_factor_bp * average_fen,
                          BP_WHOLE * average_fen)
        assert excess > 0
        return normal + base_e4 * excess
    assert method is Method.LOW_OUTLIER
    return normal * Fraction(case.cost_fen, average_fen)


def readmissions(cases: tuple[PaymentCase, ...], weights: WeightTable, params: PaymentParams,
                 chosen: frozenset[str]) -> dict[str, str]:
    """case_id of an earlier stay → case_id of the unjustified readmission that halves it.

    Both stays are DRG stays (their method has points) of the same member with the same DRG, and the later one
    is admitted 0..readmission_days days after the earlier one's discharge. The earliest such readmission is
    named. Any hospital: the rule is about the member's DRG, not where."""
    drg_stays: dict[str, list[PaymentCase]] = {}
    for case in cases:
        method, _ = method_of(case, weights, params, case.case_id in chosen)
        if method.has_points:
            drg_stays.setdefault(case.member_key, []).append(case)
    halved: dict[str, str] = {}
    for stays in drg_stays.values():
        stays.sort(key=lambda stay: (stay.admitted_on, stay.case_id))
        for index, earlier in enumerate(stays):
            for later in stays[index + 1:]:
                gap_days = (later.admitted_on - earlier.discharged_on).days
                if gap_days > params.readmission_days:
                    break  # later stays are admitted later still
                if 0 <= gap_days and later.drg == earlier.drg and not later.readmission_justified:
                    halved[earlier.case_id] = later.case_id
                    break
    return halved


def check_cases(cases: Iterable[PaymentCase]) -> tuple[PaymentCase, ...]:
    """The cases sorted by case_id; a malformed or repeated case is an `InvalidField` naming it."""
    seen: dict[str, PaymentCase] = {}
    for index, case in enumerate(cases):
        if index >= CASES_MAX:
            raise InvalidField("cases", f"must have at most {CASES_MAX} stays")
        field = f"cases[{index}]"
        if not isinstance(case, PaymentCase):
            raise InvalidField(field, "must be a PaymentCase")
        if not isinstance(case.case_id, str) or not case.case_id:
            raise InvalidField(f"{field}.case_id", "must be a non-empty string")
        if case.case_id in seen:
            raise InvalidField(f"{field}.case_id", f"{case.case_id} appears twice")
        check_hospital_code(case.hospital, f"{field}.hospital")
        if not isinstance(case.drg, str) or len(case.drg) != 4:
            raise InvalidField(f"{field}.drg", 'must be a 4-character CHS-DRG code such as ER31, or "0000"')
        if not isinstance(case.member_key, str) or not case.member_key:
            raise InvalidField(f"{field}.member_key", "must be a non-empty string")
        if case.hospital_level not in HOSPITAL_LEVELS or isinstance(case.hospital_level, bool):
            raise InvalidField(f"{field}.hospital_level", "must be 1, 2 or 3")
        cost_fen = case.cost_fen
        if isinstance(cost_fen, bool) or not isinstance(cost_fen, int) or not 0 <= cost_fen <= COST_FEN_MAX:
            raise InvalidField(f"{field}.cost_fen", f"must be an integer number of fen between 0 and {COST_FEN_MAX}")
        fund_pay = case.fund_pay_fen
        if fund_pay is not None and (isinstance(fund_pay, bool) or not isinstance(fund_pay, int)
                                     or not 0 <= fund_pay <= cost_fen):
            raise InvalidField(f"{field}.fund_pay_fen", "must be an integer number of fen between 0 and cost_fen")
        if isinstance(case.los_days, bool) or not isinstance(case.los_days, int) or case.los_days < 0:
            raise InvalidField(f"{field}.los_days", "must be a non-negative integer")
        if case.discharged_on < case.admitted_on:
            raise InvalidField(f"{field}.discharged_on", "is before admitted_on")
        seen[case.case_id] = case
    return tuple(seen[case_id] for case_id in sorted(seen))


def check_special_review(cases: tuple[PaymentCase, ...], chosen: Collection[str], cap_bp: int) -> frozenset[str]:
    """The operator's 特病单议 choice: known case_ids, at most cap_bp of each hospital's cases in this call."""
    by_id = {case.case_id: case for case in cases}
    if isinstance(chosen, str) or not all(isinstance(case_id, str) for case_id in chosen):
        raise InvalidField("special_review", "must be a collection of case_ids")
    for case_id in sorted(chosen):
        if case_id not in by_id:
            raise InvalidField("special_review", f"{case_id} is not one of the cases")
    per_hospital: dict[str, list[int]] = {}  # hospital → [cases, chosen]
    for case in cases:
        counts = per_hospital.setdefault(case.hospital, [0, 0])
        counts[0] += 1
        counts[1] += case.case_id in chosen
    for hospital in sorted(per_hospital):
        total, picked = per_hospital[hospital]
        if picked * BP_WHOLE > cap_bp * total:
            raise InvalidField(f"special_review.{hospital}",
                               f"{picked} of {total} cases exceeds the {cap_bp} bp cap (特病单议)")
    return frozenset(chosen)


assert POINTS_SCALE == BP_WHOLE
