"""The operator CLI's offline commands: quote a bill (SPEC §5.3), validate policies (§5.1), validate and
compare catalogue files (§4.1). No server, no database: read the files, call `clearing/`, show the result.

Every bad input becomes an `InputError` (a `DomainError`) whose message starts with the source it came
from (`bill: lines[2].amount_fen: …`, `catalog old.csv: row 7.grade: …`); `services.cli.app.main` turns
it into the one-line `error: …` and exit code 2. Nothing here writes a file.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from clearing.bill import bill_from_dict, check_region
from clearing.catalogue import Catalogue, CatalogueRow, Grade, Kind, parse_catalogue_csv
from clearing.catalogue_diff import CatalogueDiff, CodeRows, ValidityChange, diff_catalogues
from clearing.errors import DomainError
from clearing.explain import percent
from clearing.member import member_from_dict
from clearing.money import format_yuan
from clearing.outpatient.member import special_member_from_dict
from clearing.outpatient.quote import quote_visit, visit_adjudication_json
from clearing.outpatient.visit import is_visit, visit_from_dict
from clearing.policy import Policy, PolicyBook, SchemePolicy, parse_policy
from clearing.quote import adjudication_json, quote
from services.cli.output import table

# A catalogue of CATALOGUE_ROWS_MAX rows is well under this; anything larger is the wrong file.
INPUT_BYTES_MAX = 256 * 2**20


class InputError(DomainError):
    """Bad operator input, attributed to its source (`bill`, `policy P.toml`, `catalog C.csv`)."""

    def __init__(self, source: str, detail: str) -> None:
        super().__init__(f"{source}: {detail}")
        self.source = source
        self.detail = detail


@contextmanager
def blamed_on(source: str) -> Iterator[None]:
    """Re-raise any `DomainError` from the block as an `InputError` of `source`, keeping its field path.

    The block only parses operator input. A `ValueError`, `ArithmeticError` or `csv.Error` escaping a
    parser is a gap in the core's validation (a 5,000-digit integer, a qty of "1e100000000", a CSV field
    over the csv module's size limit), not a crash of ours: it is still the operator's input, so it gets
    the one-line error too, just without a field path.
    """
    try:
        yield
    except InputError:
        raise
    except DomainError as error:
        raise InputError(source, error.message) from None
    except (ValueError, ArithmeticError, csv.Error) as error:
        raise InputError(source, f"cannot parse: {type(error).__name__}: {str(error)[:200]}") from None


def read_text(path: Path, source: str) -> str:
    """A file's text as UTF-8; a leading byte-order mark is dropped (exported spreadsheets carry one)."""
    try:
        with path.open("rb") as stream:
            data = stream.read(INPUT_BYTES_MAX + 1)
    except OSError as error:
        raise InputError(source, f"{path}: cannot read: {error.strerror or error}") from None
    if len(data) > INPUT_BYTES_MAX:
        raise InputError(source, f"{path}: larger than {INPUT_BYTES_MAX} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(source, f"{path}: not UTF-8 (byte {error.start})") from None


def reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object with a key twice is ambiguous; json.loads would silently keep the last one."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key!r} appears twice")
        result[key] = value
    return result


def reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def read_json(path: Path, source: str) -> Any:
    """Decode a JSON file; syntax errors name the line and column, duplicate keys and NaN are refused."""
    text = read_text(path, source)
    try:
        return json.loads(text, object_pairs_hook=reject_duplicate_keys, parse_constant=reject_constant)
    except json.JSONDecodeError as error:
        raise InputError(source, f"{path}: not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})") \
            from None
    except ValueError as error:
        raise InputError(source, f"{path}: not valid JSON: {error}") from None
    except RecursionError:
        raise InputError(source, f"{path}: not valid JSON: nested too deeply") from None


# ---- quote (SPEC §5.3) ------------------------------------------------------------------------------


