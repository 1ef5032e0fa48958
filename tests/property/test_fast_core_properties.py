"""The fast core of issue 11 (item 5) against straightforward references, over random catalogues and bills.

Classification is compared with an independent one written from SPEC §4.2: a linear scan of the
catalogue's rows instead of `Catalogue.ranges_by_code`, `Decimal` with ROUND_HALF_UP instead of integer
rounding, the dataclass's own constructor instead of `clearing.values`. Adjudication is compared with the
per-line explanation and sums as they were written before, and with the same adjudication run with every
value built by its dataclass constructor. Field for field: `==` on frozen dataclasses compares every field,
and the types and `repr`s are compared too.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st
from test_core_properties import (
    ADMITTED_ON, CORE, HEAVY, HOSPITAL_CODE, STAY_DAYS, TREATING_CODES, TREATING_REGION, adjudication_cases,
    catalogues, qty_text, ytds,
)

import clearing.adjudicate
import clearing.classify
import clearing.member
from clearing.adjudicate import Adjudication, AxisPart, adjudicate
from clearing.bill import Bill, BillLine, make_bill, make_line
from clearing.catalogue import Catalogue, Grade
from clearing.classify import LineClass, Reason, check_classification, classify_bill, classify_line
from clearing.explain import Step
from clearing.member import YTD_FIELDS, Ytd


def half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@st.composite
def bill_lines(draw, index: int) -> BillLine:
    """Small and large quantities and prices: the catalogues' caps (0 … 100,000 fen) fall below, at and above."""
    qty_e4 = draw(st.one_of(st.integers(1, 200_000), st.integers(1, 1_000_000)))
    unit_price_fen = draw(st.one_of(st.integers(0, 100_000), st.integers(0, 10_000_000)))
    amount_fen = half_up(Decimal(qty_e4) * unit_price_fen / 10_000)
    day = ADMITTED_ON + timedelta(days=draw(st.integers(0, STAY_DAYS - 1)))
    code = draw(st.sampled_from(TREATING_CODES + ("ZZ999",)))
    return make_line(index, str(index + 1), code, qty_text(qty_e4), unit_price_fen, amount_fen, day.isoformat())


@st.composite
def bills(draw) -> Bill:
    lines = tuple(draw(bill_lines(index)) for index in range(draw(st.integers(1, 8))))
    diagnoses = draw(st.lists(st.sampled_from(["C34.1", "c34.2", "E11.9", "I10", "C78"]), min_size=1, max_size=3))
    return make_bill(TREATING_REGION, HOSPITAL_CODE, draw(st.sampled_from([1, 2, 3])), ADMITTED_ON.isoformat(),
                     (ADMITTED_ON + timedelta(days=STAY_DAYS - 1)).isoformat(), draw(st.booleans()), diagnoses,
                     lines)


def reference_line_class(line: BillLine, catalogue: Catalogue, diagnoses: tuple[str, ...]) -> LineClass:
    """SPEC §4.2 for one line, written out plainly."""
    versions = [row for row in catalogue.rows if row.local_code == line.code]
    valid = [row for row in versions
             if row.valid_from <= line.service_date and (row.valid_to is None or line.service_date <= row.valid_to)]
    assert len(valid) <= 1  # ranges never overlap
    row = valid[0] if valid else None
    self_paid = dict(line=line, catalogue_region=catalogue.region, selfpay_bp=0, fulamt_ownpay_fen=line.amount_fen,
                     overlmt_selfpay_fen=0, preselfpay_fen=0, inscp_fen=0)
    if row is None:
        return LineClass(**self_paid, catalogue_code=line.code, national_code="", relation=None, kind=None,
                         grade=None, name="", price_cap_fen=None,
                         reason=Reason.NOT_VALID_ON_DATE if versions else Reason.UNMAPPED)
    row_facts = dict(national_code=row.national_code, relation=row.relation, kind=row.kind, grade=row.grade,
                     name=row.name, price_cap_fen=row.price_cap_fen)
    written = [code.replace(".", "").upper() for code in diagnoses]
    if not row.national_code:
        return LineClass(**self_paid, **row_facts, catalogue_code=line.code, reason=Reason.UNMAPPED)
    if row.grade is Grade.C:
        return LineClass(**self_paid, **row_facts, catalogue_code=row.local_code, reason=Reason.GRADE_C)
    if row.icd_prefixes and not any(code.startswith(prefix) for code in written for prefix in row.icd_prefixes):
        return LineClass(**self_paid, **row_facts, catalogue_code=row.local_code, reason=Reason.RESTRICTED)
    over_fen = 0
    if row.price_cap_fen is not None and line.unit_price_fen > row.price_cap_fen:
        over_fen = half_up(Decimal(line.unit_price_fen - row.price_cap_fen) * Decimal(line.qty_e4) / 10_000)
    selfpay_bp = row.selfpay_bp if row.grade is Grade.B else 0
    preselfpay_fen = half_up(Decimal(line.amount_fen - over_fen) * selfpay_bp / 10_000)
    return LineClass(line=line, catalogue_region=catalogue.region, catalogue_code=row.local_code, **row_facts,
                     selfpay_bp=selfpay_bp, fulamt_ownpay_fen=0, overlmt_selfpay_fen=over_fen,
                     preselfpay_fen=preselfpay_fen, inscp_fen=line.amount_fen - over_fen - preselfpay_fen,
                     reason=Reason.OVER_CAP if over_fen else None)


