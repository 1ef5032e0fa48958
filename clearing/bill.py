"""The hospital's itemised bill for one inpatient stay, validated (SPEC §4.2, §5.3 B.json).

A bill whose line amounts do not equal `round_half_up(qty × unit_price)`, whose dates are out of
order, or that exceeds a bound is rejected here with the offending field named; nothing after
this point needs to re-check input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from clearing import limits
from clearing.dates import parse_day
from clearing.errors import InvalidField
from clearing.medical_record import MedicalRecord, record_from_dict
from clearing.money import line_amount_fen, parse_qty_e4

# ASCII digits and \Z: `\d` also takes ４ and ٤, and `$` matches before a trailing newline.
REGION_PATTERN = re.compile(r"^[0-9]{6}\Z")
HOSPITAL_PATTERN = re.compile(r"^H[0-9]{11}\Z")
DIAGNOSIS_PATTERN = re.compile(r"^[A-Za-z][0-9]{2}[0-9A-Za-z.+*]{0,16}\Z")  # C34, C34.1, C341, A02.205+N16.0*
HOSPITAL_LEVELS = (1, 2, 3)
# Unicode category Cc (C0, DEL, C1): no identifier, code or name has them, and Postgres text cannot hold NUL.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class BillLine:
    """One charge line (费用明细): `qty_e4` in ten-thousandths, money in fen."""

    line_id: str
    code: str
    qty_e4: int
    unit_price_fen: int
    amount_fen: int
    service_date: date


@dataclass(frozen=True, slots=True)
class Bill:
    """One inpatient stay at a hospital of `region` (the treating region), with its lines."""

    region: str
    hospital_code: str
    hospital_level: int
    admitted_on: date
    discharged_on: date
    emergency: bool
    diagnoses: tuple[str, ...]
    lines: tuple[BillLine, ...]
    # Procedures, sex, age, newborn facts, discharge status (病案首页): for DRG grouping, never for the money.
    record: MedicalRecord = MedicalRecord()

    @property
    def total_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)


def check_region(value: object, field: str) -> str:
    """A 6-digit GB/T 2260 region code (`440100`)."""
    if not isinstance(value, str) or not REGION_PATTERN.match(value):
        raise InvalidField(field, "must be a 6-digit region code such as 440100")
    return value


def check_hospital_code(value: object, field: str) -> str:
    """`H` + 6-digit region + 5 digits (`H44010000001`)."""
    if not isinstance(value, str) or not HOSPITAL_PATTERN.match(value):
        raise InvalidField(field, "must be H + 6-digit region + 5 digits, such as H44010000001")
    return value


def check_hospital_level(value: object, field: str) -> int:
    if isinstance(value, bool) or value not in HOSPITAL_LEVELS:
        raise InvalidField(field, "must be 1, 2 or 3")
    return int(value)  # type: ignore[arg-type]


def check_text(value: object, field: str, length_max: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(field, "must be a non-empty string")
    if len(value) > length_max:
        raise InvalidField(field, f"is longer than {length_max} characters")
    if CONTROL_CHARACTERS.search(value):
        raise InvalidField(field, "must not contain control characters")
    return value


ID_NUMBER_LENGTH = 18


def check_id_number(value: str, field: str) -> str:
    """18-character national ID number (身份证号): 17 ASCII digits and a digit or X; returned with X upper-case.
    The check character is not verified (test and legacy numbers need not carry a valid one)."""
    if not isinstance(value, str) or len(value) != ID_NUMBER_LENGTH or not value.isascii() \
            or not value[:17].isdigit() or not (value[17].isdigit() or value[17] in "Xx"):
        raise InvalidField(field, "must be an 18-character ID number")
    return value.upper()


def check_fen(value: object, field: str, value_max: int) -> int:
    """A non-negative integer amount in fen; floats and strings are refused (money is never a float)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(field, "must be an integer number of fen")
    if value < 0:
        raise InvalidField(field, "must not be negative")
    if value > value_max:
        raise InvalidField(field, f"must not exceed {value_max}")
    return value


def check_diagnoses(values: object, field: str) -> tuple[str, ...]:
    if not isinstance(values, (list, tuple)) or not values:
        raise InvalidField(field, "must list at least one ICD-10 diagnosis")
    if len(values) > limits.DIAGNOSES_PER_STAY_MAX:
        raise InvalidField(field, f"must have at most {limits.DIAGNOSES_PER_STAY_MAX} diagnoses")
    return tuple(check_diagnosis(code, f"{field}[{index}]") for index, code in enumerate(values))


def check_diagnosis(code: object, field: str) -> str:
    """One ICD-10 (医保版) diagnosis code."""
    if not isinstance(code, str) or not DIAGNOSIS_PATTERN.match(code):
        raise InvalidField(field, "must be an ICD-10 code such as C34.1")
    return code


