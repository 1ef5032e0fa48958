"""Translation between regions' catalogues through the national code, and the region-pair
agreement that says which catalogue classifies a cross-region line — SPEC §4.3.

An unmapped code is never passed through silently: `translate` returns an explicit `Unmapped`,
and `apply_agreement` either self-pays such a line (flagged for audit) or rejects the claim.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from clearing.bill import check_region
from clearing.catalogue import Catalogue, CatalogueRow, Relation
from clearing.classify import LineClass, Reason, reclassify_for_insured
from clearing.errors import InvalidField


class CatalogueRule(StrEnum):
    """Whose catalogue classifies a cross-region line."""

    TREATING = "treating"  # 就医地目录 (national default)
    INSURED = "insured"  # 参保地目录


class UnmappedAction(StrEnum):
    """What an agreement does with a line that has no translation."""

    SELFPAY = "selfpay"  # fully self-paid, reason UNMAPPED, flagged for audit (default)
    REJECT = "reject"  # the whole claim is refused


@dataclass(frozen=True, slots=True)
class Target:
    """One local item of the destination region that a national code maps to."""

    local_code: str
    relation: Relation | None
    name: str


@dataclass(frozen=True, slots=True)
class Translated:
    """`code` of `from_region` is national `national_code`; `targets` are its items in `to_region`
    (empty tuple when no destination region was asked for)."""

    from_region: str
    code: str
    national_code: str
    relation: Relation | None
    to_region: str | None
    targets: tuple[Target, ...]


class UnmappedReason(StrEnum):
    UNKNOWN_CODE = "UNKNOWN_CODE"
    NOT_VALID_ON_DATE = "NOT_VALID_ON_DATE"
    NO_NATIONAL_CODE = "NO_NATIONAL_CODE"
    NO_TARGET = "NO_TARGET"


@dataclass(frozen=True, slots=True)
class Unmapped:
    """The explicit "no translation" answer, with the reason and whatever was found on the way."""

    from_region: str
    code: str
    to_region: str | None
    reason: UnmappedReason
    national_code: str = ""


def translate(
    source: Catalogue, code: str, destination: Catalogue | None, on: date,
) -> Translated | Unmapped:
    """Translate `code` of `source` valid on `on` to the national code and, if asked, to `destination`."""
    to_region = destination.region if destination else None
    found = source.row_on(code, on)
    if not isinstance(found, CatalogueRow):
        reason = UnmappedReason(found.value)
        return Unmapped(source.region, code, to_region, reason)
    if not found.national_code:
        return Unmapped(source.region, code, to_region, UnmappedReason.NO_NATIONAL_CODE)
    targets: tuple[Target, ...] = ()
    if destination is not None:
        targets = tuple(
            Target(row.local_code, row.relation, row.name)
            for row in destination.rows_for_national(found.national_code, on)
        )
        if not targets:
            return Unmapped(source.region, code, to_region, UnmappedReason.NO_TARGET, found.national_code)
    return Translated(source.region, code, found.national_code, found.relation, to_region, targets)


@dataclass(frozen=True, slots=True)
class Agreement:
    """The agreement between a treating and an insured region (异地就医协议)."""

    treating_region: str
    insured_region: str
    catalogue_rule: CatalogueRule = CatalogueRule.TREATING
    unmapped: UnmappedAction = UnmappedAction.SELFPAY


@dataclass(frozen=True)
class Agreements:
    """Every pair agreement plus the defaults for pairs without one. A pair is unordered: its
    agreement governs claims in both directions."""

    defaults: tuple[CatalogueRule, UnmappedAction]
    pairs: dict[frozenset[str], tuple[CatalogueRule, UnmappedAction]]

    def between(self, treating_region: str, insured_region: str) -> Agreement:
        rule, unmapped = self.pairs.get(frozenset((treating_region, insured_region)), self.defaults)
        return Agreement(treating_region, insured_region, rule, unmapped)


DEFAULT_AGREEMENTS = Agreements((CatalogueRule.TREATING, UnmappedAction.SELFPAY), {})


def parse_agreements(text: str) -> Agreements:
    """Parse `[defaults]` and `[[agreements]]` (regions = [a, b], catalogue_rule, unmapped, note);
    errors name the key (`agreements[2].unmapped`)."""
    try:
        document = tomllib.loads(text)
    except ValueError as error:  # TOMLDecodeError is a ValueError
        raise InvalidField("agreements", f"not valid TOML: {error}") from None
    unknown = set(document) - {"defaults", "agreements"}
    if unknown:
        raise InvalidField(sorted(unknown)[0], "unknown key")
    defaults_table = document.get("defaults", {})
    defaults = parse_terms(defaults_table, "defaults", (CatalogueRule.TREATING, UnmappedAction.SELFPAY), set())
    pairs: dict[frozenset[str], tuple[CatalogueRule, UnmappedAction]] = {}
    for index, table in enumerate(document.get("agreements", [])):
        where = f"agreements[{index}]"
        regions = table.get("regions")
        if not isinstance(regions, list) or len(regions) != 2:
            raise InvalidField(f"{where}.regions", "must list two region codes")
        codes = [check_region(code, f"{where}.regions[{position}]") for position, code in enumerate(regions)]
        if codes[0] == codes[1]:
            raise InvalidField(f"{where}.regions", "must name two different regions")
        key = frozenset(codes)
        if key in pairs:
            raise InvalidField(f"{where}.regions", f"a second agreement for {codes[0]}–{codes[1]}")
        pairs[key] = parse_terms(table, where, defaults, {"regions", "note"})
    return Agreements(defaults, pairs)


def parse_terms(
    table: dict, where: str, defaults: tuple[CatalogueRule, UnmappedAction], other_keys: set[str],
) -> tuple[CatalogueRule, UnmappedAction]:
    if not isinstance(table, dict):
        raise InvalidField(where, "must be a table")
    extra = set(table) - {"catalogue_rule", "unmapped"} - other_keys
    if extra:
        raise InvalidField(f"{where}.{sorted(extra)[0]}", "unknown key")
    return (parse_enum(CatalogueRule, table.get("catalogue_rule", defaults[0].value), f"{where}.catalogue_rule"),
            parse_enum(UnmappedAction, table.get("unmapped", defaults[1].value), f"{where}.unmapped"))


def parse_enum(enum: type[StrEnum], value: object, field: str):  # noqa: ANN201 - returns a member of `enum`
    try:
        return enum(value)
    except ValueError:
        raise InvalidField(field, f"unknown value {value!r}") from None


def apply_agreement(
    lines: tuple[LineClass, ...], agreement: Agreement, insured: Catalogue | None, diagnoses: tuple[str, ...],
) -> tuple[LineClass, ...]:
    """Apply the pair's catalogue rule and unmapped action to treating-classified lines.

    Under `insured`, each line is re-classified with the insured region's catalogue. Under a
    `reject` agreement an unmapped line refuses the claim with `InvalidField` naming the line.
    """
    if agreement.catalogue_rule is CatalogueRule.INSURED:
        assert insured is not None and insured.region == agreement.insured_region
        lines = tuple(reclassify_for_insured(line, insured, diagnoses) for line in lines)
    if agreement.unmapped is UnmappedAction.REJECT:
        for index, line in enumerate(lines):
            if line.reason is Reason.UNMAPPED:
                raise InvalidField(
                    f"lines[{index}].code",
                    f"{line.line.code} has no translation and the {agreement.treating_region}→"
                    f"{agreement.insured_region} agreement rejects unmapped lines",
                )
    return lines
