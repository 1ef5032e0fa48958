"""Properties of the pure core (SPEC §3, §4.2, §4.3, §5.2) over random catalogues, bills and policies.

Self-contained (no shared conftest): the strategies build small catalogues, bills, policies, members
and accumulators directly. Runs are repeatable (`derandomize=True`, no example database) and bounded
(`max_examples=200`) so the file stays well under a few seconds.
"""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.adjudicate import Adjudication, StayFacts, adjudicate
from clearing.bill import Bill, BillLine, make_bill, make_line
from clearing.catalogue import Catalogue, CatalogueRow, Grade, Kind, Relation
from clearing.classify import LineClass, Reason, classify_bill, reclassify_for_insured
from clearing.member import YTD_FIELDS, Member, Ytd
from clearing.money import BP_WHOLE, apply_bp, round_half_up_div
from clearing.policy import (
    AssistanceRule, AssistanceTier, Band, Critical, CriticalBand, FilingStatus, Policy, Poverty, Scheme,
    SchemePolicy,
)
from clearing.translate import Translated, Unmapped, translate

CORE = settings(max_examples=200, derandomize=True, deadline=None, database=None)
# Cases that draw whole catalogues and bills cost ~150 draws each; 100 of them keep the file fast.
HEAVY = settings(CORE, max_examples=100)

TREATING_REGION = "440100"
INSURED_REGION = "430100"
HOSPITAL_CODE = "H44010000001"
ADMITTED_ON = date(2026, 3, 1)
STAY_DAYS = 10
TREATING_CODES = tuple(f"X{index:03d}" for index in range(4))
INSURED_CODES = tuple(f"L{index:03d}" for index in range(4))
NATIONAL_CODES = ("N1", "N2", "N3", "N4")
OUT_OF_SCOPE = {Reason.GRADE_C, Reason.UNMAPPED, Reason.RESTRICTED, Reason.NOT_VALID_ON_DATE}

ratios_bp = st.integers(0, BP_WHOLE)
caps_fen = st.one_of(st.just(0), st.integers(1, 5_000_000))  # 0 = no cap


# --- catalogues ---------------------------------------------------------------------------------

@st.composite
def catalogue_rows(draw, local_code: str) -> list[CatalogueRow]:
    """1–2 non-overlapping versions of one local code around the stay (2026-03-01..10)."""
    rows: list[CatalogueRow] = []
    start = ADMITTED_ON + timedelta(days=draw(st.integers(-5, 3)))
    for version in range(draw(st.integers(1, 2))):  # every code present: unknown codes come from the bill
        open_ended = draw(st.booleans())
        end = None if open_ended else start + timedelta(days=draw(st.integers(0, 6)))
        national_code = draw(st.sampled_from(NATIONAL_CODES + ("",)))
        rows.append(CatalogueRow(
            local_code=local_code, national_code=national_code,
            relation=None if not national_code else draw(st.sampled_from(list(Relation))),
            kind=draw(st.sampled_from(list(Kind))), name=f"{local_code} v{version}",
            grade=draw(st.sampled_from(list(Grade))), selfpay_bp=draw(ratios_bp),
            price_cap_fen=draw(st.one_of(st.none(), st.integers(0, 100_000))),
            restriction="", icd_prefixes=draw(st.sampled_from([(), ("C34",), ("E11", "I10"), ("Z99",)])),
            valid_from=start, valid_to=end,
        ))
        if end is None:
            break
        start = end + timedelta(days=draw(st.integers(1, 3)))
    return rows


@st.composite
def catalogues(draw, region: str = TREATING_REGION, codes: tuple[str, ...] = TREATING_CODES) -> Catalogue:
    rows = [row for code in codes for row in draw(catalogue_rows(code))]
    return Catalogue(region=region, rows=tuple(rows))


# --- bills --------------------------------------------------------------------------------------

def qty_text(qty_e4: int) -> str:
    return f"{qty_e4 // 10_000}.{qty_e4 % 10_000:04d}"


