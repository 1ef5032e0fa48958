"""Monthly advances and year-end clearing of hospital payments (月度预拨、年终清算), issue 13 items 3 and 4.

Monthly, per hospital (all integer fen; P = the month's points, v = the provisional point value in fen per
point, s = advance_share_bp, h = hold_back_bp, ps = what the patients of its DRG stays paid at discharge in the
"fund_and_patients" budget form, 0 in the "fund" form):
    advance    = ⌊max(0, P × v − ps) × s⌋        P × v exact, rounded DOWN once at the end
    hold_back  = round_half_up(advance × h)      调剂金, withheld
    paid       = advance − hold_back
    + by-item stays at their fund pay (the patient paid the rest at discharge) and 单病种 stays at
      max(0, price − what the patient paid), in full;
    a 总额预付 hospital instead gets ⌊annual × m / 12⌋ (m = its monthly_share_bp), its stays no points.

Year end (B = the gross budget: the fund's year_budget_fen + Σ ps of the year's DRG stays, + 0 in the "fund"
form; P_h = hospital h's points, T = Σ P_h):
    point value     = B ÷ T fen per point, exact (a reduced fraction, never a float)
    DRG payment_h   = P_h × B ÷ T, to whole fen by the largest remainder: each hospital takes ⌊P_h × B ÷ T⌋;
                      the fen left over go one each to the largest remainders (P_h × B mod T), ties to the
                      lower hospital code. Σ payment_h = B exactly, so Σ (payment_h − ps_h) = the fund budget.
    then against the hospital's cost C_h (Σ its DRG stays' cost):
    结余留用, C < pay:  final = C + round_half_up((pay − C) × retention_share)
    超支分担, C > pay:  final = pay + round_half_up(min(C − pay, round_half_up(pay × band)) × overspend_share)
    C = pay:           final = pay
    fund final_h    = final − ps_h (what the fund owes: the patients paid ps_h already)
    settlement_h    = fund final − Σ the months' advances paid (advance − hold_back; negative: a clawback, 追回)
A 总额预付 hospital clears the same way with pay = its annual amount and C = its stays' cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from fractions import Fraction

from clearing.bill import check_hospital_code
from clearing.errors import InvalidField, PreconditionFailed
from clearing.hospital_payment.cases import CasePayment, Method
from clearing.hospital_payment.params import PaymentParams
from clearing.hospital_payment.weights import POINTS_SCALE
from clearing.money import BP_WHOLE, apply_bp, round_half_up_div

MONTHS_PER_YEAR = 12


@dataclass(frozen=True, slots=True)
class MonthHospital:
    """One hospital's month (月度预拨): its cases by method, points and what it is paid."""

    hospital: str
    cases: int
    drg_cases: int
    points_e4: int
    cost_fen: int  # Σ cost of every stay
    drg_cost_fen: int  # Σ cost of its DRG stays
    advance_fen: int  # ⌊max(0, points × v − patients) × share⌋
    hold_back_fen: int  # 调剂金 withheld from the advance
    by_item_fen: int  # the fund pay of its by-item stays
    fixed_price_fen: int  # the fund's part of its 单病种 prices (price − what the patient paid)
    global_budget_fen: int  # the 总额预付 monthly amount, 0 for a DRG hospital
    patients_fen: int = 0  # ps: what the patients of its DRG stays paid (0 in the "fund" budget form)

    @property
    def paid_fen(self) -> int:
        """What the fund pays the hospital this month."""
        return self.advance_fen - self.hold_back_fen + self.by_item_fen + self.fixed_price_fen + self.global_budget_fen


@dataclass(frozen=True, slots=True)
class MonthPayment:
    hospitals: tuple[MonthHospital, ...]  # sorted by hospital code

    @property
    def paid_fen(self) -> int:
        return sum(hospital.paid_fen for hospital in self.hospitals)

    @property
    def points_e4(self) -> int:
        return sum(hospital.points_e4 for hospital in self.hospitals)


@dataclass(frozen=True, slots=True)
class PointValue:
    """The year's point value in fen per point, exact: numerator ÷ denominator (reduced, denominator > 0)."""

    numerator: int
    denominator: int

    def __post_init__(self) -> None:
        assert self.denominator > 0
        assert Fraction(self.numerator, self.denominator).denominator == self.denominator, "reduced"

    def fen_e4(self) -> int:
        """For display: ten-thousandths of a fen per point, rounded half up."""
        return (2 * self.numerator * 10_000 + self.denominator) // (2 * self.denominator)


