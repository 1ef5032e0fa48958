"""Line classification by a catalogue (费用分割) — SPEC §4.2.

Every line splits into four non-negative parts that add up to its amount:
全自费 `fulamt_ownpay`, 超限价自付 `overlmt_selfpay`, 先行自付 `preselfpay` and 政策范围内 `inscp`,
with a `reason` for anything kept out of scope.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date
from enum import StrEnum

from clearing.bill import Bill, BillLine
from clearing.catalogue import Catalogue, CatalogueRow, Grade, Kind, Lookup, Relation
from clearing.errors import InvalidField
from clearing.money import apply_bp, round_half_up_div, QTY_SCALE
from clearing.values import compile_constructor


class Reason(StrEnum):
    """Why (part of) a line is not in the policy scope."""

    GRADE_C = "GRADE_C"  # 丙类: not covered
    UNMAPPED = "UNMAPPED"  # no national code, or no target in the catalogue that classifies
    RESTRICTED = "RESTRICTED"  # 限定支付范围 not met by the stay's diagnoses
    OVER_CAP = "OVER_CAP"  # unit price above 限价: the excess is self-paid
    NOT_VALID_ON_DATE = "NOT_VALID_ON_DATE"  # the code exists but no row is valid on the service date


@dataclass(frozen=True, slots=True)
class LineClass:
    """A bill line with its classification. `catalogue_code` is the local code whose row decided it
    (the hospital's own code under the treating rule, the insured region's code under the insured rule)."""

    line: BillLine
    catalogue_region: str
    catalogue_code: str
    national_code: str
    relation: Relation | None
    kind: Kind | None
    grade: Grade | None
    name: str
    selfpay_bp: int
    price_cap_fen: int | None
    fulamt_ownpay_fen: int
    overlmt_selfpay_fen: int
    preselfpay_fen: int
    inscp_fen: int
    reason: Reason | None
    note: str = ""

    @property
    def selfpay_out_fen(self) -> int:
        """The part outside the policy scope: 全自费 + 超限价 + 先行自付."""
        return self.fulamt_ownpay_fen + self.overlmt_selfpay_fen + self.preselfpay_fen


def restriction_satisfied(icd_prefixes: tuple[str, ...], diagnoses: tuple[str, ...]) -> bool:
    """Any diagnosis starts with any prefix (case-insensitive, dots ignored); no list = satisfied."""
    if not icd_prefixes:
        return True
    normalised = [code.replace(".", "").upper() for code in diagnoses]
    return any(code.startswith(prefix) for code in normalised for prefix in icd_prefixes)


def over_cap_fen(line: BillLine, price_cap_fen: int | None) -> int:
    """`round_half_up((unit_price − cap) × qty)` when the price exceeds the cap (超限价), else 0."""
    if price_cap_fen is None or line.unit_price_fen <= price_cap_fen:
        return 0
    return round_half_up_div((line.unit_price_fen - price_cap_fen) * line.qty_e4, QTY_SCALE)


# Called once a bill line: the dataclass's own __init__ would cost more than the classification (clearing/values.py).
# Its callers pass the fields by position, in LineClass's order: passing 16 by name costs more than the rest of
# a line's classification.
new_line_class = compile_constructor(LineClass)
LINE_CLASS_DRAFT = new_line_class.draft
# Reading an enum member off its class (`Grade.B`) costs about 0.1 µs in Python 3.11, more than the arithmetic
# around it; what every line reads comes from here instead.
GRADE_B, GRADE_C, OVER_CAP = Grade.B, Grade.C, Reason.OVER_CAP


def classify_line(
    line: BillLine, found: CatalogueRow | Lookup, diagnoses: tuple[str, ...], catalogue_region: str,
) -> LineClass:
    """Split one line by the catalogue row found for it (or the reason none was found)."""
    if not isinstance(found, CatalogueRow):  # a Lookup: there is no row
        reason = Reason.NOT_VALID_ON_DATE if found is Lookup.NOT_VALID_ON_DATE else Reason.UNMAPPED
        return self_paid(line, None, reason, catalogue_region, line.code)
    row = found
    if not row.national_code:
        return self_paid(line, row, Reason.UNMAPPED, catalogue_region, line.code)
    if row.grade is GRADE_C:
        return self_paid(line, row, Reason.GRADE_C, catalogue_region, row.local_code)
    if row.icd_prefixes and not restriction_satisfied(row.icd_prefixes, diagnoses):
        return self_paid(line, row, Reason.RESTRICTED, catalogue_region, row.local_code)
    amount_fen = line.amount_fen
    overlmt_fen = 0 if row.price_cap_fen is None else over_cap_fen(line, row.price_cap_fen)  # most rows have no cap
    selfpay_bp = row.selfpay_bp if row.grade is GRADE_B else 0  # 甲类 has no self-pay share whatever the row says
    preselfpay_fen = apply_bp(amount_fen - overlmt_fen, selfpay_bp) if selfpay_bp else 0
    inscp_fen = amount_fen - overlmt_fen - preselfpay_fen
    assert 0 <= overlmt_fen <= amount_fen
    assert 0 <= preselfpay_fen
    assert inscp_fen >= 0
    return new_line_class(
        line, catalogue_region, row.local_code, row.national_code, row.relation, row.kind, row.grade, row.name,
        selfpay_bp, row.price_cap_fen, 0, overlmt_fen, preselfpay_fen, inscp_fen, OVER_CAP if overlmt_fen else None,
        "")


def self_paid(
    line: BillLine, row: CatalogueRow | None, reason: Reason, catalogue_region: str, catalogue_code: str,
) -> LineClass:
    """A line whose whole amount is 全自费."""
    if row is None:
        return new_line_class(line, catalogue_region, catalogue_code, "", None, None, None, "", 0, None,
                              line.amount_fen, 0, 0, 0, reason, "")
    return new_line_class(line, catalogue_region, catalogue_code, row.national_code, row.relation, row.kind,
                          row.grade, row.name, 0, row.price_cap_fen, line.amount_fen, 0, 0, 0, reason, "")


# How `classify_bill` treats a catalogue row, decided once per catalogue version (`classification_plans`): the
# whole amount excluded (全自费), in scope once the stay's diagnoses meet the row's icd: list, or in scope outright.
EXCLUDED, IN_SCOPE_IF_RESTRICTION_MET, IN_SCOPE = 0, 1, 2
PLANS = "classify.plans"  # the key of the plans in `Catalogue.derived`
UNMAPPED, NOT_VALID_ON_DATE, RESTRICTED = Reason.UNMAPPED, Reason.NOT_VALID_ON_DATE, Reason.RESTRICTED


def row_plan(row: CatalogueRow) -> tuple:
    """What `classify_line` decides from the row alone, in `LineClass` field order: (how, catalogue_code,
    national_code, relation, kind, grade, name, selfpay_bp, price_cap_fen, reason or icd prefixes)."""
    facts = (row.local_code, row.national_code, row.relation, row.kind, row.grade, row.name)
    if not row.national_code:
        return (EXCLUDED, *facts, 0, row.price_cap_fen, Reason.UNMAPPED)
    if row.grade is GRADE_C:
        return (EXCLUDED, *facts, 0, row.price_cap_fen, Reason.GRADE_C)
    selfpay_bp = row.selfpay_bp if row.grade is GRADE_B else 0  # 甲类 has no self-pay share whatever the row says
    return (IN_SCOPE_IF_RESTRICTION_MET if row.icd_prefixes else IN_SCOPE, *facts, selfpay_bp, row.price_cap_fen,
            row.icd_prefixes)


def classification_plans(catalogue: Catalogue) -> dict[str, tuple]:
    """Per local code, `(valid_from, valid_to or date.max, row_plan(row), later)` for its first row, `later` being
    the same for each later row (() for most codes, which have one): built once per catalogue version and kept
    in `catalogue.derived`, so a bill line costs one look-up and its own arithmetic (issue 11)."""
    plans = catalogue.derived.get(PLANS)
    if plans is None:
        plans = {}
        for code, ranges in catalogue.ranges_by_code.items():
            (valid_from, valid_to, row), *later = ranges
            plans[code] = (valid_from, valid_to, row_plan(row),
                           tuple((later_from, later_to, row_plan(later_row)) for later_from, later_to, later_row in later))
        catalogue.derived[PLANS] = plans
    return plans


def classify_bill(bill: Bill, catalogue: Catalogue) -> tuple[LineClass, ...]:
    """Classify every line with the row valid on its own service date (就医地目录).

    The same split as `classify_line(line, catalogue.row_on(…), …)` line by line (tests/property compare the two),
    with what depends on the row alone looked up in `classification_plans` and the rounding of `apply_bp` and
    `over_cap_fen` written out: this runs for every line of every bill (issue 11). Each line's four parts add up
    to its amount by construction."""
    assert catalogue.region == bill.region, "the treating rule classifies with the treating region's catalogue"
    plans = classification_plans(catalogue)
    region, diagnoses = catalogue.region, bill.diagnoses
    restriction_met: dict[tuple[str, ...], bool] = {}  # per icd: list, for this stay's diagnoses
    classified = []
    for line in bill.lines:
        found = plans.get(line.code)
        if found is None:
            classified.append(self_paid(line, None, UNMAPPED, region, line.code))
            continue
        valid_from, valid_to, plan, later = found
        day = line.service_date
        if not valid_from <= day <= valid_to:
            plan = next((plan for valid_from, valid_to, plan in later if valid_from <= day <= valid_to), None)
            if plan is None:
                classified.append(self_paid(line, None, NOT_VALID_ON_DATE, region, line.code))
                continue
        how, code, national_code, relation, kind, grade, name, selfpay_bp, cap_fen, reason = plan
        if how == IN_SCOPE_IF_RESTRICTION_MET:
            met = restriction_met.get(reason)
            if met is None:
                met = restriction_met[reason] = restriction_satisfied(reason, diagnoses)
            how, reason = (IN_SCOPE, None) if met else (EXCLUDED, RESTRICTED)
        amount_fen = line.amount_fen
        if how == EXCLUDED:
            classified.append(new_line_class(line, region, code, national_code, relation, kind, grade, name, 0,
                                             cap_fen, amount_fen, 0, 0, 0, reason, ""))
            continue
        # round_half_up_div(n, d) for n ≥ 0 is (2n + d) // 2d: over-cap (qty in ten-thousandths), then apply_bp.
        if cap_fen is not None and line.unit_price_fen > cap_fen:
            overlmt_fen = (2 * (line.unit_price_fen - cap_fen) * line.qty_e4 + 10_000) // 20_000
        else:
            overlmt_fen = 0
        preselfpay_fen = (2 * (amount_fen - overlmt_fen) * selfpay_bp + 10_000) // 20_000 if selfpay_bp else 0
        inscp_fen = amount_fen - overlmt_fen - preselfpay_fen
        assert inscp_fen >= 0 and preselfpay_fen >= 0 and overlmt_fen >= 0  # the over-cap part is at most the amount
        item = LINE_CLASS_DRAFT()
        item.line = line
        item.catalogue_region = region
        item.catalogue_code = code
        item.national_code = national_code
        item.relation = relation
        item.kind = kind
        item.grade = grade
        item.name = name
        item.selfpay_bp = selfpay_bp
        item.price_cap_fen = cap_fen
        item.fulamt_ownpay_fen = 0
        item.overlmt_selfpay_fen = overlmt_fen
        item.preselfpay_fen = preselfpay_fen
        item.inscp_fen = inscp_fen
        item.reason = OVER_CAP if overlmt_fen else None
        item.note = ""
        item.__class__ = LineClass
        classified.append(item)
    return tuple(classified)


# Every part of a classification the clearing house re-derives and compares (the bill line itself is the
# input, and `note` only explains an insured-rule choice).
CHECKED_FIELDS = tuple(item.name for item in fields(LineClass) if item.name not in ("line", "note"))


def check_classification(claimed: tuple[LineClass, ...], catalogue: Catalogue, diagnoses: tuple[str, ...],
                         version: int, where: str = "claim.lines") -> None:
    """Re-classify every line with `catalogue` (the version the treating agency says it used) and refuse the
    claim at the first part that differs: the clearing house never forwards a split it cannot reproduce
    (issue 9, item 16). Raises `InvalidField` naming the line's field."""
    for index, item in enumerate(claimed):
        own = classify_line(item.line, catalogue.row_on(item.line.code, item.line.service_date), diagnoses,
                            catalogue.region)
        for name in CHECKED_FIELDS:
            theirs, ours = getattr(item, name), getattr(own, name)
            if theirs != ours:
                raise InvalidField(
                    f"{where}[{index}].{name}",
                    f"is {shown(theirs)} but catalogue {catalogue.region} version {version} classifies line "
                    f"{item.line.line_id} ({item.line.code}) as {shown(ours)}")