@st.composite
def bill_lines(draw, index: int) -> BillLine:
    qty_e4 = draw(st.integers(1, 200_000))  # 0.0001 … 20 units
    unit_price_fen = draw(st.integers(0, 100_000))
    # round_half_up(qty × price) for non-negative values, independently of clearing.money
    amount_fen = (qty_e4 * unit_price_fen + 5_000) // 10_000
    day = ADMITTED_ON + timedelta(days=draw(st.integers(0, STAY_DAYS - 1)))
    code = "ZZ999" if draw(st.integers(0, 9)) == 9 else draw(st.sampled_from(TREATING_CODES))  # ~1 in 10 unknown
    return make_line(index, str(index + 1), code, qty_text(qty_e4), unit_price_fen, amount_fen, day.isoformat())


@st.composite
def bills(draw) -> Bill:
    lines = tuple(draw(bill_lines(index)) for index in range(draw(st.integers(1, 5))))
    diagnoses = draw(st.lists(st.sampled_from(["C34.1", "c34.2", "E11.9", "I10", "C78"]), min_size=1, max_size=3))
    return make_bill(TREATING_REGION, HOSPITAL_CODE, draw(st.sampled_from([1, 2, 3])), ADMITTED_ON.isoformat(),
                     (ADMITTED_ON + timedelta(days=STAY_DAYS - 1)).isoformat(), draw(st.booleans()), diagnoses,
                     lines)


# --- policies, members, accumulators ------------------------------------------------------------

@st.composite
def uptos(draw, count_max: int = 4, step_max: int = 3_000_000) -> list[int | None]:
    """Band ends: strictly increasing, the last open."""
    ends: list[int | None] = []
    position = 0
    for _ in range(draw(st.integers(1, count_max)) - 1):
        position += draw(st.integers(1, step_max))
        ends.append(position)
    return ends + [None]


@st.composite
def policies(draw, zero_deductible: bool = False, no_basic_cap: bool = False) -> Policy:
    bands = tuple(Band(end, {level: draw(ratios_bp) for level in (1, 2, 3)}) for end in draw(uptos()))
    critical = None
    if draw(st.booleans()):
        critical = Critical(draw(st.integers(0, 2_000_000)), draw(caps_fen),
                            tuple(CriticalBand(end, draw(ratios_bp)) for end in draw(uptos())))
    scheme = SchemePolicy(
        annual_cap_fen=0 if no_basic_cap else draw(caps_fen),
        annual_deductible_cap_fen=draw(st.one_of(st.just(0), st.integers(1, 400_000))),
        retired_bonus_bp=draw(st.integers(0, 2000)),
        deductible_fen={level: 0 if zero_deductible else draw(st.integers(0, 200_000)) for level in (1, 2, 3)},
        bands=bands, critical=critical,
    )
    filing = draw(st.one_of(st.none(), st.fixed_dictionaries({status: ratios_bp for status in FilingStatus})))
    poverty = draw(st.one_of(st.none(), st.builds(Poverty, st.integers(0, 3000), ratios_bp)))
    assistance = draw(st.one_of(st.none(), st.dictionaries(
        st.sampled_from(list(AssistanceTier)),
        st.builds(AssistanceRule, st.integers(0, 500_000), ratios_bp, caps_fen), min_size=1)))
    return Policy(INSURED_REGION, "测试", date(2026, 1, 1), {Scheme.EMPLOYEE: scheme}, filing, poverty, assistance)


@st.composite
def members(draw, policy: Policy) -> Member:
    tiers = sorted(policy.assistance or {})
    assistance = draw(st.one_of(st.none(), st.sampled_from(tiers))) if tiers else None
    return Member(INSURED_REGION, "M001", Scheme.EMPLOYEE, draw(st.booleans()), draw(st.booleans()), assistance,
                  draw(st.sampled_from(list(FilingStatus))))


