"""What changed between two imported versions of one region's catalogue (目录版本比对) — SPEC §4.1.

A catalogue is versioned and rows are never updated in place, so an operator about to import a new
file wants to see, per local code, what the new version does: codes added or removed, validity rows
added, removed, ended or reopened, and which attributes (grade, selfpay_bp, price_cap_fen,
national_code, restriction, …) a row carries differently from the row it corrects or succeeds.

Rows of one code are matched by `valid_from` (their ranges never overlap, so the start date is a
row's identity within its code). A new row whose start date the old version lacks is compared with
the old row it succeeds: the latest old row that starts before it. Pure: no I/O; sorted output.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from clearing.catalogue import Catalogue, CatalogueRow
from clearing.errors import InvalidField

# The attributes compared between matched rows, in display order; validity is reported separately.
ATTRIBUTES = ("national_code", "relation", "kind", "name", "grade", "selfpay_bp", "price_cap_fen", "restriction")


class ValidityChange(StrEnum):
    """How a row's validity differs between the versions."""

    ADDED = "added"  # a row starting on a date the old version has no row for
    REMOVED = "removed"  # an old row whose start date the new version no longer has
    ENDED = "ended"  # same start, was open, now has a valid_to
    REOPENED = "reopened"  # same start, had a valid_to, now open
    MOVED_END = "moved_end"  # same start, a different valid_to


@dataclass(frozen=True, slots=True)
class RowValidity:
    """One row's validity change; `valid_to_*` None means open. For ADDED the `before` end is None."""

    change: ValidityChange
    valid_from: date
    valid_to_before: date | None
    valid_to_after: date | None


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One attribute differing between a new row and the old row it corrects or succeeds.

    `valid_from` is the new row's start; values are rendered as text ("" for empty / None).
    """

    field: str
    valid_from: date
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class CodeChange:
    """Everything that differs for one local code present in both versions."""

    local_code: str
    fields: tuple[FieldChange, ...]
    validity: tuple[RowValidity, ...]


@dataclass(frozen=True, slots=True)
class CodeRows:
    """A local code present in one version only, with its rows ordered by `valid_from`."""

    local_code: str
    rows: tuple[CatalogueRow, ...]


@dataclass(frozen=True, slots=True)
class CatalogueDiff:
    """The comparison of `old` → `new`, each part sorted by local code."""

    region: str
    added: tuple[CodeRows, ...]
    removed: tuple[CodeRows, ...]
    changed: tuple[CodeChange, ...]
    unchanged_count: int

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff_catalogues(old: Catalogue, new: Catalogue) -> CatalogueDiff:
    """Compare two versions of one region's catalogue (old → new), code by code, in local-code order."""
    if old.region != new.region:
        raise InvalidField("region", f"cannot compare a {old.region} catalogue with a {new.region} one")
    old_codes, new_codes = set(old.by_code), set(new.by_code)
    added = tuple(CodeRows(code, new.by_code[code]) for code in sorted(new_codes - old_codes))
    removed = tuple(CodeRows(code, old.by_code[code]) for code in sorted(old_codes - new_codes))
    changed: list[CodeChange] = []
    unchanged_count = 0
    for code in sorted(old_codes & new_codes):
        change = diff_code(code, old.by_code[code], new.by_code[code])
        if change.fields or change.validity:
            changed.append(change)
        else:
            unchanged_count += 1
    assert len(added) + unchanged_count + len(changed) == len(new_codes)
    assert len(removed) + unchanged_count + len(changed) == len(old_codes)
    return CatalogueDiff(old.region, added, removed, tuple(changed), unchanged_count)


def diff_code(code: str, old_rows: tuple[CatalogueRow, ...], new_rows: tuple[CatalogueRow, ...]) -> CodeChange:
    """Compare the rows of one code; both tuples are ordered by `valid_from` (as `Catalogue.by_code` keeps them)."""
    assert old_rows and new_rows
    old_by_start = {row.valid_from: row for row in old_rows}
    new_by_start = {row.valid_from: row for row in new_rows}
    assert len(old_by_start) == len(old_rows) and len(new_by_start) == len(new_rows)  # no overlap at import
    validity: list[RowValidity] = []
    fields: list[FieldChange] = []
    for start in sorted(old_by_start.keys() | new_by_start.keys()):
        before, after = old_by_start.get(start), new_by_start.get(start)
        if after is None:
            assert before is not None
            validity.append(RowValidity(ValidityChange.REMOVED, start, before.valid_to, None))
            continue
        if before is None:
            validity.append(RowValidity(ValidityChange.ADDED, start, None, after.valid_to))
            before = predecessor(old_rows, start)
        elif before.valid_to != after.valid_to:
            validity.append(RowValidity(end_change(before.valid_to, after.valid_to), start,
                                        before.valid_to, after.valid_to))
        if before is not None:
            fields += attribute_changes(before, after)
    return CodeChange(code, tuple(fields), tuple(validity))


def predecessor(old_rows: tuple[CatalogueRow, ...], start: date) -> CatalogueRow | None:
    """The latest old row starting before `start`: the version a new row succeeds, if any."""
    earlier = [row for row in old_rows if row.valid_from < start]
    return earlier[-1] if earlier else None


def end_change(valid_to_before: date | None, valid_to_after: date | None) -> ValidityChange:
    assert valid_to_before != valid_to_after
    if valid_to_before is None:
        return ValidityChange.ENDED
    if valid_to_after is None:
        return ValidityChange.REOPENED
    return ValidityChange.MOVED_END


def attribute_changes(before: CatalogueRow, after: CatalogueRow) -> list[FieldChange]:
    """Every attribute of `after` that differs from `before`, tagged with `after`'s start date."""
    changes = []
    for name in ATTRIBUTES:
        old_text, new_text = render(getattr(before, name)), render(getattr(after, name))
        if old_text != new_text:
            changes.append(FieldChange(name, after.valid_from, old_text, new_text))
    return changes


def render(value: object) -> str:
    """An attribute as display text: enums by value, None as ""."""
    if value is None:
        return ""
    return str(value)