@dataclass(frozen=True, slots=True)
class HospitalYear:
    """What a hospital brings to the year end: its year's points, its cost and the advances it was paid."""

    hospital: str
    points_e4: int
    cost_fen: int
    advances_paid_fen: int  # Σ the months' advance − hold_back (not the by-item and 单病种 money)
    patients_fen: int = 0  # what the patients of its DRG stays paid at discharge (ps_h, whatever the form)


@dataclass(frozen=True, slots=True)
class Clearing:
    """One hospital's year-end clearing (年终清算)."""

    hospital: str
    points_e4: int
    cost_fen: int
    payment_fen: int  # DRG payment (share of the budget), or the global budget's annual amount
    retained_fen: int  # 结余留用: the part of (payment − cost) the hospital keeps; 0 unless cost < payment
    shared_fen: int  # 超支分担: the part of the overspend the fund bears; 0 unless cost > payment
    final_fen: int  # what the hospital earns for the year, its patients' share included
    advances_paid_fen: int
    patients_fen: int = 0  # ps_h deducted: what its DRG stays' patients paid (0 in the "fund" form)

    @property
    def fund_final_fen(self) -> int:
        """What the fund owes the hospital for the year: final − what its patients paid already."""
        return self.final_fen - self.patients_fen

    @property
    def settlement_fen(self) -> int:
        """fund final − advances: > 0 the fund pays the hospital, < 0 it claws back (追回)."""
        return self.fund_final_fen - self.advances_paid_fen


@dataclass(frozen=True, slots=True)
class YearEnd:
    point_value: PointValue  # gross budget ÷ total points
    budget_fen: int  # the gross budget shared by points: the fund budget + the patients' share (its form)
    hospitals: tuple[Clearing, ...]  # sorted by hospital code
    fund_budget_fen: int = -1  # year_budget_fen; -1: the same as budget_fen

    def __post_init__(self) -> None:
        assert sum(hospital.payment_fen for hospital in self.hospitals) == self.budget_fen
        fund = self.budget_fen if self.fund_budget_fen == -1 else self.fund_budget_fen
        assert sum(hospital.payment_fen - hospital.patients_fen for hospital in self.hospitals) == fund


# ---- monthly -------------------------------------------------------------------------------------------------


def month_payment(payments: Iterable[CasePayment], params: PaymentParams) -> MonthPayment:
    """Per-hospital monthly figures from the month's case payments (module docstring for the formulas).

    A 总额预付 hospital is listed with its monthly amount even in a month without stays."""
    totals: dict[str, list[int]] = {hospital: [0] * 8 for hospital in params.global_budgets}
    for payment in payments:
        row = totals.setdefault(payment.hospital, [0] * 8)
        drg = payment.method.has_points
        row[0] += 1
        row[1] += drg
        row[2] += payment.points_e4
        row[3] += payment.cost_fen
        row[4] += payment.cost_fen if drg else 0
        row[5] += payment.by_item_fen
        row[6] += payment.fixed_price_fund_fen
        row[7] += payment.patient_paid_fen if drg and params.deducts_patients else 0
    hospitals = []
    for hospital in sorted(totals):
        cases, drg_cases, points_e4, cost_fen, drg_cost_fen, by_item_fen, fixed_fen, patients_fen = totals[hospital]
        advance_fen = advance_for(points_e4, params.provisional_point_value_fen, params.advance_share_bp,
                                  patients_fen)
        budget = params.global_budgets.get(hospital)
        budget_fen = 0 if budget is None else global_budget_month_fen(budget.annual_fen, budget.monthly_share_bp)
        hospitals.append(MonthHospital(
            hospital=hospital, cases=cases, drg_cases=drg_cases, points_e4=points_e4, cost_fen=cost_fen,
            drg_cost_fen=drg_cost_fen, advance_fen=advance_fen,
            hold_back_fen=apply_bp(advance_fen, params.hold_back_bp), by_item_fen=by_item_fen,
            fixed_price_fen=fixed_fen, global_budget_fen=budget_fen, patients_fen=patients_fen,
        ))
    return MonthPayment(tuple(hospitals))