@st.composite
def stays(draw, level: int | None = None) -> StayFacts:
    return StayFacts(draw(st.sampled_from([TREATING_REGION, INSURED_REGION])),
                     level or draw(st.sampled_from([1, 2, 3])), ADMITTED_ON,
                     ADMITTED_ON + timedelta(days=STAY_DAYS - 1), draw(st.booleans()))


ytds = st.builds(Ytd, *(st.integers(0, 12_000_000) for _ in range(7)), st.integers(0, 20))


def in_scope_line(inscp_fen: int) -> LineClass:
    bill_line = BillLine("1", "X000", 10_000, inscp_fen, inscp_fen, ADMITTED_ON)
    return LineClass(bill_line, TREATING_REGION, "X000", "N1", Relation.EQUIVALENT, Kind.DRUG, Grade.A, "item", 0,
                     None, 0, 0, 0, inscp_fen, None)


def check_split(result: Adjudication, policy: Policy, member: Member) -> None:
    """SPEC §5.2 steps 1–8 relations that must hold for any stay."""
    for name in ("total_fen", "fulamt_ownpay_fen", "overlmt_selfpay_fen", "preselfpay_fen", "inscp_fen",
                 "deductible_fen", "eligible_fen", "hifp_fen", "burden_fen", "hifmi_fen", "assist_base_fen",
                 "maf_fen", "fund_pay_fen", "psn_pay_fen"):
        assert getattr(result, name) >= 0, name
    assert result.inscp_fen + result.fulamt_ownpay_fen + result.overlmt_selfpay_fen + result.preselfpay_fen == \
        result.total_fen
    assert result.total_fen == sum(item.line.amount_fen for item in result.lines)
    assert result.fund_pay_fen == result.hifp_fen + result.hifmi_fen + result.maf_fen
    assert result.fund_pay_fen + result.psn_pay_fen == result.total_fen
    assert result.eligible_fen == result.inscp_fen - result.deductible_fen
    assert result.burden_fen == result.inscp_fen - result.hifp_fen
    assert result.assist_base_fen == result.inscp_fen - result.hifp_fen - result.hifmi_fen
    assert result.hifp_fen <= result.eligible_fen
    assert result.hifmi_fen <= result.burden_fen
    assert result.maf_fen <= result.assist_base_fen
    assert result.fund_pay_fen <= result.inscp_fen  # funds never pay what is outside the policy scope
    scheme = policy.schemes[member.scheme]
    before = result.ytd_before
    assert result.deductible_fen <= max(scheme.deductible_fen.values())
    if scheme.annual_deductible_cap_fen:
        assert result.deductible_fen <= max(0, scheme.annual_deductible_cap_fen - before.deductible_fen)
    if scheme.annual_cap_fen:
        assert result.hifp_fen <= max(0, scheme.annual_cap_fen - before.hifp_fen)
    if scheme.critical is None:
        assert result.hifmi_fen == 0
    elif scheme.critical.annual_cap_fen:
        assert result.hifmi_fen <= max(0, scheme.critical.annual_cap_fen - before.hifmi_fen)
    if member.assistance is None:
        assert result.maf_fen == 0
    elif policy.assistance[member.assistance].annual_cap_fen:
        assert result.maf_fen <= max(0, policy.assistance[member.assistance].annual_cap_fen - before.maf_fen)
    # step 8: the accumulators advance by exactly (d, e, hifp, b, hifmi, r, maf, 1)
    delta = (result.deductible_fen, result.eligible_fen, result.hifp_fen, result.burden_fen, result.hifmi_fen,
             result.assist_base_fen, result.maf_fen, 1)
    assert tuple(getattr(result.ytd_after, name) - getattr(before, name) for name in YTD_FIELDS) == delta


# --- money --------------------------------------------------------------------------------------

@CORE
@given(st.integers(0, 10**13), ratios_bp)
def test_apply_bp_is_round_half_up_and_bounded(amount_fen: int, ratio_bp: int) -> None:
    paid_fen = apply_bp(amount_fen, ratio_bp)
    exact = Fraction(amount_fen * ratio_bp, BP_WHOLE)
    assert paid_fen - Fraction(1, 2) <= exact < paid_fen + Fraction(1, 2)  # nearest, halves up
    assert 0 <= paid_fen <= amount_fen


