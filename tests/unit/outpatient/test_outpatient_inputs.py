"""The visit bill and the member's §13.3 additions as parsed (clearing/outpatient/visit.py, member.py): good
input round-trips, every bad field is refused with its name."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opd_cases import visit_bill

from clearing.errors import InvalidField
from clearing.outpatient.member import Recognition, SpecialYtd, special_member_from_dict
from clearing.outpatient.visit import is_visit, visit_from_dict
from clearing.policy import Disease


def test_a_visit_parses_and_its_lines_take_the_visit_day() -> None:
    line = {"line_id": "2", "code": "X0002", "qty": "0.5", "unit_price_fen": 333, "amount_fen": 167,
            "service_date": "2026-03-05"}
    parsed = visit_from_dict(visit_bill(lines=[visit_bill()["lines"][0], line], diagnoses=["E11.9"]))
    assert (parsed.region, parsed.hospital_level, parsed.visit_on, parsed.disease) == (
        "440100", 3, date(2026, 3, 5), Disease.DIABETES)
    assert [item.service_date for item in parsed.lines] == [date(2026, 3, 5)] * 2
    assert parsed.total_fen == 200_167


def test_a_bill_without_kind_is_a_stay_and_an_unknown_kind_is_refused() -> None:
    assert is_visit({"region": "440100"}) is False
    assert is_visit(visit_bill()) is True
    for kind in ("inpatient", "outpatient", None, 14):
        with pytest.raises(InvalidField) as caught:
            is_visit(visit_bill(kind=kind))
        assert caught.value.field == "kind"


def line_with(**changes: object) -> dict:
    return {"lines": [{**visit_bill()["lines"][0], **changes}]}


@pytest.mark.parametrize(("changes", "field"), [
    ({"admitted_on": "2026-03-05"}, "admitted_on"),
    ({"discharged_on": "2026-03-05"}, "discharged_on"),
    ({"disease": "asthma"}, "disease"),
    ({"disease": None}, "disease"),
    ({"visit_on": None}, "visit_on"),
    ({"visit_on": "2026-02-30"}, "visit_on"),
    ({"region": "4401"}, "region"),
    ({"hospital": None}, "hospital"),
    ({"hospital": {"code": "H43010000001", "level": 3}}, "hospital.code"),
    ({"hospital": {"code": "H44010000001", "level": 4}}, "hospital.level"),
    ({"lines": []}, "lines"),
    ({"lines": "x"}, "lines"),
    (line_with(service_date="2026-03-06"), "lines[0].service_date"),
    (line_with(service_date="5 March"), "lines[0].service_date"),
    (line_with(amount_fen=199_999), "lines[0].amount_fen"),
    (line_with(qty="0"), "lines[0].qty"),
    ({"lines": [visit_bill()["lines"][0]] * 2}, "lines[1].line_id"),
])
def test_bad_visit_fields_are_named(changes: dict, field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        visit_from_dict(visit_bill(**changes))
    assert caught.value.field == field


def test_the_member_additions_parse_with_missing_meaning_none_or_zeros() -> None:
    assert special_member_from_dict({}) == ((), {})
    recognitions, accumulators = special_member_from_dict({
        "special_diseases": [{"disease": "dialysis", "valid_from": "2025-06-01", "valid_to": None},
                             {"disease": "diabetes", "valid_from": "2026-01-01", "valid_to": ""},
                             {"disease": "diabetes", "valid_from": "2024-01-01", "valid_to": "2025-12-31"}],
        "ytd_special": {"dialysis": {"paid_fen": 5, "month": "2026-03", "month_paid_fen": 5}, "diabetes": {}},
    })
    assert recognitions == (Recognition(Disease.DIALYSIS, date(2025, 6, 1), None),
                            Recognition(Disease.DIABETES, date(2026, 1, 1), None),
                            Recognition(Disease.DIABETES, date(2024, 1, 1), date(2025, 12, 31)))
    assert accumulators == {Disease.DIALYSIS: SpecialYtd(0, 5, "2026-03", 5), Disease.DIABETES: SpecialYtd()}


@pytest.mark.parametrize(("data", "field"), [
    ({"special_diseases": {"disease": "diabetes"}}, "member.special_diseases"),
    ({"special_diseases": ["diabetes"]}, "member.special_diseases[0]"),
    ({"special_diseases": [{"disease": "gout", "valid_from": "2026-01-01"}]}, "member.special_diseases[0].disease"),
    ({"special_diseases": [{"disease": "diabetes"}]}, "member.special_diseases[0].valid_from"),
    ({"special_diseases": [{"disease": "diabetes", "valid_from": "2026-01-01", "valid_to": "2025-12-31"}]},
     "member.special_diseases[0].valid_to"),
    ({"special_diseases": [{"disease": "diabetes", "valid_from": "2026-01-01", "until": None}]},
     "member.special_diseases[0].until"),
    ({"ytd_special": []}, "member.ytd_special"),
    ({"ytd_special": {"gout": {}}}, "member.ytd_special.gout"),
    ({"ytd_special": {"diabetes": {"paid": 1}}}, "member.ytd_special.diabetes.paid"),
    ({"ytd_special": {"diabetes": {"paid_fen": -1}}}, "member.ytd_special.diabetes.paid_fen"),
    ({"ytd_special": {"diabetes": {"deductible_fen": 1.5}}}, "member.ytd_special.diabetes.deductible_fen"),
    ({"ytd_special": {"diabetes": {"month": "2026-13"}}}, "member.ytd_special.diabetes.month"),
    ({"ytd_special": {"diabetes": {"month": "2026-3"}}}, "member.ytd_special.diabetes.month"),
    ({"ytd_special": {"diabetes": {"month_paid_fen": 5}}}, "member.ytd_special.diabetes.month"),
])
def test_bad_member_additions_are_named(data: dict, field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        special_member_from_dict(data)
    assert caught.value.field == field


# ---- anything JSON can hold: a named error or a value, never another exception ----------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)
VISIT_KEYS = ("kind", "disease", "region", "hospital", "visit_on", "lines", "admitted_on", "diagnoses")
LINE_KEYS = ("line_id", "code", "qty", "unit_price_fen", "amount_fen", "service_date")


@given(st.sampled_from(VISIT_KEYS), json_values, st.sampled_from(LINE_KEYS), json_values)
@settings(max_examples=300, derandomize=True, deadline=None, database=None)
def test_any_json_in_a_visit_field_is_a_named_error_or_a_visit(key: str, value: object, line_key: str,
                                                               line_value: object) -> None:
    for data in (visit_bill(**{key: value}), visit_bill(lines=[{**visit_bill()["lines"][0], line_key: line_value}])):
        try:
            visit_from_dict(data)
        except InvalidField as error:
            assert error.field and len(error.message) < 300


@given(st.sampled_from(("special_diseases", "ytd_special")), json_values, json_values)
@settings(max_examples=300, derandomize=True, deadline=None, database=None)
def test_any_json_in_the_member_additions_is_a_named_error_or_parses(key: str, value: object, inner: object) -> None:
    wrapped = [{"disease": "diabetes", "valid_from": inner}] if key == "special_diseases" else {"dialysis": inner}
    for data in ({key: value}, {key: wrapped}):
        try:
            special_member_from_dict(data)
        except InvalidField as error:
            assert error.field.startswith(f"member.{key}") and len(error.message) < 300
