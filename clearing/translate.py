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
    """All pair agreements; a pair with none gets the national defaults."""

    pairs: dict[tuple[str, str], Agreement]

    def between(self, treating_region: str, insured_region: str) -> Agreement:
        return self.pairs.get((treating_region, insured_region), Agreement(treating_region, insured_region))


def parse_agreements(text: str) -> Agreements:
    """Parse `[[agreement]]` tables: treating, insured, catalogue_rule, unmapped (errors name the key)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidField("agreements", f"not valid TOML: {error}") from None
    unknown = set(document) - {"agreement"}
    if unknown:
        raise InvalidField(sorted(unknown)[0], "unknown key")
    pairs: dict[tuple[str, str], Agreement] = {}
    for index, table in enumerate(document.get("agreement", [])):
        where = f"agreement[{index}]"
        extra = set(table) - {"treating", "insured", "catalogue_rule", "unmapped"}
        if extra:
            raise InvalidField(f"{where}.{sorted(extra)[0]}", "unknown key")
        agreement = Agreement(
            treating_region=check_region(table.get("treating"), f"{where}.treating"),
            insured_region=check_region(table.get("insured"), f"{where}.insured"),
            catalogue_rule=parse_enum(CatalogueRule, table.get("catalogue_rule", "treating"),
                                      f"{where}.catalogue_rule"),
            unmapped=parse_enum(UnmappedAction, table.get("unmapped", "selfpay"), f"{where}.unmapped"),
        )
        key = (agreement.treating_region, agreement.insured_region)
        if key in pairs:
            raise InvalidField(where, f"a second agreement for {key[0]} → {key[1]}")
        pairs[key] = agreement
    return Agreements(pairs)


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