def divmod_round_half_up(numerator: int, denominator: int) -> int:
    """The rounding as `clearing.money` wrote it before issue 11 (quotient and remainder, then the sign)."""
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


@CORE
@given(st.integers(-10**19, 10**19), st.one_of(st.sampled_from([1, 2, 3, 10_000]), st.integers(1, 10**9)))
def test_round_half_up_div_is_the_nearest_integer_halves_away_from_zero(numerator: int, denominator: int) -> None:
    rounded = round_half_up_div(numerator, denominator)
    assert rounded == divmod_round_half_up(numerator, denominator)
    exact = Fraction(numerator, denominator)
    assert abs(exact - rounded) <= Fraction(1, 2)
    if abs(exact - rounded) == Fraction(1, 2):  # a tie goes away from zero
        assert abs(rounded) > abs(exact)


@CORE
@given(st.integers(0, 10**12), st.integers(0, 10**12), ratios_bp, ratios_bp)
def test_apply_bp_is_monotone_in_both_arguments(a: int, b: int, bp1: int, bp2: int) -> None:
    low, high = min(a, b), max(a, b)
    low_bp, high_bp = min(bp1, bp2), max(bp1, bp2)
    assert apply_bp(low, bp1) <= apply_bp(high, bp1)
    assert apply_bp(a, low_bp) <= apply_bp(a, high_bp)


# --- classification and translation -------------------------------------------------------------

@HEAVY
@given(catalogues(), bills())
def test_four_parts_of_every_line_sum_to_its_amount(catalogue: Catalogue, bill: Bill) -> None:
    check_lines(classify_bill(bill, catalogue))


def check_lines(items: tuple[LineClass, ...]) -> set:
    """Four non-negative parts that sum to the amount, consistent with the grade and reason (SPEC §4.2)."""
    seen: set = set()
    for item in items:
        parts = (item.fulamt_ownpay_fen, item.overlmt_selfpay_fen, item.preselfpay_fen, item.inscp_fen)
        assert all(part >= 0 for part in parts)
        assert sum(parts) == item.line.amount_fen
        if item.fulamt_ownpay_fen:
            assert item.reason in OUT_OF_SCOPE
            assert parts[1:] == (0, 0, 0)  # wholly self-paid lines have no other part
        if item.reason in OUT_OF_SCOPE:
            assert item.fulamt_ownpay_fen == item.line.amount_fen
        if item.overlmt_selfpay_fen:
            assert item.reason is Reason.OVER_CAP
            assert item.grade in (Grade.A, Grade.B)
        if item.grade is Grade.A:
            assert item.preselfpay_fen == 0
        if item.grade is Grade.C:  # GRADE_C, or UNMAPPED when its row has no national code
            assert item.reason in (Reason.GRADE_C, Reason.UNMAPPED)
            assert item.fulamt_ownpay_fen == item.line.amount_fen
        if item.reason is None:
            assert item.grade in (Grade.A, Grade.B) and item.fulamt_ownpay_fen == item.overlmt_selfpay_fen == 0
        seen.add((item.grade, item.reason))
    return seen


@HEAVY
@given(catalogues(), catalogues(region=INSURED_REGION, codes=INSURED_CODES), bills())
def test_insured_rule_keeps_the_hospitals_amount_and_adds_up(treating: Catalogue, insured: Catalogue,
                                                             bill: Bill) -> None:
    for treated in classify_bill(bill, treating):
        item = reclassify_for_insured(treated, insured, bill.diagnoses)
        assert item.line == treated.line  # price and quantity stay the hospital's
        check_lines((item,))
        if treated.national_code and item.reason is not Reason.UNMAPPED:
            assert item.catalogue_region == INSURED_REGION
            assert item.national_code == treated.national_code


