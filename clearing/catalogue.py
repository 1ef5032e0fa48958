"""A region's versioned three catalogues (三个目录) and its CSV import format — SPEC §4.1.

A `Catalogue` is one imported version: immutable rows, each valid over an inclusive date range.
One local code may have several rows over time whose ranges never overlap; classification
always uses the row valid on the line's service date (`row_on`).
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import TypeVar

from clearing import limits
from clearing.dates import parse_day
from clearing.errors import InvalidField
from clearing.money import BP_WHOLE

COLUMNS = (
    "local_code", "national_code", "relation", "kind", "name", "grade", "selfpay_bp", "price_cap_fen",
    "restriction", "valid_from", "valid_to",
)
EnumT = TypeVar("EnumT", bound=StrEnum)
PLAIN_INTEGER = re.compile(r"^[0-9]{1,12}$")  # ASCII digits only; isdigit() also takes ² and ١
# A restriction's ICD-10 list: `icd:` (or full-width `icd：`, any case), then code prefixes separated by commas
# (ASCII or full-width), running to the end of the text or to a closing mark (`;` `；` `。` `)` `）`) after which
# free text may follow. A prefix is a letter and up to two digits (`C`, `C3`, `C34`), or a three-character
# category with more of a 医保版 code after it, the dot optional (`C34.1`, `C341`, `C34.100x001`).
ICD_MARK = re.compile(r"icd[:：]", re.IGNORECASE)
ICD_LIST_END = re.compile(r"[;；。)）]")
ICD_PREFIX = re.compile(r"[A-Z](?:[0-9]{0,2}|[0-9]{2}\.?[0-9A-Z]+)")


class Kind(StrEnum):
    """Which of the three catalogues an item belongs to."""

    DRUG = "drug"  # 药品目录
    SERVICE = "service"  # 诊疗项目目录
    CONSUMABLE = "consumable"  # 医疗服务设施 / 医用耗材


class Relation(StrEnum):
    """How a local item relates to its national code."""

    EQUIVALENT = "equivalent"
    NARROWER = "narrower"  # the local item is a subset of the national one
    WIDER = "wider"


class Grade(StrEnum):
    """Payment grade: A 甲类 fully in scope, B 乙类 with a self-pay share, C 丙类 not covered."""

    A = "A"
    B = "B"
    C = "C"


@dataclass(frozen=True, slots=True)
class CatalogueRow:
    """One version of one local item. `national_code == ""` means the item is unmapped."""

    local_code: str
    national_code: str
    relation: Relation | None
    kind: Kind
    name: str
    grade: Grade
    selfpay_bp: int
    price_cap_fen: int | None
    restriction: str
    icd_prefixes: tuple[str, ...]
    valid_from: date
    valid_to: date | None

    def valid_on(self, day: date) -> bool:
        """Both ends inclusive; an empty `valid_to` is open."""
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


class Lookup(StrEnum):
    """Why `Catalogue.row_on` found no usable row."""

    UNKNOWN_CODE = "UNKNOWN_CODE"
    NOT_VALID_ON_DATE = "NOT_VALID_ON_DATE"


@dataclass(frozen=True)
class Catalogue:
    """One imported version of a region's catalogue, indexed by local and by national code."""

    region: str
    rows: tuple[CatalogueRow, ...]
    by_code: dict[str, tuple[CatalogueRow, ...]] = field(init=False, repr=False, compare=False)
    by_national: dict[str, tuple[CatalogueRow, ...]] = field(init=False, repr=False, compare=False)
    # Per local code, `(valid_from, valid_to or date.max, row)` in date order. `row_on` runs for every bill line,
    # so the open end is closed once per version here rather than tested on every look-up (issue 11).
    ranges_by_code: dict[str, tuple[tuple[date, date, CatalogueRow], ...]] = field(
        init=False, repr=False, compare=False)
    # Indexes other modules derive from this version once and reuse for every bill (clearing/classify.py keeps
    # its per-code classification plans here): the catalogue is immutable, so they never go stale.
    derived: dict[str, object] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_code: dict[str, list[CatalogueRow]] = defaultdict(list)
        by_national: dict[str, list[CatalogueRow]] = defaultdict(list)
        for row in self.rows:
            by_code[row.local_code].append(row)
            if row.national_code:
                by_national[row.national_code].append(row)
        object.__setattr__(self, "by_code", {
            code: tuple(sorted(rows, key=lambda r: r.valid_from)) for code, rows in by_code.items()
        })
        object.__setattr__(self, "by_national", {
            code: tuple(sorted(rows, key=lambda r: (r.local_code, r.valid_from))) for code, rows in by_national.items()
        })
        object.__setattr__(self, "ranges_by_code", {
            code: tuple((row.valid_from, row.valid_to or date.max, row) for row in rows)
            for code, rows in self.by_code.items()
        })
        object.__setattr__(self, "derived", {})

    def row_on(self, local_code: str, day: date) -> CatalogueRow | Lookup:
        """The row of `local_code` valid on `day`, or why there is none."""
        ranges = self.ranges_by_code.get(local_code)
        if ranges is None:
            return Lookup.UNKNOWN_CODE
        for valid_from, valid_to, row in ranges:
            if valid_from <= day <= valid_to:
                return row
        return Lookup.NOT_VALID_ON_DATE

    def rows_for_national(self, national_code: str, day: date) -> tuple[CatalogueRow, ...]:
        """Every local row valid on `day` that maps to `national_code`, ordered by local code."""
        return tuple(row for row in self.by_national.get(national_code, ()) if row.valid_on(day))