def quote_files(catalog_path: Path, policy_path: Path, member_path: Path, bill_path: Path) -> dict[str, Any]:
    """Run §4.2 and §5.2 on the four files and return the §5.3 JSON; persists nothing. A bill with
    `"kind": "outpatient_special"` is a visit (§13.3, `quote_visit_data`); without a kind, a stay."""
    catalog_text = read_text(catalog_path, "catalog")
    policy_text = read_text(policy_path, "policy")
    member_data = read_json(member_path, "member")
    bill_data = read_json(bill_path, "bill")
    with blamed_on("bill"):
        visit = is_visit(bill_data)
    if visit:
        return quote_visit_data(catalog_text, policy_text, member_data, bill_data)
    with blamed_on("bill"):
        bill = bill_from_dict(bill_data)
    with blamed_on("member"):
        member, ytd = member_from_dict(member_data)
    with blamed_on("catalog"):
        catalogue = parse_catalogue_csv(catalog_text, region=bill.region)  # 就医地目录: the bill's region
    with blamed_on("policy"):
        policy = parse_policy(policy_text)
    try:
        result = quote(bill, catalogue, member, policy, ytd)
    except DomainError as error:
        raise InputError(quote_error_source(error), error.message) from None
    return adjudication_json(result)


def quote_visit_data(catalog_text: str, policy_text: str, member_data: Any, bill_data: Any) -> dict[str, Any]:
    """Run §4.2 and §13.2 on one outpatient special-disease visit and return the §13.3 JSON."""
    with blamed_on("bill"):
        visit = visit_from_dict(bill_data)
    with blamed_on("member"):
        member, ytd = member_from_dict(member_data)
        recognitions, special = special_member_from_dict(member_data)
    with blamed_on("catalog"):
        catalogue = parse_catalogue_csv(catalog_text, region=visit.region)  # 就医地目录: the visit's region
    with blamed_on("policy"):
        policy = parse_policy(policy_text)
    try:
        result = quote_visit(visit, catalogue, member, recognitions, policy, ytd, special)
    except DomainError as error:
        raise InputError(quote_error_source(error), error.message) from None
    return visit_adjudication_json(result)


def quote_error_source(error: DomainError) -> str:
    """Which file an adjudication error belongs to: `member.*` fields are the member's, a disease the policy has
    no section for (`outpatient_special.<disease>`) the policy's, the rest (`discharged_on` or `visit_on` before
    the policy takes effect) the bill's."""
    field_path = getattr(error, "field", None) or getattr(error, "subject", "")
    if field_path.startswith("outpatient_special."):
        return "policy"
    return "member" if field_path.startswith("member.") else "bill"


# ---- policy validate (SPEC §5.1) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyFile:
    path: Path
    policy: Policy


def load_policies(paths: list[Path]) -> tuple[list[PolicyFile], list[PolicyBook]]:
    """Parse every file, then check that the files of each region form one valid `PolicyBook`."""
    files: list[PolicyFile] = []
    for path in paths:
        text = read_text(path, "policy")  # read errors name the path themselves
        with blamed_on(f"policy {path}"):
            files.append(PolicyFile(path, parse_policy(text)))
    books = []
    for region in sorted({item.policy.region for item in files}):
        of_region = [item for item in files if item.policy.region == region]
        names = ", ".join(str(item.path) for item in of_region)
        with blamed_on(f"policy {names} (region {region})"):
            books.append(PolicyBook.of([item.policy for item in of_region]))
    return files, books


def cap_text(cap_fen: int) -> str:
    return "no cap" if cap_fen == 0 else format_yuan(cap_fen)


def by_level_text(values: dict[int, int], render) -> str:  # noqa: ANN001 - render is format_yuan or percent
    return " / ".join(render(values[level]) for level in sorted(values))


def bands_text(scheme: SchemePolicy) -> str:
    parts = []
    for band in scheme.bands:
        upto = "rest" if band.upto_fen is None else f"≤{format_yuan(band.upto_fen)}"
        parts.append(f"{upto}: {by_level_text(band.ratio_bp, percent)}")
    return "\n".join(parts)


def critical_text(scheme: SchemePolicy) -> str:
    if scheme.critical is None:
        return "none"
    critical = scheme.critical
    lines = [f"threshold {format_yuan(critical.threshold_fen)}", f"cap {cap_text(critical.annual_cap_fen)}"]
    for band in critical.bands:
        upto = "rest" if band.upto_fen is None else f"≤{format_yuan(band.upto_fen)}"
        lines.append(f"{upto}: {percent(band.ratio_bp)}")
    return "\n".join(lines)