@HEAVY
@given(catalogues(), st.one_of(st.none(), catalogues(region=INSURED_REGION, codes=INSURED_CODES)),
       st.one_of(st.sampled_from(TREATING_CODES), st.text(min_size=1, max_size=8)),
       st.integers(-10, 20))
def test_translation_is_never_a_silent_pass_through(source: Catalogue, destination: Catalogue | None, code: str,
                                                    offset_days: int) -> None:
    on = ADMITTED_ON + timedelta(days=offset_days)
    result = translate(source, code, destination, on)
    assert isinstance(result, (Translated, Unmapped))
    found = source.row_on(code, on)
    if isinstance(result, Translated):
        assert isinstance(found, CatalogueRow)
        assert result.national_code and result.national_code == found.national_code
        if destination is not None:
            assert result.targets  # an empty target list is reported as Unmapped, never as Translated
            for target in result.targets:
                assert target.local_code in {row.local_code for row in
                                             destination.rows_for_national(result.national_code, on)}
        else:
            assert result.targets == ()
    else:
        assert not isinstance(found, CatalogueRow) or not found.national_code or destination is not None


# --- adjudication -------------------------------------------------------------------------------

@st.composite
def adjudication_cases(draw, bill_cases: st.SearchStrategy | None = None):
    """A catalogue, a bill (of `bill_cases`, else `bills()`), a policy, a member of it, a stay and accumulators."""
    policy = draw(policies())
    catalogue = draw(catalogues())  # drawn in the order they always were
    bill = draw(bills() if bill_cases is None else bill_cases)
    return (catalogue, bill, policy, draw(members(policy)), draw(stays()), draw(ytds))


@HEAVY
@given(adjudication_cases())
def test_adjudication_split_holds_for_any_stay(case) -> None:
    catalogue, bill, policy, member, stay, ytd = case
    result = adjudicate(classify_bill(bill, catalogue), stay, member, policy, ytd)
    check_split(result, policy, member)
    assert result.total_fen == bill.total_fen


@st.composite
def classified_lines(draw) -> tuple[LineClass, ...]:
    """1–3 already-classified lines with random parts (classification itself is checked above)."""
    lines = []
    for index in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):  # wholly self-paid (grade C)
            fulamt_fen, over_fen, pre_fen, inscp_fen = draw(st.integers(0, 500_000)), 0, 0, 0
        else:  # grade B, possibly over its cap
            fulamt_fen = 0
            over_fen, pre_fen, inscp_fen = (draw(st.integers(0, 3_000_000)) for _ in range(3))
        amount_fen = inscp_fen + over_fen + pre_fen + fulamt_fen
        bill_line = BillLine(str(index + 1), "X000", 10_000, amount_fen, amount_fen, ADMITTED_ON)
        lines.append(LineClass(
            bill_line, TREATING_REGION, "X000", "N1", Relation.EQUIVALENT, Kind.DRUG,
            Grade.C if fulamt_fen else Grade.B, "item", 1000, 1, fulamt_fen, over_fen, pre_fen, inscp_fen,
            Reason.GRADE_C if fulamt_fen else Reason.OVER_CAP if over_fen else None))
    return tuple(lines)


@st.composite
def year_cases(draw):
    policy = draw(policies())
    stays_lines = [draw(classified_lines()) for _ in range(draw(st.integers(2, 5)))]
    return policy, draw(members(policy)), draw(stays()), stays_lines