def parse_icd_prefixes(restriction: str, where: str = "restriction") -> tuple[str, ...]:
    """The `icd:` prefixes of a restriction, upper-case with dots removed; () when it has none.

    Anything in the list that is not a code prefix is an error naming `where`: `icd:C34 a` must not
    quietly add the prefix `A` (every A-code), nor `icd:` with nothing after it lift the restriction."""
    marks = list(ICD_MARK.finditer(restriction))
    if not marks:
        return ()
    if len(marks) > 1:
        raise InvalidField(where, "has more than one icd: list")
    listed = restriction[marks[0].end():]
    closing = ICD_LIST_END.search(listed)
    if closing is not None:
        listed = listed[:closing.start()]
    if not listed.strip():
        raise InvalidField(where, "icd: is followed by no code prefix")
    prefixes = set()
    for item in re.split(r"[,，]", listed):
        prefix = item.strip().upper()
        if not item.strip().isascii() or not ICD_PREFIX.fullmatch(prefix):  # ascii first: 'ı'.upper() is 'I'

            shown = repr(item.strip()) if item.strip() else "an empty item"
            raise InvalidField(where, f"{shown[:40]} in the icd: list is not an ICD-10 code prefix (a letter and "
                                      "digits such as C34 or C34.1; prefixes are separated by commas)")
        prefixes.add(prefix.replace(".", ""))
    return tuple(sorted(prefixes))


def csv_records(text: str, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str | None]]]:
    """The records of a reference CSV (a catalogue, a knowledge base) with their file row numbers, the header
    counting as row 1: a BOM and extra columns allowed, every one of `columns` required, at most
    CATALOGUE_ROWS_MAX rows; a NUL, a malformed line or a missing column is `InvalidField` naming the row."""
    if "\x00" in text:  # no cell holds one, and Postgres could not store the text
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InvalidField(f"row {line}", "contains a NUL character")
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    try:
        fieldnames = reader.fieldnames or ()
    except csv.Error as error:
        raise InvalidField("header", f"malformed CSV: {error}") from None
    missing = [name for name in columns if name not in fieldnames]
    if missing:
        raise InvalidField("header", f"missing column(s): {', '.join(missing)}")
    try:
        for index, raw in enumerate(reader):
            if index >= limits.CATALOGUE_ROWS_MAX:
                raise InvalidField("rows", f"more than {limits.CATALOGUE_ROWS_MAX} rows")
            yield index + 2, raw
    except csv.Error as error:
        raise InvalidField(f"row {reader.line_num}", f"malformed CSV: {error}") from None