def show_policy(console: Console, item: PolicyFile) -> None:
    """One file's policy as a rich summary: header, schemes, then the optional sections."""
    policy = item.policy
    console.print(f"{item.path}: {policy.region} {policy.name}, effective from {policy.effective_from}")
    ordered = sorted(policy.schemes.items())
    schemes = table("", "levels 1 / 2 / 3", *(name.value for name, _ in ordered))
    schemes.add_row("deductible per stay", *(by_level_text(s.deductible_fen, format_yuan) for _, s in ordered))
    schemes.add_row("annual cap", *(cap_text(s.annual_cap_fen) for _, s in ordered))
    schemes.add_row("annual deductible cap", *(cap_text(s.annual_deductible_cap_fen) for _, s in ordered))
    schemes.add_row("retired bonus", *(f"+{percent(s.retired_bonus_bp)}" for _, s in ordered))
    schemes.add_row("bands (year-to-date)", *(bands_text(s) for _, s in ordered))
    schemes.add_row("critical (大病)", *(critical_text(s) for _, s in ordered))
    console.print(schemes)
    if policy.filing_cut_bp is None:
        console.print("filing cuts: none")
    else:
        cuts = ", ".join(f"{status.value} −{percent(cut)}" for status, cut in policy.filing_cut_bp.items())
        console.print(f"filing cuts: {cuts}")
    if policy.poverty is None:
        console.print("poverty: not applicable")
    else:
        console.print(f"poverty: ratio +{percent(policy.poverty.ratio_bonus_bp)}, critical threshold × "
                      f"{percent(policy.poverty.critical_threshold_bp)}")
    if policy.assistance is None:
        console.print("assistance: none")
    else:
        tiers = table("assistance tiers (医疗救助)", "tier", "annual threshold", "ratio", "annual cap")
        for tier, rule in sorted(policy.assistance.items()):
            tiers.add_row(tier.value, format_yuan(rule.deductible_fen), percent(rule.ratio_bp),
                          cap_text(rule.annual_cap_fen))
        console.print(tiers)
    show_outpatient_special(console, policy)


def show_outpatient_special(console: Console, policy: Policy) -> None:
    """The `[outpatient_special.*]` sections (SPEC §13.1), one row per disease the region covers."""
    if not policy.outpatient_special:
        console.print("outpatient special diseases (门诊慢特病): none covered")
        return
    diseases = table("outpatient special diseases (门诊慢特病)", "disease", "icd", "deductible a year",
                     "ratio 1 / 2 / 3", "limit", "shares inpatient cap")
    for disease, section in sorted(policy.outpatient_special.items()):
        icd = ", ".join(section.icd_prefixes[:6]) + (f" … ({len(section.icd_prefixes)})"
                                                      if len(section.icd_prefixes) > 6 else "")
        limit_fen, per = ((section.annual_limit_fen, "a year") if section.annual_limit_fen is not None
                          else (section.monthly_limit_fen or 0, "a month"))
        limit = f"{format_yuan(limit_fen)} {per}" if limit_fen else "no limit"
        diseases.add_row(disease.value, icd, format_yuan(section.deductible_fen), by_level_text(section.ratio_bp, percent),
                         limit, "yes" if section.shares_inpatient_cap else "no")
    console.print(diseases)


def show_policies(console: Console, files: list[PolicyFile], books: list[PolicyBook]) -> None:
    for item in files:
        show_policy(console, item)
        console.print()
    for book in books:
        dates = ", ".join(str(policy.effective_from) for policy in book.versions)
        console.print(f"region {book.region}: {len(book.versions)} version(s) in force from {dates}: OK")


# ---- catalog validate and diff (SPEC §4.1) -------------------------------------------------------------


def read_catalogue(path: Path, region: str | None) -> Catalogue:
    """Parse one catalogue file; `region` only labels it (the CSV does not carry one)."""
    if region is not None:
        with blamed_on("--region"):
            check_region(region, "region")
    text = read_text(path, "catalog")  # read errors name the path themselves
    with blamed_on(f"catalog {path}"):
        return parse_catalogue_csv(text, region=region or "")


