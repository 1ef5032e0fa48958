"""The knowledge base (知识库): facts about items, keyed by national code — SPEC §12.1.

`parse_knowledge_base(text)` takes the CSV's text (the caller reads the file) and returns a `KnowledgeBase`
whose `version` is the SHA-256 of the text, so a settlement can record exactly which facts audited it.
Errors name the file row and column (`row 7.max_age`), counting the header as row 1.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from clearing import limits
from clearing.bill import CONTROL_CHARACTERS, HOSPITAL_LEVELS
from clearing.catalogue import csv_records
from clearing.errors import InvalidField
from clearing.money import parse_qty_e4

COLUMNS = (
    "national_code", "sex", "min_age", "max_age", "min_hospital_level", "max_qty_per_day", "bed_day",
    "exclusive_group",
)
SEXES = ("M", "F")
AGE_MAX = 150  # whole years; any larger bound is a typo
GROUP_LENGTH_MAX = 64
WHOLE_NUMBER = re.compile(r"^[0-9]{1,3}\Z")  # ASCII digits only


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """What the knowledge base says about one national code; None (or "") = no such restriction."""

    national_code: str
    sex: str | None  # "M" or "F": the item may only be paid for that sex
    min_age: int | None  # whole years, inclusive, on the service date
    max_age: int | None
    min_hospital_level: int | None  # 1–3: payable only at that level or higher
    max_qty_per_day_e4: int | None  # ten-thousandths, for one code on one service date
    bed_day: bool  # charged per bed-day (床位费)
    exclusive_group: str  # "" = none; items of one group are mutually exclusive on one service date


@dataclass(frozen=True)
class KnowledgeBase:
    """One version of the knowledge base: the facts by national code."""

    version: str  # SHA-256 (hex) of the CSV text it was parsed from
    items: tuple[ItemFacts, ...]
    by_code: dict[str, ItemFacts] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_code", {item.national_code: item for item in self.items})
        assert len(self.by_code) == len(self.items), "duplicate national codes are refused by the parser"

    def facts(self, national_code: str) -> ItemFacts | None:
        return self.by_code.get(national_code)


def text_version(text: str) -> str:
    """The version of a library file: the SHA-256 of its text (UTF-8), hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_knowledge_base(text: str) -> KnowledgeBase:
    """Parse a SPEC §12.1 knowledge-base CSV (BOM and extra columns allowed, every column required)."""
    items: list[ItemFacts] = []
    first_row: dict[str, int] = {}
    for row_number, raw in csv_records(text, COLUMNS):
        item = parse_row(raw, f"row {row_number}")
        if item.national_code in first_row:
            raise InvalidField(f"row {row_number}.national_code",
                               f"{item.national_code} is already on row {first_row[item.national_code]}")
        first_row[item.national_code] = row_number
        items.append(item)
    return KnowledgeBase(version=text_version(text), items=tuple(items))


def parse_row(raw: dict[str, str | None], where: str) -> ItemFacts:
    values = {name: (raw.get(name) or "").strip() for name in COLUMNS}
    code = values["national_code"]
    if not code or len(code) > limits.CODE_LENGTH_MAX or CONTROL_CHARACTERS.search(code):
        raise InvalidField(f"{where}.national_code", "must be a non-empty code")
    sex = values["sex"]
    if sex not in ("", *SEXES):
        raise InvalidField(f"{where}.sex", f"unknown value {sex!r} (expected M, F or empty)")
    min_age = whole(values["min_age"], f"{where}.min_age", AGE_MAX)
    max_age = whole(values["max_age"], f"{where}.max_age", AGE_MAX)
    if min_age is not None and max_age is not None and max_age < min_age:
        raise InvalidField(f"{where}.max_age", f"{max_age} is below min_age {min_age}")
    level = whole(values["min_hospital_level"], f"{where}.min_hospital_level", max(HOSPITAL_LEVELS))
    if level is not None and level not in HOSPITAL_LEVELS:
        raise InvalidField(f"{where}.min_hospital_level", "must be 1, 2, 3 or empty")
    if values["bed_day"] not in ("", "0", "1"):
        raise InvalidField(f"{where}.bed_day", f"unknown value {values['bed_day']!r} (expected 1, 0 or empty)")
    group = values["exclusive_group"]
    if len(group) > GROUP_LENGTH_MAX or CONTROL_CHARACTERS.search(group):
        raise InvalidField(f"{where}.exclusive_group", f"must be a name of at most {GROUP_LENGTH_MAX} characters")
    qty_text = values["max_qty_per_day"]
    return ItemFacts(
        national_code=code,
        sex=sex or None,
        min_age=min_age,
        max_age=max_age,
        min_hospital_level=level,
        max_qty_per_day_e4=parse_qty_e4(qty_text, f"{where}.max_qty_per_day") if qty_text else None,
        bed_day=values["bed_day"] == "1",
        exclusive_group=group,
    )


def whole(text: str, where: str, value_max: int) -> int | None:
    """A whole number (ages, levels), or None when empty."""
    if text == "":
        return None
    if not WHOLE_NUMBER.match(text):
        raise InvalidField(where, f"{text!r} is not a whole number")
    value = int(text)
    if value > value_max:
        raise InvalidField(where, f"must not exceed {value_max}")
    return value