def parse_catalogue_csv(text: str, region: str) -> Catalogue:
    """Parse a SPEC §4.1 catalogue CSV (BOM and extra columns allowed).

    Errors name the file row (`row 7.grade`), counting the header as row 1.
    """
    rows: list[CatalogueRow] = []
    row_numbers: dict[int, int] = {}
    for row_number, raw in csv_records(text, COLUMNS):
        row = parse_row(raw, f"row {row_number}")
        row_numbers[id(row)] = row_number
        rows.append(row)
    catalogue = Catalogue(region=region, rows=tuple(rows))
    check_no_overlap(catalogue, row_numbers)
    return catalogue


def parse_row(raw: dict[str, str | None], where: str) -> CatalogueRow:
    """One CSV row → `CatalogueRow`; `where` (`row 7`) prefixes every error."""
    values = {name: (raw.get(name) or "").strip() for name in COLUMNS}
    local_code = values["local_code"]
    if not local_code or len(local_code) > limits.CODE_LENGTH_MAX:
        raise InvalidField(f"{where}.local_code", "must be a non-empty code")
    national_code = values["national_code"]
    relation = None
    if national_code or values["relation"]:
        relation = parse_choice(Relation, values["relation"], f"{where}.relation")
    grade = parse_choice(Grade, values["grade"].upper(), f"{where}.grade")
    valid_from = parse_day(values["valid_from"], f"{where}.valid_from")
    valid_to = parse_day(values["valid_to"], f"{where}.valid_to") if values["valid_to"] else None
    if valid_to is not None and valid_to < valid_from:
        raise InvalidField(f"{where}.valid_to", "is before valid_from")
    return CatalogueRow(
        local_code=local_code,
        national_code=national_code,
        relation=relation,
        kind=parse_choice(Kind, values["kind"], f"{where}.kind"),
        name=values["name"],
        grade=grade,
        selfpay_bp=parse_int(values["selfpay_bp"], f"{where}.selfpay_bp", default=0, value_max=BP_WHOLE) or 0,
        price_cap_fen=parse_int(values["price_cap_fen"], f"{where}.price_cap_fen", default=None,
                                value_max=limits.UNIT_PRICE_FEN_MAX),
        restriction=values["restriction"],
        icd_prefixes=parse_icd_prefixes(values["restriction"], f"{where}.restriction"),
        valid_from=valid_from,
        valid_to=valid_to,
    )


def parse_choice(enum: type[EnumT], value: str, field_path: str) -> EnumT:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise InvalidField(field_path, f"unknown value {value!r} (expected one of {allowed})") from None


def parse_int(value: str, field_path: str, default: int | None, value_max: int) -> int | None:
    if value == "":
        return default
    if not PLAIN_INTEGER.match(value):
        raise InvalidField(field_path, f"{value!r} is not a non-negative integer of at most 12 digits")
    number = int(value)
    if number > value_max:
        raise InvalidField(field_path, f"must not exceed {value_max}")
    return number


def check_no_overlap(catalogue: Catalogue, row_numbers: dict[int, int]) -> None:
    """Rows of one local code must have disjoint validity ranges (an overlap is an import error)."""
    for versions in catalogue.by_code.values():
        for earlier, later in zip(versions, versions[1:]):
            if earlier.valid_to is None or later.valid_from <= earlier.valid_to:
                raise InvalidField(
                    f"row {row_numbers[id(later)]}.valid_from",
                    f"validity of {later.local_code} overlaps row {row_numbers[id(earlier)]}",
                )