def make_line(
    index: int, line_id: object, code: object, qty: object, unit_price_fen: object, amount_fen: object,
    service_date: object,
) -> BillLine:
    """Validate one line; `lines[index].<field>` names whatever is wrong."""
    prefix = f"lines[{index}]"
    line = BillLine(
        line_id=check_text(line_id, f"{prefix}.line_id", limits.LINE_ID_LENGTH_MAX),
        code=check_text(code, f"{prefix}.code", limits.CODE_LENGTH_MAX),
        qty_e4=parse_qty_e4(qty, f"{prefix}.qty"),  # type: ignore[arg-type]
        unit_price_fen=check_fen(unit_price_fen, f"{prefix}.unit_price_fen", limits.UNIT_PRICE_FEN_MAX),
        amount_fen=check_fen(amount_fen, f"{prefix}.amount_fen", limits.BILL_TOTAL_FEN_MAX),
        service_date=parse_day(service_date, f"{prefix}.service_date"),
    )
    if line.qty_e4 > limits.QTY_E4_MAX:
        raise InvalidField(f"{prefix}.qty", f"must not exceed {limits.QTY_E4_MAX // 10_000}")
    expected_fen = line_amount_fen(line.qty_e4, line.unit_price_fen)
    if line.amount_fen != expected_fen:
        raise InvalidField(
            f"{prefix}.amount_fen",
            f"is {line.amount_fen} but round_half_up(qty × unit_price_fen) is {expected_fen}",
        )
    return line


def make_bill(
    region: object, hospital_code: object, hospital_level: object, admitted_on: object, discharged_on: object,
    emergency: object, diagnoses: object, lines: tuple[BillLine, ...], record: MedicalRecord | None = None,
) -> Bill:
    """Validate the stay around already-validated lines; checks dates, bounds and uniqueness."""
    admitted = parse_day(admitted_on, "admitted_on")
    discharged = parse_day(discharged_on, "discharged_on")
    if discharged < admitted:
        raise InvalidField("discharged_on", "must not be before admitted_on")
    if (discharged - admitted).days > limits.STAY_DAYS_MAX:
        raise InvalidField("discharged_on", f"stay is longer than {limits.STAY_DAYS_MAX} days")
    if not isinstance(emergency, bool):
        raise InvalidField("emergency", "must be true or false")
    if not lines:
        raise InvalidField("lines", "must have at least one line")
    if len(lines) > limits.LINES_PER_BILL_MAX:
        raise InvalidField("lines", f"must have at most {limits.LINES_PER_BILL_MAX} lines")
    seen: set[str] = set()
    for index, line in enumerate(lines):
        if line.line_id in seen:
            raise InvalidField(f"lines[{index}].line_id", f"{line.line_id!r} appears twice")
        seen.add(line.line_id)
        if not admitted <= line.service_date <= discharged:
            raise InvalidField(f"lines[{index}].service_date", "must be between admitted_on and discharged_on")
    bill = Bill(
        region=check_region(region, "region"),
        hospital_code=check_hospital_code(hospital_code, "hospital.code"),
        hospital_level=check_hospital_level(hospital_level, "hospital.level"),
        admitted_on=admitted,
        discharged_on=discharged,
        emergency=emergency,
        diagnoses=check_diagnoses(diagnoses, "diagnoses"),
        lines=lines,
        record=record or MedicalRecord(),
    )
    if bill.total_fen > limits.BILL_TOTAL_FEN_MAX:
        raise InvalidField("lines", f"total exceeds {limits.BILL_TOTAL_FEN_MAX} fen")
    if bill.hospital_code[1:7] != bill.region:
        raise InvalidField("hospital.code", f"is not a hospital of region {bill.region}")
    return bill


def bill_from_dict(data: Any) -> Bill:
    """Parse the SPEC §5.3 B.json shape (already JSON-decoded), with the optional 病案首页 keys of
    `clearing.medical_record` (procedures, sex, age_years, age_days, birth_weight_g, discharge_status)."""
    if not isinstance(data, dict):
        raise InvalidField("bill", "must be a JSON object")
    hospital = data.get("hospital")
    if not isinstance(hospital, dict):
        raise InvalidField("hospital", "must be an object with code and level")
    raw_lines = data.get("lines")
    if not isinstance(raw_lines, list):
        raise InvalidField("lines", "must be a list")
    if len(raw_lines) > limits.LINES_PER_BILL_MAX:
        raise InvalidField("lines", f"must have at most {limits.LINES_PER_BILL_MAX} lines")
    lines = []
    for index, raw in enumerate(raw_lines):
        if not isinstance(raw, dict):
            raise InvalidField(f"lines[{index}]", "must be an object")
        lines.append(make_line(
            index, raw.get("line_id"), raw.get("code"), raw.get("qty"), raw.get("unit_price_fen"),
            raw.get("amount_fen"), raw.get("service_date"),
        ))
    return make_bill(
        data.get("region"), hospital.get("code"), hospital.get("level"), data.get("admitted_on"),
        data.get("discharged_on"), data.get("emergency", False), data.get("diagnoses"), tuple(lines),
        record_from_dict(data),
    )