def advance_for(points_e4: int, point_value_fen: int, share_bp: int, patients_fen: int = 0) -> int:
    """⌊max(0, points × point value − patients) × share⌋ in fen: points × value exact, rounded down once at the
    end, so never more than the exact figure."""
    assert points_e4 >= 0 and point_value_fen > 0 and 0 <= share_bp <= BP_WHOLE and patients_fen >= 0
    gross_e4 = max(0, points_e4 * point_value_fen - patients_fen * POINTS_SCALE)
    return gross_e4 * share_bp // (POINTS_SCALE * BP_WHOLE)


def global_budget_month_fen(annual_fen: int, monthly_share_bp: int) -> int:
    """总额预付 monthly advance: ⌊annual × share ÷ 12⌋; the year end settles the fen the floors leave."""
    assert annual_fen >= 0 and 0 <= monthly_share_bp <= BP_WHOLE
    return annual_fen * monthly_share_bp // (MONTHS_PER_YEAR * BP_WHOLE)


# ---- year end ------------------------------------------------------------------------------------------------


def point_value(budget_fen: int, total_points_e4: int) -> PointValue:
    """B ÷ T in fen per point, exact."""
    assert budget_fen >= 0 and total_points_e4 > 0
    value = Fraction(budget_fen * POINTS_SCALE, total_points_e4)
    return PointValue(value.numerator, value.denominator)


def allocate_budget(budget_fen: int, points_e4: Mapping[str, int]) -> dict[str, int]:
    """The budget shared by points, to whole fen by the largest remainder, ties to the lower hospital code.

    Σ = budget exactly; a hospital with 0 points gets 0. PreconditionFailed when there are no points."""
    assert budget_fen >= 0 and all(points >= 0 for points in points_e4.values())
    total = sum(points_e4.values())
    if total == 0:
        raise PreconditionFailed("points", "the year has no DRG points to share the budget by")
    shares = {hospital: divmod(budget_fen * points, total) for hospital, points in points_e4.items()}
    left_fen = budget_fen - sum(whole for whole, _ in shares.values())
    assert 0 <= left_fen < max(len(shares), 1)
    by_remainder = sorted(shares, key=lambda hospital: (-shares[hospital][1], hospital))
    extra = set(by_remainder[:left_fen])
    assert all(shares[hospital][1] > 0 for hospital in extra)  # a fen only goes where there is a remainder
    allocation = {hospital: shares[hospital][0] + (hospital in extra) for hospital in sorted(shares)}
    assert sum(allocation.values()) == budget_fen
    return allocation


def retention_and_sharing(payment_fen: int, cost_fen: int, params: PaymentParams) -> tuple[int, int, int]:
    """(retained, shared, final) by 结余留用 / 超支分担 (module docstring); exactly one of the first two is > 0,
    or neither."""
    assert payment_fen >= 0 and cost_fen >= 0
    if cost_fen < payment_fen:
        retained_fen = apply_bp(payment_fen - cost_fen, params.retention_share_bp)
        final_fen = cost_fen + retained_fen
        assert cost_fen <= final_fen <= payment_fen
        return retained_fen, 0, final_fen
    if cost_fen > payment_fen:
        band_fen = apply_bp(payment_fen, params.overspend_band_bp)
        shared_fen = apply_bp(min(cost_fen - payment_fen, band_fen), params.overspend_share_bp)
        final_fen = payment_fen + shared_fen
        assert payment_fen <= final_fen <= cost_fen
        return 0, shared_fen, final_fen
    return 0, 0, payment_fen


def drg_year_end(hospitals: Iterable[HospitalYear], params: PaymentParams) -> YearEnd:
    """The DRG year end of every DRG hospital: point value, payments summing to the budget, clearing each.

    A hospital under a global budget is refused (`InvalidField("hospitals[k].hospital")`): it clears by
    `global_budget_year_end`."""
    checked = check_hospital_years(hospitals)
    for index, code in enumerate(checked):
        if code in params.global_budgets:
            raise InvalidField(f"hospitals[{index}].hospital", f"{code} is under a global budget, not DRG")
    total = sum(hospital.points_e4 for hospital in checked.values())
    if total == 0:
        raise PreconditionFailed("points", "the year has no DRG points to share the budget by")
    return drg_year_end_of(checked, params, params.year_budget_fen)


