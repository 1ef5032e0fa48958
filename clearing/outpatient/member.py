"""A member's recognised special diseases (门诊慢特病认定, national 2503/2504/5301) and the per-disease
year-to-date accumulators a visit reads and advances (SPEC §13.3, §13.4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from clearing import limits
from clearing.dates import check_month, parse_day
from clearing.errors import InvalidField
from clearing.outpatient.visit import shown
from clearing.policy import Disease

@dataclass(frozen=True, slots=True)
class Recognition:
    """The insured region's recognition of one disease, valid from `valid_from` to `valid_to` inclusive
    (None: open-ended)."""

    disease: Disease
    valid_from: date
    valid_to: date | None

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True, slots=True)
class SpecialYtd:
    """One disease's accumulators for the policy year: the deductible and fund pay so far, and the pay of
    `month` ("YYYY-MM", None when none was recorded) for the monthly 定额."""

    deductible_fen: int = 0
    paid_fen: int = 0
    month: str | None = None
    month_paid_fen: int = 0

    def paid_in(self, month: str) -> int:
        """What this disease already paid in `month`: the recorded month's pay, or 0 for another month."""
        return self.month_paid_fen if self.month == month else 0

    def as_dict(self) -> dict[str, int | str | None]:
        return {"deductible_fen": self.deductible_fen, "paid_fen": self.paid_fen, "month": self.month,
                "month_paid_fen": self.month_paid_fen}


SPECIAL_YTD_FIELDS = ("deductible_fen", "paid_fen", "month", "month_paid_fen")


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def recognitions_from_list(raw: Any, where: str = "member.special_diseases") -> tuple[Recognition, ...]:
    """`[{"disease", "valid_from", "valid_to"}]`; a missing list means none, an empty or missing `valid_to` is open."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidField(where, "must be a list of {disease, valid_from, valid_to}")
    if len(raw) > limits.RECOGNITIONS_PER_MEMBER_MAX:
        raise InvalidField(where, f"must have at most {limits.RECOGNITIONS_PER_MEMBER_MAX} recognitions")
    recognitions = []
    for index, item in enumerate(raw):
        item_where = f"{where}[{index}]"
        if not isinstance(item, dict):
            raise InvalidField(item_where, "must be an object with disease, valid_from and valid_to")
        for key in item:
            if key not in ("disease", "valid_from", "valid_to"):
                raise InvalidField(f"{item_where}.{key}", "unknown field")
        disease = item.get("disease")
        if disease not in Disease.__members__.values():
            raise InvalidField(f"{item_where}.disease", f"unknown disease {shown(disease)} (expected one of "
                                                        f"{', '.join(Disease)})")
        valid_from = parse_day(item.get("valid_from"), f"{item_where}.valid_from")
        raw_to = item.get("valid_to")
        valid_to = None if raw_to in (None, "") else parse_day(raw_to, f"{item_where}.valid_to")
        if valid_to is not None and valid_to < valid_from:
            raise InvalidField(f"{item_where}.valid_to", "must not be before valid_from")
        recognitions.append(Recognition(Disease(disease), valid_from, valid_to))
    return tuple(recognitions)


def special_ytd_from_dict(raw: Any, where: str = "member.ytd_special") -> dict[Disease, SpecialYtd]:
    """`{"<disease>": {deductible_fen, paid_fen, month, month_paid_fen}}`; a missing entry or field means zeros."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidField(where, "must be an object keyed by disease")
    result: dict[Disease, SpecialYtd] = {}
    for name, entry in raw.items():
        entry_where = f"{where}.{name}"
        if name not in Disease.__members__.values():
            raise InvalidField(entry_where, f"unknown disease (expected one of {', '.join(Disease)})")
        if not isinstance(entry, dict):
            raise InvalidField(entry_where, "must be an object")
        for key in entry:
            if key not in SPECIAL_YTD_FIELDS:
                raise InvalidField(f"{entry_where}.{key}", "unknown accumulator")
        amounts = {}
        for key in ("deductible_fen", "paid_fen", "month_paid_fen"):
            value = entry.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidField(f"{entry_where}.{key}", "must be a non-negative integer")
            amounts[key] = value
        month = entry.get("month")
        if month is not None:
            check_month(month, f"{entry_where}.month")
        if month is None and amounts["month_paid_fen"]:
            raise InvalidField(f"{entry_where}.month", "is required when month_paid_fen is not 0")
        result[Disease(name)] = SpecialYtd(amounts["deductible_fen"], amounts["paid_fen"], month,
                                           amounts["month_paid_fen"])
    return result


def special_member_from_dict(data: Any) -> tuple[tuple[Recognition, ...], dict[Disease, SpecialYtd]]:
    """The SPEC §13.3 additions to M.json: `special_diseases` and `ytd_special` (the rest is `member_from_dict`)."""
    if not isinstance(data, dict):
        raise InvalidField("member", "must be a JSON object")
    return recognitions_from_list(data.get("special_diseases")), special_ytd_from_dict(data.get("ytd_special"))
