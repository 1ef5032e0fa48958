"""The hospital's bill, validated at the edge (SPEC §4.2, §5.3 B.json): `clearing/bill.py`."""

from __future__ import annotations

from datetime import date

import pytest

from conftest import HOSPITAL_CODE, bill, bill_dict, bill_line_dict, line

from clearing.bill import bill_from_dict
from clearing.errors import InvalidField


def field_of(data: dict) -> str:
    with pytest.raises(InvalidField) as caught:
        bill_from_dict(data)
    return caught.value.field


def test_spec_example_bill_parses() -> None:
    parsed = bill_from_dict(bill_dict())
    assert parsed.region == "440100"
    assert parsed.hospital_code == HOSPITAL_CODE
    assert parsed.hospital_level == 3
    assert parsed.admitted_on == date(2026, 3, 1)
    assert parsed.discharged_on == date(2026, 3, 10)
    assert parsed.emergency is False
    assert parsed.diagnoses == ("C34.1",)
    (only,) = parsed.lines
    assert (only.line_id, only.code, only.qty_e4, only.unit_price_fen, only.amount_fen) == \
        ("1", "X0001", 20_000, 1500, 3000)  # qty "2" = 20,000 ten-thousandths; 2 × 15.00 = 30.00 yuan
    assert only.service_date == date(2026, 3, 2)
    assert parsed.total_fen == 3000


def test_total_is_the_sum_of_line_amounts() -> None:
    parsed = bill(line(line_id="a", qty="0.3333", unit_price_fen=1000, amount_fen=333),
                  line(line_id="b", qty="2", unit_price_fen=1500, amount_fen=3000))
    assert parsed.total_fen == 3333  # 333 + 3000


def test_fractional_amount_that_rounds_half_up_is_accepted() -> None:
    # 1.5 × 3 fen = 4.5 → 5 fen
    parsed = bill_from_dict(bill_dict(lines=[bill_line_dict(qty="1.5", unit_price_fen=3, amount_fen=5)]))
    assert parsed.lines[0].amount_fen == 5


@pytest.mark.parametrize("amount_fen", [
    2999,  # one fen short of 2 × 1500
    3001,
    0,
])
def test_amount_not_equal_to_qty_times_price_is_rejected(amount_fen: int) -> None:
    data = bill_dict(lines=[bill_line_dict(line_id="1"),
                            bill_line_dict(line_id="2", amount_fen=amount_fen)])
    assert field_of(data) == "lines[1].amount_fen"


def test_amount_rounded_down_at_the_half_is_rejected() -> None:
    # 1.5 × 3 = 4.5 must be 5 (half up); 4 is banker's/truncating rounding.
    data = bill_dict(lines=[bill_line_dict(qty="1.5", unit_price_fen=3, amount_fen=4)])
    assert field_of(data) == "lines[0].amount_fen"


@pytest.mark.parametrize(("key", "value"), [
    ("unit_price_fen", 1500.0),
    ("unit_price_fen", "1500"),
    ("unit_price_fen", True),
    ("unit_price_fen", -1500),
    ("amount_fen", 3000.0),
    ("amount_fen", "3000"),
    ("amount_fen", None),
])
def test_money_must_be_a_non_negative_integer(key: str, value: object) -> None:
    data = bill_dict(lines=[bill_line_dict(**{key: value})])
    assert field_of(data) == f"lines[0].{key}"


@pytest.mark.parametrize("qty", ["0", "-1", "abc", "0.00001", 2])
def test_bad_qty_names_the_line(qty: object) -> None:
    data = bill_dict(lines=[bill_line_dict(), bill_line_dict(line_id="2", qty=qty)])
    assert field_of(data) == "lines[1].qty"


@pytest.mark.parametrize(("key", "value"), [
    ("admitted_on", "2026-02-30"),
    ("admitted_on", "2026/03/01"),
    ("admitted_on", "20260301"),
    ("discharged_on", "2026-13-01"),
    ("discharged_on", None),
])
def test_bad_dates_are_named(key: str, value: object) -> None:
    assert field_of(bill_dict(**{key: value})) == key


def test_bad_service_date_is_named() -> None:
    data = bill_dict(lines=[bill_line_dict(service_date="2026-03-32")])
    assert field_of(data) == "lines[0].service_date"


def test_discharge_before_admission_is_rejected() -> None:
    assert field_of(bill_dict(admitted_on="2026-03-10", discharged_on="2026-03-01")) == "discharged_on"


def test_same_day_stay_is_accepted() -> None:
    data = bill_dict(admitted_on="2026-03-02", discharged_on="2026-03-02")
    assert bill_from_dict(data).discharged_on == date(2026, 3, 2)


@pytest.mark.parametrize("service_date", ["2026-02-28", "2026-03-11"])
def test_service_date_outside_the_stay_is_rejected(service_date: str) -> None:
    data = bill_dict(lines=[bill_line_dict(), bill_line_dict(line_id="2", service_date=service_date)])
    assert field_of(data) == "lines[1].service_date"


@pytest.mark.parametrize("service_date", ["2026-03-01", "2026-03-10"])
def test_service_date_on_admission_or_discharge_day_is_inside(service_date: str) -> None:
    parsed = bill_from_dict(bill_dict(lines=[bill_line_dict(service_date=service_date)]))
    assert parsed.lines[0].service_date == date.fromisoformat(service_date)


def test_duplicate_line_ids_are_rejected() -> None:
    data = bill_dict(lines=[bill_line_dict(line_id="7"), bill_line_dict(line_id="8"),
                            bill_line_dict(line_id="7")])
    assert field_of(data) == "lines[2].line_id"


def test_hospital_of_another_region_is_rejected() -> None:
    # H + 430100 + 00001 is a 长沙 hospital; the bill says the treating region is 440100.
    data = bill_dict(hospital={"code": "H43010000001", "level": 3})
    assert field_of(data) == "hospital.code"


@pytest.mark.parametrize("code", ["44010000001", "H4401000001", "H440100000011", "h44010000001", 44010000001])
def test_malformed_hospital_code_is_rejected(code: object) -> None:
    assert field_of(bill_dict(hospital={"code": code, "level": 3})) == "hospital.code"


@pytest.mark.parametrize("level", [0, 4, "3", True, None])
def test_hospital_level_must_be_1_2_or_3(level: object) -> None:
    assert field_of(bill_dict(hospital={"code": HOSPITAL_CODE, "level": level})) == "hospital.level"


@pytest.mark.parametrize("region", ["44010", "4401000", "abcdef", 440100])
def test_region_must_be_six_digits(region: object) -> None:
    assert field_of(bill_dict(region=region)) == "region"


def test_no_lines_is_rejected() -> None:
    assert field_of(bill_dict(lines=[])) == "lines"


def test_diagnoses_are_required_and_checked() -> None:
    assert field_of(bill_dict(diagnoses=[])) == "diagnoses"
    assert field_of(bill_dict(diagnoses=["C34.1", "not-icd"])) == "diagnoses[1]"


@pytest.mark.parametrize("code", ["C34", "C34.1", "C341", "c34.1", "A02.205+N16.0*"])
def test_diagnosis_codes_with_or_without_dots_are_accepted(code: str) -> None:
    assert bill_from_dict(bill_dict(diagnoses=[code])).diagnoses == (code,)


def test_emergency_must_be_a_boolean() -> None:
    assert field_of(bill_dict(emergency="yes")) == "emergency"


def test_missing_line_code_is_named() -> None:
    data = bill_dict(lines=[bill_line_dict(code="")])
    assert field_of(data) == "lines[0].code"