@dataclass(frozen=True, slots=True)
class CatalogueSummary:
    """Counts an operator checks before importing a catalogue file."""

    region: str
    row_count: int
    code_count: int
    by_kind_grade: tuple[tuple[Kind, Grade, int], ...]
    unmapped: tuple[CatalogueRow, ...]  # empty national_code: every line with it is UNMAPPED
    restricted: tuple[CatalogueRow, ...]  # a restriction text, with or without an icd: list
    multi_version: tuple[tuple[str, int], ...]  # local codes with more than one row, and how many


def summarise_catalogue(catalogue: Catalogue) -> CatalogueSummary:
    counts = Counter((row.kind, row.grade) for row in catalogue.rows)
    order = {kind: index for index, kind in enumerate(Kind)}
    return CatalogueSummary(
        region=catalogue.region,
        row_count=len(catalogue.rows),
        code_count=len(catalogue.by_code),
        by_kind_grade=tuple(sorted(((kind, grade, n) for (kind, grade), n in counts.items()),
                                   key=lambda item: (order[item[0]], item[1].value))),
        unmapped=tuple(sorted((row for row in catalogue.rows if not row.national_code), key=row_key)),
        restricted=tuple(sorted((row for row in catalogue.rows if row.restriction), key=row_key)),
        multi_version=tuple((code, len(rows)) for code, rows in sorted(catalogue.by_code.items()) if len(rows) > 1),
    )


def row_key(row: CatalogueRow) -> tuple[str, str]:
    return row.local_code, row.valid_from.isoformat()


def row_json(row: CatalogueRow) -> dict[str, Any]:
    return {
        "local_code": row.local_code, "national_code": row.national_code,
        "relation": row.relation.value if row.relation else None, "kind": row.kind.value, "name": row.name,
        "grade": row.grade.value, "selfpay_bp": row.selfpay_bp, "price_cap_fen": row.price_cap_fen,
        "restriction": row.restriction, "icd_prefixes": list(row.icd_prefixes),
        "valid_from": row.valid_from.isoformat(), "valid_to": row.valid_to.isoformat() if row.valid_to else None,
    }


def summary_json(summary: CatalogueSummary) -> dict[str, Any]:
    by_kind: dict[str, dict[str, int]] = {}
    for kind, grade, count in summary.by_kind_grade:
        by_kind.setdefault(kind.value, {})[grade.value] = count
    return {
        "region": summary.region or None, "rows": summary.row_count, "codes": summary.code_count,
        "by_kind": by_kind,
        "unmapped": [row_json(row) for row in summary.unmapped],
        "restricted": [row_json(row) for row in summary.restricted],
        "multi_version": [{"local_code": code, "rows": count} for code, count in summary.multi_version],
    }


def show_summary(console: Console, path: Path, summary: CatalogueSummary, limit: int) -> None:
    region = f" (region {summary.region})" if summary.region else ""
    console.print(f"{path}{region}: {summary.row_count} rows, {summary.code_count} local codes: OK")
    counts = table("rows by kind and grade", "kind", *(grade.value for grade in Grade), "total",
                   numeric=(*(grade.value for grade in Grade), "total"))
    for kind in Kind:
        per_grade = {grade: n for k, grade, n in summary.by_kind_grade if k is kind}
        counts.add_row(kind.value, *(str(per_grade.get(grade, 0)) for grade in Grade), str(sum(per_grade.values())))
    console.print(counts)
    listing = table("", "local_code", "name", "valid_from")
    for row in summary.unmapped[:limit]:
        listing.add_row(row.local_code, row.name, str(row.valid_from))
    show_section(console, f"unmapped rows: {len(summary.unmapped)}", listing)
    listing = table("", "local_code", "name", "restriction")
    for row in summary.restricted[:limit]:
        listing.add_row(row.local_code, row.name, row.restriction)
    show_section(console, f"restricted rows: {len(summary.restricted)}", listing)
    listing = table("", "local_code", "rows", numeric=("rows",))
    for code, count in summary.multi_version[:limit]:
        listing.add_row(code, str(count))
    show_section(console, f"codes with several rows: {len(summary.multi_version)}", listing)
    longest = max(len(summary.unmapped), len(summary.restricted), len(summary.multi_version))
    if longest > limit:
        console.print(f"(lists show the first {limit}; --limit to see more, --json for all)")