@CORE
@given(year_cases())
def test_stays_in_sequence_accumulate_and_never_pass_the_caps(case) -> None:
    policy, member, stay, stays_lines = case
    scheme = policy.schemes[member.scheme]
    ytd = Ytd()
    totals = dict.fromkeys(YTD_FIELDS, 0)
    for lines in stays_lines:
        result = adjudicate(lines, stay, member, policy, ytd)
        check_split(result, policy, member)
        for name, amount in zip(YTD_FIELDS, (result.deductible_fen, result.eligible_fen, result.hifp_fen,
                                             result.burden_fen, result.hifmi_fen, result.assist_base_fen,
                                             result.maf_fen, 1)):
            totals[name] += amount
        ytd = result.ytd_after
    assert ytd == Ytd(**totals)  # final ytd = field-wise sum of each stay's amounts
    assert ytd.admissions == len(stays_lines)
    if scheme.annual_cap_fen:
        assert ytd.hifp_fen <= scheme.annual_cap_fen
    if scheme.annual_deductible_cap_fen:
        assert ytd.deductible_fen <= scheme.annual_deductible_cap_fen
    if scheme.critical is not None and scheme.critical.annual_cap_fen:
        assert ytd.hifmi_fen <= scheme.critical.annual_cap_fen
    if member.assistance is not None and policy.assistance[member.assistance].annual_cap_fen:
        assert ytd.maf_fen <= policy.assistance[member.assistance].annual_cap_fen


@st.composite
def split_cases(draw):
    policy = draw(policies(zero_deductible=True, no_basic_cap=True))
    return (policy, draw(members(policy)), draw(stays()), draw(st.integers(0, 12_000_000)),
            draw(st.integers(0, 5_000_000)), draw(st.integers(0, 5_000_000)))


@CORE
@given(split_cases())
def test_splitting_a_stay_keeps_the_band_axis_additive(case) -> None:
    """One stay of x1 + x2 in scope vs. two consecutive stays of x1 and x2, zero deductible, no cap.

    Exact equality does NOT hold in general: `apply_bp` rounds per band part (SPEC §5.2 step 4), and the
    split point cuts one band part in two, each rounded on its own. Every other band part is the same
    in both; each rounding is off by at most half a fen, so the two sums differ by at most 1 fen
    (e.g. one band at 50 %: 1 + 1 fen pays 1 + 1 = 2 split, but apply_bp(2, 5000) = 1 combined).
    When the split falls on a band edge (or one stay is empty) no part is cut and the sums are equal.
    """
    policy, member, stay, ytd_eligible_fen, first_fen, second_fen = case
    ytd = Ytd(eligible_fen=ytd_eligible_fen)
    combined = adjudicate((in_scope_line(first_fen + second_fen),), stay, member, policy, ytd)
    first = adjudicate((in_scope_line(first_fen),), stay, member, policy, ytd)
    second = adjudicate((in_scope_line(second_fen),), stay, member, policy, first.ytd_after)
    assert second.ytd_after.eligible_fen == combined.ytd_after.eligible_fen
    difference_fen = first.hifp_fen + second.hifp_fen - combined.hifp_fen
    assert abs(difference_fen) <= 1
    edges = {band.upto_fen for band in policy.schemes[member.scheme].bands}
    if first_fen == 0 or second_fen == 0 or ytd_eligible_fen + first_fen in edges:
        assert difference_fen == 0


def test_splitting_can_differ_by_one_fen() -> None:
    """The hand example behind the bound above: flat 50 %, 1 + 1 fen."""
    band = Band(None, {1: 5000, 2: 5000, 3: 5000})
    scheme = SchemePolicy(0, 0, 0, {1: 0, 2: 0, 3: 0}, (band,), None)
    policy = Policy(INSURED_REGION, "测试", date(2026, 1, 1), {Scheme.EMPLOYEE: scheme}, None, None, None)
    member = Member(INSURED_REGION, "M001", Scheme.EMPLOYEE, False, False, None, FilingStatus.RESIDENT)
    stay = StayFacts(TREATING_REGION, 3, ADMITTED_ON, ADMITTED_ON, False)
    combined = adjudicate((in_scope_line(2),), stay, member, policy, Ytd())
    first = adjudicate((in_scope_line(1),), stay, member, policy, Ytd())
    second = adjudicate((in_scope_line(1),), stay, member, policy, first.ytd_after)
    assert combined.hifp_fen == 1  # 2 × 50 % = 1
    assert (first.hifp_fen, second.hifp_fen) == (1, 1)  # 1 × 50 % = 0.5 → 1, twice
