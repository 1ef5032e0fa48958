"""The hospital's bill for one outpatient special-disease visit (门诊慢特病, med_type 14), validated — SPEC §13.3.

A visit has one day, `visit_on`, instead of admission and discharge; every line is of that day (a line may leave
its `service_date` out). The bill's diagnoses, if any, are ignored: an `icd:` restriction is judged against the
disease's own ICD prefixes (§13.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from clearing import limits
from clearing.bill import Bill, BillLine, check_hospital_code, check_hospital_level, check_region, make_line
from clearing.dates import parse_day
from clearing.errors import InvalidField
from clearing.policy import Disease

KIND = "outpatient_special"
# The keys of an inpatient stay that have no meaning on a visit: present, they are an error naming the key.
STAY_ONLY_KEYS = ("admitted_on", "discharged_on")


@dataclass(frozen=True, slots=True)
class Visit:
    """One outpatient special-disease visit at a hospital of `region` (the treating region)."""

    region: str
    hospital_code: str
    hospital_level: int
    visit_on: date
    disease: Disease
    lines: tuple[BillLine, ...]

    @property
    def total_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)

    def for_classification(self, icd_prefixes: tuple[str, ...]) -> Bill:
        """The visit as a one-day `Bill` for `classify_bill`, its diagnoses the disease's ICD prefixes: a line's
        `icd:` prefix p is met when one of them starts with p (SPEC §13.4), which is exactly §4.2's test with the
        prefixes in the diagnoses' place."""
        return Bill(self.region, self.hospital_code, self.hospital_level, self.visit_on, self.visit_on, False,
                    icd_prefixes, self.lines)


def shown(value: Any) -> str:
    """A bad value for an error message, cut short: the message is one line on an operator's terminal."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def is_visit(data: Any) -> bool:
    """A bill with a `kind` is a visit or an error; without one it is an inpatient stay (SPEC §13.3)."""
    if not isinstance(data, dict) or "kind" not in data:
        return False
    if data["kind"] != KIND:
        raise InvalidField("kind", f"unknown kind {shown(data['kind'])} (expected {KIND!r}, or no kind for a stay)")
    return True


def visit_from_dict(data: Any) -> Visit:
    """Parse the SPEC §13.3 visit bill (already JSON-decoded); every error names its field."""
    if not isinstance(data, dict):
        raise InvalidField("bill", "must be a JSON object")
    if data.get("kind") != KIND:
        raise InvalidField("kind", f"must be {KIND!r} for an outpatient special-disease visit")
    for key in STAY_ONLY_KEYS:
        if key in data:
            raise InvalidField(key, "is not allowed on an outpatient visit (it has one day, visit_on)")
    disease = data.get("disease")
    if disease not in Disease.__members__.values():
        raise InvalidField("disease", f"unknown disease {shown(disease)} (expected one of {', '.join(Disease)})")
    visit_on = parse_day(data.get("visit_on"), "visit_on")
    hospital = data.get("hospital")
    if not isinstance(hospital, dict):
        raise InvalidField("hospital", "must be an object with code and level")
    lines = visit_lines(data.get("lines"), visit_on)
    visit = Visit(
        region=check_region(data.get("region"), "region"),
        hospital_code=check_hospital_code(hospital.get("code"), "hospital.code"),
        hospital_level=check_hospital_level(hospital.get("level"), "hospital.level"),
        visit_on=visit_on,
        disease=Disease(disease),
        lines=lines,
    )
    if visit.total_fen > limits.BILL_TOTAL_FEN_MAX:
        raise InvalidField("lines", f"total exceeds {limits.BILL_TOTAL_FEN_MAX} fen")
    if visit.hospital_code[1:7] != visit.region:
        raise InvalidField("hospital.code", f"is not a hospital of region {visit.region}")
    return visit


def visit_lines(raw_lines: Any, visit_on: date) -> tuple[BillLine, ...]:
    """The lines, each of the visit's day: an omitted `service_date` is `visit_on`, any other day is an error."""
    if not isinstance(raw_lines, list):
        raise InvalidField("lines", "must be a list")
    if not raw_lines:
        raise InvalidField("lines", "must have at least one line")
    if len(raw_lines) > limits.LINES_PER_BILL_MAX:
        raise InvalidField("lines", f"must have at most {limits.LINES_PER_BILL_MAX} lines")
    lines: list[BillLine] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_lines):
        if not isinstance(raw, dict):
            raise InvalidField(f"lines[{index}]", "must be an object")
        service_date = raw.get("service_date")
        if service_date is None:  # omitted (or null): the visit's day
            service_date = visit_on.isoformat()
        line = make_line(index, raw.get("line_id"), raw.get("code"), raw.get("qty"), raw.get("unit_price_fen"),
                         raw.get("amount_fen"), service_date)
        if line.service_date != visit_on:
            raise InvalidField(f"lines[{index}].service_date", f"must be the visit's day {visit_on} (or left out)")
        if line.line_id in seen:
            raise InvalidField(f"lines[{index}].line_id", f"{line.line_id!r} appears twice")
        seen.add(line.line_id)
        lines.append(line)
    return tuple(lines)