def shown(value: object) -> str:
    return "empty" if value is None or value == "" else str(value)


def pick_target(rows: tuple[CatalogueRow, ...]) -> tuple[CatalogueRow, str]:
    """Choose one local row among several for a national code (SPEC §4.3): the `equivalent` one,
    failing that the lowest local code. Returns the row and the explanation of the choice."""
    assert rows
    equivalents = [row for row in rows if row.relation is Relation.EQUIVALENT]
    if equivalents:
        chosen = min(equivalents, key=lambda row: row.local_code)
        rule = "equivalent"
    else:
        chosen = min(rows, key=lambda row: row.local_code)
        rule = "lowest_code"
    if len(rows) == 1:
        rule = "only"
    return chosen, rule


def reclassify_for_insured(
    treated: LineClass, insured: Catalogue, diagnoses: tuple[str, ...], day: date | None = None,
) -> LineClass:
    """Classify a line with the insured region's catalogue (参保地目录) after translation (SPEC §4.3).

    Price and quantity stay the hospital's. A line with no national code keeps its treating
    classification (there is nothing to translate); one whose national code has no insured target is UNMAPPED.
    """
    if not treated.national_code:
        return treated
    on = day or treated.line.service_date
    targets = insured.rows_for_national(treated.national_code, on)
    if not targets:
        unmapped = self_paid(treated.line, None, Reason.UNMAPPED, insured.region, "")
        return replace(unmapped, national_code=treated.national_code,
                       note=f"no {insured.region} item maps to {treated.national_code}")
    chosen, rule = pick_target(targets)
    result = classify_line(treated.line, chosen, diagnoses, insured.region)
    note = f"{treated.national_code} → {insured.region} {chosen.local_code} ({rule}"
    note += f", of {len(targets)} candidates)" if len(targets) > 1 else ")"
    return replace(result, note=note)