def show_section(console: Console, heading: str, listing: Table) -> None:
    """A heading line (titles wrap to a narrow table's width), then the table unless it is empty."""
    console.print(heading)
    if listing.row_count:
        console.print(listing)


def code_rows_json(item: CodeRows) -> dict[str, Any]:
    return {"local_code": item.local_code, "rows": [row_json(row) for row in item.rows]}


def diff_json(diff: CatalogueDiff) -> dict[str, Any]:
    return {
        "region": diff.region or None,
        "added": [code_rows_json(item) for item in diff.added],
        "removed": [code_rows_json(item) for item in diff.removed],
        "changed": [
            {"local_code": change.local_code,
             "fields": [{"field": item.field, "valid_from": item.valid_from.isoformat(), "before": item.before,
                         "after": item.after} for item in change.fields],
             "validity": [{"change": item.change.value, "valid_from": item.valid_from.isoformat(),
                           "valid_to_before": item.valid_to_before.isoformat() if item.valid_to_before else None,
                           "valid_to_after": item.valid_to_after.isoformat() if item.valid_to_after else None}
                          for item in change.validity]}
            for change in diff.changed
        ],
        "unchanged": diff.unchanged_count,
    }


def latest_text(item: CodeRows) -> tuple[str, str, str]:
    row = item.rows[-1]
    return row.kind.value, row.grade.value, row.name


def show_diff(console: Console, old_path: Path, new_path: Path, diff: CatalogueDiff) -> None:
    console.print(f"{old_path} → {new_path}: {len(diff.added)} added, {len(diff.removed)} removed, "
                  f"{len(diff.changed)} changed, {diff.unchanged_count} unchanged")
    if diff.is_empty:
        return
    rows: list[tuple[str, ...]] = []
    for item in diff.added:
        rows.append((item.local_code, "code added", str(item.rows[0].valid_from), "", " ".join(latest_text(item))))
    for item in diff.removed:
        rows.append((item.local_code, "code removed", str(item.rows[0].valid_from), " ".join(latest_text(item)), ""))
    for change in diff.changed:
        for validity in change.validity:
            rows.append((change.local_code, f"row {validity.change.value}", str(validity.valid_from),
                         end_text(validity.valid_to_before, validity.change is ValidityChange.ADDED),
                         end_text(validity.valid_to_after, validity.change is ValidityChange.REMOVED)))
        for field_change in change.fields:
            rows.append((change.local_code, field_change.field, str(field_change.valid_from),
                         field_change.before or "(empty)", field_change.after or "(empty)"))
    changes = table("", "local_code", "change", "valid_from", "before", "after")
    for cells in sorted(rows, key=lambda cells: cells[0]):  # stable: per code, validity before fields
        changes.add_row(*cells)
    console.print(changes)


def end_text(valid_to: object, absent: bool) -> str:
    """A validity end (`valid_to`) for display: "" where the row does not exist on that side, "open" for none."""
    if absent:
        return ""
    return "open" if valid_to is None else str(valid_to)


def compare_catalogues(old_path: Path, new_path: Path, region: str | None) -> CatalogueDiff:
    return diff_catalogues(read_catalogue(old_path, region), read_catalogue(new_path, region))


# ---- drg group (SPEC §14) ---------------------------------------------------------------------------------------


def group_case_files(case_paths: list[Path]) -> list[dict[str, Any]]:
    """Group each C.json with the shipped CHS-DRG 1.1 tables, in order; every file is read and validated before
    any is grouped, so a bad one leaves stdout empty. Returns the §14 JSON per case."""
    from clearing.drg import case_from_dict, group, result_json
    from services.drg.reference import load_tables

    cases = []
    for path in case_paths:
        source = f"case {path}"
        data = read_json(path, source)
        with blamed_on(source):
            cases.append(case_from_dict(data))
    tables = load_tables()
    return [result_json(group(case, tables)) for case in cases]
