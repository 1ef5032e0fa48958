"""Classified lines received from another party (services/common/convert.py::line_class_from_proto).

Two properties bound what the insured agency and the clearing house accept (issue 9 item 6):
every line the core itself classifies is accepted unchanged (the check refuses no honest claim), and
every line that is accepted can be adjudicated and explained in both languages without an exception
(the check lets no line through that the explanation or adjudication cannot handle).
"""

from __future__ import annotations

from datetime import date

from clearinghouse.v1 import types_pb2 as pb
from hypothesis import event, given
from hypothesis import strategies as st
from test_core_properties import (
    ADMITTED_ON, CORE, HEAVY, INSURED_CODES, INSURED_REGION, catalogues, bills, members, policies, qty_text, stays,
    ytds,
)

from clearing.adjudicate import adjudicate
from clearing.catalogue import Catalogue
from clearing.bill import Bill
from clearing.classify import classify_bill, reclassify_for_insured
from clearing.errors import InvalidField
from services.common.convert import adjudication_to_proto, line_class_from_proto, line_class_to_proto

GRADES = [pb.GRADE_UNSPECIFIED, pb.GRADE_A, pb.GRADE_B, pb.GRADE_C]
REASONS = [pb.LINE_REASON_UNSPECIFIED, pb.LINE_REASON_GRADE_C, pb.LINE_REASON_UNMAPPED, pb.LINE_REASON_RESTRICTED,
           pb.LINE_REASON_OVER_CAP, pb.LINE_REASON_NOT_VALID_ON_DATE]


@HEAVY
@given(catalogues(), catalogues(region=INSURED_REGION, codes=INSURED_CODES), bills())
def test_every_line_the_core_classifies_is_accepted_unchanged(treating: Catalogue, insured: Catalogue,
                                                              bill: Bill) -> None:
    for index, treated in enumerate(classify_bill(bill, treating)):
        for item in (treated, reclassify_for_insured(treated, insured, bill.diagnoses)):
            assert line_class_from_proto(line_class_to_proto(item), index) == item


def half_up(numerator: int, denominator: int) -> int:
    """round_half_up(numerator / denominator) for non-negative values, independently of clearing.money."""
    return (2 * numerator + denominator) // (2 * denominator)


EXCLUDING = [pb.LINE_REASON_GRADE_C, pb.LINE_REASON_UNMAPPED, pb.LINE_REASON_RESTRICTED,
             pb.LINE_REASON_NOT_VALID_ON_DATE]


@st.composite
def line_messages(draw, index: int) -> pb.ClassifiedLine:
    """A classified line built the way SPEC §4.2 splits one (wholly self-paid for an excluding reason; else
    grade A or B with its over-cap and 先行自付 parts), then, half of the time, one field set to another
    value — so consistent lines and near misses of every kind come up."""
    qty_e4 = draw(st.integers(1, 50_000))
    unit_price_fen = draw(st.integers(0, 100_000))
    amount_fen = half_up(qty_e4 * unit_price_fen, 10_000)
    cap = draw(st.one_of(st.none(), st.integers(0, 120_000)))
    selfpay_bp = draw(st.integers(0, 10_000))
    fields: dict = {"national_code": "N1", "selfpay_bp": selfpay_bp, "price_cap_fen": cap,
                    "fulamt_ownpay_fen": 0, "overlmt_selfpay_fen": 0, "preselfpay_fen": 0}
    if draw(st.booleans()):  # excluded: wholly self-paid
        reason = draw(st.sampled_from(EXCLUDING))
        grade = pb.GRADE_C if reason == pb.LINE_REASON_GRADE_C else draw(st.sampled_from(GRADES))
        fields.update(reason=reason, grade=grade, fulamt_ownpay_fen=amount_fen,
                      national_code=draw(st.sampled_from(["N1", ""])))
    else:  # in scope
        grade = draw(st.sampled_from([pb.GRADE_A, pb.GRADE_B]))
        over_fen = half_up((unit_price_fen - cap) * qty_e4, 10_000) if cap is not None and cap < unit_price_fen \
            else 0
        pre_fen = half_up((amount_fen - over_fen) * selfpay_bp, 10_000) if grade == pb.GRADE_B else 0
        fields.update(reason=pb.LINE_REASON_OVER_CAP if over_fen else pb.LINE_REASON_UNSPECIFIED, grade=grade,
                      overlmt_selfpay_fen=over_fen, preselfpay_fen=pre_fen)
    if draw(st.booleans()):  # one field changed
        name = draw(st.sampled_from(sorted(fields)))
        fields[name] = draw({
            "reason": st.sampled_from(REASONS), "grade": st.sampled_from(GRADES),
            "national_code": st.sampled_from(["N1", ""]),
            "selfpay_bp": st.sampled_from([-1, 0, 500, 10_000, 10_001]),
            "price_cap_fen": st.one_of(st.none(), st.just(-1), st.integers(0, 120_000)),
        }.get(name, st.integers(0, amount_fen)))
    inscp_fen = amount_fen - fields["fulamt_ownpay_fen"] - fields["overlmt_selfpay_fen"] - fields["preselfpay_fen"]
    cap = fields.pop("price_cap_fen")
    message = pb.ClassifiedLine(
        line=pb.BillLine(line_id=str(index + 1), code="X000", qty=qty_text(qty_e4), unit_price_fen=unit_price_fen,
                         amount_fen=amount_fen, service_date=ADMITTED_ON.isoformat()),
        catalogue_region="440100", catalogue_code="X000", inscp_fen=max(0, inscp_fen),
        note=draw(st.sampled_from(["", "N1 → 430100 L000 (only)"])), **fields)
    if cap is not None:
        message.price_cap_fen = cap
    return message


@st.composite
def claims_of_lines(draw):
    policy = draw(policies())
    messages = [draw(line_messages(index)) for index in range(draw(st.integers(1, 3)))]
    return messages, policy, draw(members(policy)), draw(stays()), draw(ytds)


@CORE
@given(claims_of_lines())
def test_any_line_convert_accepts_is_adjudicated_and_explained_without_an_exception(case) -> None:
    messages, policy, member, stay, ytd = case
    try:
        lines = tuple(line_class_from_proto(message, index) for index, message in enumerate(messages))
    except InvalidField as refused:
        event(f"refused: {refused.field.split('.', 1)[-1]}")
        return
    event("accepted")
    result = adjudicate(lines, stay, member, policy, ytd)
    rendered = adjudication_to_proto(result, date(2026, 1, 1))  # every step rendered in Chinese and English
    assert all(step.text_zh and step.text_en for step in rendered.explanation)
    assert result.fund_pay_fen + result.psn_pay_fen == result.total_fen