def drg_year_to_date(hospitals: Iterable[HospitalYear], params: PaymentParams, months: int) -> YearEnd:
    """A year-to-date preview (not a clearing): the year end against ⌊fund budget × months ÷ 12⌋, months the
    payment months posted so far (1..12)."""
    assert 1 <= months <= MONTHS_PER_YEAR
    checked = check_hospital_years(hospitals)
    if sum(hospital.points_e4 for hospital in checked.values()) == 0:
        raise PreconditionFailed("points", "the year has no DRG points to share the budget by")
    return drg_year_end_of(checked, params, params.year_budget_fen * months // MONTHS_PER_YEAR)


def drg_year_end_of(checked: dict[str, HospitalYear], params: PaymentParams, fund_budget_fen: int) -> YearEnd:
    """The year end against a fund budget (the year's, or a year-to-date share of it for a preview)."""
    total = sum(hospital.points_e4 for hospital in checked.values())
    patients = {code: year.patients_fen if params.deducts_patients else 0 for code, year in checked.items()}
    gross_fen = fund_budget_fen + sum(patients.values())
    allocation = allocate_budget(gross_fen, {code: year.points_e4 for code, year in checked.items()})
    return YearEnd(
        point_value=point_value(gross_fen, total),
        budget_fen=gross_fen,
        hospitals=tuple(clear(checked[code] if params.deducts_patients else fund_cost(checked[code]), allocation[code],
                              params, patients[code]) for code in sorted(checked)),
        fund_budget_fen=fund_budget_fen,
    )


def global_budget_year_end(hospital: HospitalYear, params: PaymentParams) -> Clearing:
    """A 总额预付 hospital's year end: its annual amount against its cost, the same 结余留用/超支分担."""
    checked = check_hospital_years([hospital])[hospital.hospital]
    budget = params.global_budgets.get(checked.hospital)
    if budget is None:
        raise InvalidField("hospital", f"{checked.hospital} is not under a global budget")
    return clear(checked, budget.annual_fen, params)


def fund_cost(year: HospitalYear) -> HospitalYear:
    """The year with its cost as the fund's part (cost − what the patients paid): in the "fund" form the payment is
    fund money, so 结余留用/超支分担 weigh it against the fund's part of the cost, not the whole bill."""
    return replace(year, cost_fen=max(0, year.cost_fen - year.patients_fen))  # a patient never pays above the cost


def clear(year: HospitalYear, payment_fen: int, params: PaymentParams, patients_fen: int = 0) -> Clearing:
    """结余留用/超支分担 on the gross payment against the gross cost; the patients' share comes off after."""
    retained_fen, shared_fen, final_fen = retention_and_sharing(payment_fen, year.cost_fen, params)
    return Clearing(hospital=year.hospital, points_e4=year.points_e4, cost_fen=year.cost_fen,
                    payment_fen=payment_fen, retained_fen=retained_fen, shared_fen=shared_fen, final_fen=final_fen,
                    advances_paid_fen=year.advances_paid_fen, patients_fen=patients_fen)


def check_hospital_years(hospitals: Iterable[HospitalYear]) -> dict[str, HospitalYear]:
    checked: dict[str, HospitalYear] = {}
    for index, year in enumerate(hospitals):
        field = f"hospitals[{index}]"
        if not isinstance(year, HospitalYear):
            raise InvalidField(field, "must be a HospitalYear")
        check_hospital_code(year.hospital, f"{field}.hospital")
        if year.hospital in checked:
            raise InvalidField(f"{field}.hospital", f"{year.hospital} appears twice")
        for name in ("points_e4", "cost_fen", "advances_paid_fen", "patients_fen"):
            value = getattr(year, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidField(f"{field}.{name}", "must be a non-negative integer")
        checked[year.hospital] = year
    return checked


def hospital_years(payments: Iterable[CasePayment], months: Iterable[MonthPayment]) -> tuple[HospitalYear, ...]:
    """The DRG year's inputs from the year's case payments (points and DRG cost, recomputed over the whole year
    so that readmissions across months count) and the months' advances actually paid (advance − hold-back)."""
    totals: dict[str, list[int]] = {}
    for payment in payments:
        if payment.method.has_points:
            row = totals.setdefault(payment.hospital, [0, 0, 0, 0])
            row[0] += payment.points_e4
            row[1] += payment.cost_fen
            row[3] += payment.patient_paid_fen
    for month in months:
        for hospital in month.hospitals:
            if hospital.advance_fen:
                row = totals.setdefault(hospital.hospital, [0, 0, 0, 0])
                row[2] += hospital.advance_fen - hospital.hold_back_fen
    return tuple(HospitalYear(code, *totals[code]) for code in sorted(totals))


@dataclass(frozen=True, slots=True)
class CrossRegionBalance:
    """The DRG budget's gain or loss on cross-region stays (异地就医): what the insured regions' funds paid for
    them through clearing, against what the hospitals earn for them in DRG points."""

    cases: int
    points_e4: int
    drg_payment_fen: int  # round_half_up(Σ points × point value) − patients_fen: what the fund pays for them
    fund_pay_fen: int  # Σ the insured regions' fund pay for those stays
    gain_fen: int  # fund_pay − drg_payment: > 0 the budget gains, < 0 it loses
    patients_fen: int = 0  # what those stays' patients paid at discharge, deducted (0 in the "fund" form)


def cross_region_balance(payments: Iterable[CasePayment], fund_pay_fen: Mapping[str, int] | None,
                         value: PointValue | int, deduct_patients: bool = False) -> CrossRegionBalance:
    """Gain or loss on the cross-region DRG stays among `payments` at a point value: the provisional one (int fen
    per point, for a month) or the year's `PointValue`. `fund_pay_fen` maps each such stay's case_id to the fund
    pay the insured region sent (None: each payment's own `fund_pay_fen`); a missing one is
    `InvalidField("fund_pay_fen.<case_id>")`. With `deduct_patients` (the "fund_and_patients" form) the fund's
    DRG money for them is points × value − what their patients paid at discharge."""
    numerator, denominator = (value, 1) if isinstance(value, int) else (value.numerator, value.denominator)
    assert numerator >= 0 and denominator > 0
    cases = points_e4 = fund_fen = patients_fen = 0
    for payment in sorted(payments, key=lambda payment: payment.case_id):
        if not (payment.cross_region and payment.method.has_points):
            continue
        paid = payment.fund_pay_fen if fund_pay_fen is None else fund_pay_fen.get(payment.case_id)
        if isinstance(paid, bool) or not isinstance(paid, int) or paid < 0:
            raise InvalidField(f"fund_pay_fen.{payment.case_id}", "must be a non-negative integer number of fen")
        cases += 1
        points_e4 += payment.points_e4
        fund_fen += paid
        patients_fen += payment.patient_paid_fen if deduct_patients else 0
    drg_fen = round_half_up_div(points_e4 * numerator, denominator * POINTS_SCALE) - patients_fen
    return CrossRegionBalance(cases, points_e4, drg_fen, fund_fen, fund_fen - drg_fen, patients_fen)


def split_fixed_price(price_fen: int, fund_ratio_bp: int) -> tuple[int, int]:
    """单病种: (fund, patient) parts of a fixed price, fund = round_half_up(price × ratio), patient the rest.

    The ratio is the insured policy's, from the adjudication; the hospital gets the whole price."""
    if isinstance(price_fen, bool) or not isinstance(price_fen, int) or price_fen < 0:
        raise InvalidField("price_fen", "must be a non-negative integer number of fen")
    if isinstance(fund_ratio_bp, bool) or not isinstance(fund_ratio_bp, int) or not 0 <= fund_ratio_bp <= BP_WHOLE:
        raise InvalidField("fund_ratio_bp", "must be between 0 and 10000 basis points")
    fund_fen = apply_bp(price_fen, fund_ratio_bp)
    assert 0 <= fund_fen <= price_fen
    return fund_fen, price_fen - fund_fen


def count_methods(payments: Iterable[CasePayment]) -> dict[Method, int]:
    """Cases per method (for the month's list)."""
    counts = dict.fromkeys(Method, 0)
    for payment in payments:
        counts[payment.method] += 1
    return counts