@HEAVY
@given(catalogues(), bills())
def test_classify_bill_matches_a_plain_reading_of_the_spec(catalogue: Catalogue, bill: Bill) -> None:
    classified = classify_bill(bill, catalogue)
    expected = tuple(reference_line_class(line, catalogue, bill.diagnoses) for line in bill.lines)
    assert classified == expected
    assert [type(item) for item in classified] == [LineClass] * len(expected)
    assert [repr(item) for item in classified] == [repr(item) for item in expected]
    check_classification(classified, catalogue, bill.diagnoses, 1)  # the clearing house re-derives the same


def reference_line_steps(lines: tuple[LineClass, ...]) -> list[Step]:
    """`clearing.adjudicate.line_steps` as it was written before issue 11."""
    steps = []
    for item in lines:
        base = {"line_id": item.line.line_id, "code": item.line.code}
        if item.note:
            steps.append(Step("line_note", 0, {**base, "note": item.note}))
        if item.fulamt_ownpay_fen:
            steps.append(Step("line_excluded", item.fulamt_ownpay_fen, {**base, "reason": str(item.reason)}))
        if item.overlmt_selfpay_fen:
            steps.append(Step("line_over_cap", item.overlmt_selfpay_fen, {
                **base, "unit_price_fen": item.line.unit_price_fen, "price_cap_fen": item.price_cap_fen}))
        if item.preselfpay_fen:
            steps.append(Step("line_preselfpay", item.preselfpay_fen, {**base, "selfpay_bp": item.selfpay_bp}))
    return steps


def built_by_dataclass_constructors() -> ExitStack:
    """Every value `adjudicate` and `classify_bill` build, built by its dataclass `__init__` instead."""
    stack = ExitStack()
    for module, name, cls in ((clearing.classify, "new_line_class", LineClass), (clearing.adjudicate, "new_step", Step),
                              (clearing.adjudicate, "new_axis_part", AxisPart),
                              (clearing.adjudicate, "new_adjudication", Adjudication),
                              (clearing.adjudicate, "new_ytd", Ytd), (clearing.member, "new_ytd", Ytd)):
        stack.enter_context(mock.patch.object(module, name, cls))
    return stack


@HEAVY
@given(adjudication_cases(bills()))
def test_adjudication_matches_its_reference(case) -> None:
    catalogue, bill, policy, member, stay, ytd = case
    result = adjudicate(classify_bill(bill, catalogue), stay, member, policy, ytd)
    lines = result.lines
    assert (result.total_fen, result.fulamt_ownpay_fen, result.overlmt_selfpay_fen, result.preselfpay_fen,
            result.inscp_fen) == (sum(item.line.amount_fen for item in lines),
                                  sum(item.fulamt_ownpay_fen for item in lines),
                                  sum(item.overlmt_selfpay_fen for item in lines),
                                  sum(item.preselfpay_fen for item in lines), sum(item.inscp_fen for item in lines))
    explained = reference_line_steps(lines)
    assert list(result.explanation[:len(explained)]) == explained
    assert [repr(step) for step in result.explanation[:len(explained)]] == [repr(step) for step in explained]  # key order
    assert result.explanation[len(explained)].key == "total"
    with built_by_dataclass_constructors():
        slow = adjudicate(classify_bill(bill, catalogue), stay, member, policy, ytd)
    assert type(slow.explanation[0]) is Step and type(slow.ytd_after) is Ytd  # the patch took
    assert result == slow and repr(result) == repr(slow)
    assert [type(step) for step in result.explanation] == [Step] * len(slow.explanation)
    assert type(result) is Adjudication and type(result.ytd_after) is Ytd


@CORE
@given(ytds, ytds)
def test_ytd_arithmetic_is_field_by_field(first: Ytd, second: Ytd) -> None:
    assert first.plus(second) == Ytd(*(getattr(first, name) + getattr(second, name) for name in YTD_FIELDS))
    assert first.minus(second) == Ytd(*(getattr(first, name) - getattr(second, name) for name in YTD_FIELDS))
    assert first.as_dict() == {name: getattr(first, name) for name in YTD_FIELDS}
    assert list(first.as_dict()) == list(YTD_FIELDS)
    difference = first.minus(second)
    assert difference.is_non_negative() == all(getattr(difference, name) >= 0 for name in YTD_FIELDS)


@HEAVY
@given(catalogues(), bills())
def test_classify_bill_is_classify_line_with_row_on_line_by_line(catalogue: Catalogue, bill: Bill) -> None:
    """The bill-level fast path (plans per catalogue version, rounding written out, values filled in place) against
    the per-line functions that check_classification and the insured rule use, twice over one catalogue so the
    second pass reads the plans kept from the first."""
    expected = tuple(classify_line(line, catalogue.row_on(line.code, line.service_date), bill.diagnoses,
                                   catalogue.region) for line in bill.lines)
    for _ in range(2):
        classified = classify_bill(bill, catalogue)
        assert classified == expected and [repr(item) for item in classified] == [repr(item) for item in expected]
        assert [type(item) for item in classified] == [LineClass] * len(expected)
