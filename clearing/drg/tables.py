"""The CHS-DRG 1.1 grouping tables, parsed from the text of their CSV files and checked (no file reads here).

The caller (services/drg/reference.py) reads the files; `parse_tables` turns their text into frozen values with
each condition compiled. A table that does not hold what the grouper relies on (an unknown condition, an ADRG
without DRGs, a split suffix that contradicts its kind, a list a condition reads but the table lacks) is
refused with the file, row and column named, so the grouper itself never meets a gap.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from clearing.drg.conditions import Condition, Predicate, compile_condition, lists_used, parse_condition
from clearing.errors import InvalidField

MDC_CONDITIONS = "chs_drg_11_mdc_conditions.csv"
MDC_DIAGNOSES = "chs_drg_11_mdc_diagnoses.csv"
ADRG_CONDITIONS = "chs_drg_11_adrg_conditions.csv"
ADRG_RULES = "chs_drg_11_adrg_rules.csv"
CC = "chs_drg_11_cc.csv"
CC_EXCLUSIONS = "chs_drg_11_cc_exclusions.csv"
DRG_SPLIT = "chs_drg_11_drg_split.csv"
VALID_PROCEDURES = "chs_drg_11_valid_procedures.csv"
GROUPS = "chs_drg_11_groups.csv"
TABLE_FILES = (MDC_CONDITIONS, MDC_DIAGNOSES, ADRG_CONDITIONS, ADRG_RULES, CC, CC_EXCLUSIONS, DRG_SPLIT,
               VALID_PROCEDURES, GROUPS)

HEADERS = {
    MDC_CONDITIONS: ("mdc", "order", "condition", "label_zh"),
    MDC_DIAGNOSES: ("mdc", "principal_diagnosis_code", "mdcz_body_region"),
    ADRG_CONDITIONS: ("adrg", "mdc", "order", "condition", "part", "label_zh"),
    ADRG_RULES: ("adrg", "mdc", "list", "code", "procedure_group"),
    CC: ("code", "level", "exclusion_table"),
    CC_EXCLUSIONS: ("principal_diagnosis_code", "exclusion_table"),
    DRG_SPLIT: ("drg", "adrg", "mdc", "split", "note"),
    VALID_PROCEDURES: ("code", "name_zh"),
    GROUPS: ("drg_code", "drg_name_zh", "mdc", "adrg"),
}


class CcLevel(StrEnum):
    """并发症或合并症 level of a case: MCC 严重并发症或合并症, CC 一般并发症或合并症."""

    MCC = "MCC"
    CC = "CC"
    NONE = "none"


class Split(StrEnum):
    """How one DRG of an ADRG is reached (its code's last digit)."""

    MCC = "MCC"  # …1: needs an MCC
    CC = "CC"  # …3: needs an MCC or a CC
    NONE = "none"  # …5: the rest
    UNSPLIT = "unsplit"  # …9: the ADRG is not split

    def takes(self, level: CcLevel) -> bool:
        if self is Split.MCC:
            return level is CcLevel.MCC
        if self is Split.CC:
            return level is not CcLevel.NONE
        return True


SPLIT_SUFFIX = {Split.MCC: "1", Split.CC: "3", Split.NONE: "5", Split.UNSPLIT: "9"}


@dataclass(frozen=True, slots=True)
class DrgRule:
    drg: str
    split: Split
    name_zh: str


@dataclass(frozen=True, slots=True)
class AdrgRule:
    adrg: str
    mdc: str
    order: int
    condition: Condition
    label_zh: str
    matches: Predicate = field(repr=False, compare=False)
    drgs: tuple[DrgRule, ...]  # in suffix order; the last always matches
    uses_procedure: bool  # procedure ADRG (A–Q as second letter) rather than medical
    lists: Mapping[tuple[str, str | None], frozenset[str]]  # (list name, procedure group) → the codes it reads


@dataclass(frozen=True, slots=True)
class MdcRule:
    mdc: str
    order: int
    condition: Condition
    label_zh: str
    matches: Predicate = field(repr=False, compare=False)
    diagnoses: frozenset[str]  # MDC entry list (主诊表)
    body_regions: Mapping[str, str]  # MDCZ only: code → body region
    adrgs: tuple[AdrgRule, ...]  # in try order


@dataclass(frozen=True, slots=True)
class DrgTables:
    mdcs: tuple[MdcRule, ...]  # in try order
    cc: Mapping[str, tuple[CcLevel, str]]  # code → (level, exclusion table)
    cc_exclusions: Mapping[str, str]  # principal diagnosis → its exclusion table (排除表)
    valid_procedures: frozenset[str]
    diagnosis_codes: frozenset[str]  # every diagnosis code anywhere in the tables
    procedure_codes: frozenset[str]  # every procedure code anywhere in the tables
    drg_names: Mapping[str, str]  # DRG → Chinese name (628)
    adrgs: Mapping[str, AdrgRule]  # ADRG code → its rule (376)


def read_rows(texts: Mapping[str, str], name: str) -> list[tuple[int, list[str]]]:
    """(row number as a spreadsheet shows it, cells) pairs, cells in HEADERS order, which the header must match.
    Plain lists rather than dicts: the ADRG rules have 58,844 rows and this is the load time."""
    if name not in texts:
        raise InvalidField(name, "table missing")
    reader = csv.reader(io.StringIO(texts[name].removeprefix("\ufeff"), newline=""))
    header = tuple(next(reader, None) or ())
    if header != HEADERS[name]:
        raise InvalidField(f"{name}: row 1", f"header must be {','.join(HEADERS[name])}")
    rows = list(enumerate(reader, start=2))
    width = len(header)
    for number, cells in rows:
        if len(cells) != width:
            raise InvalidField(f"{name}: row {number}", f"has {len(cells)} cells, expected {width}")
    return rows


def parse_tables(texts: Mapping[str, str]) -> DrgTables:
    """Parse and check the nine tables; `texts` maps each file name in TABLE_FILES to its text."""
    cc = parse_cc(texts)
    exclusions = {code: table for _, (code, table) in read_rows(texts, CC_EXCLUSIONS)}
    valid = frozenset(code for _, (code, _name) in read_rows(texts, VALID_PROCEDURES))
    names = {drg: name for _, (drg, name, _mdc, _adrg) in read_rows(texts, GROUPS)}
    entry, regions = parse_mdc_diagnoses(texts)
    lists, groups = parse_adrg_rules(texts)
    drgs = parse_splits(texts, names)
    adrgs = parse_adrgs(texts, lists, groups, drgs, valid)
    mdcs = parse_mdcs(texts, entry, regions, adrgs, valid)
    diagnosis_codes = set(cc) | set(exclusions) | set().union(*entry.values())
    procedure_codes = set(valid)
    for (_, list_name), codes in lists.items():
        (procedure_codes if "procedure" in list_name else diagnosis_codes).update(codes)
    return DrgTables(mdcs=mdcs, cc=cc, cc_exclusions=exclusions, valid_procedures=valid,
                     diagnosis_codes=frozenset(diagnosis_codes), procedure_codes=frozenset(procedure_codes),
                     drg_names=names, adrgs={adrg.adrg: adrg for mdc in mdcs for adrg in mdc.adrgs})


def parse_cc(texts: Mapping[str, str]) -> dict[str, tuple[CcLevel, str]]:
    cc: dict[str, tuple[CcLevel, str]] = {}
    levels = {"MCC": CcLevel.MCC, "CC": CcLevel.CC}
    for number, (code, level, table) in read_rows(texts, CC):
        if level not in levels:
            raise InvalidField(f"{CC}: row {number}.level", "must be MCC or CC")
        if code in cc:
            raise InvalidField(f"{CC}: row {number}.code", f"{code} is listed twice")
        cc[code] = (levels[level], table)
    return cc


def parse_mdc_diagnoses(texts: Mapping[str, str]) -> tuple[dict[str, frozenset[str]], dict[str, dict[str, str]]]:
    entry: dict[str, set[str]] = {}
    regions: dict[str, dict[str, str]] = {}
    for _, (mdc, code, region) in read_rows(texts, MDC_DIAGNOSES):
        entry.setdefault(mdc, set()).add(code)
        if region:
            regions.setdefault(mdc, {})[code] = region
    return {mdc: frozenset(codes) for mdc, codes in entry.items()}, regions


def parse_adrg_rules(
    texts: Mapping[str, str],
) -> tuple[dict[tuple[str, str], frozenset[str]], dict[tuple[str, str], frozenset[str]]]:
    """Each ADRG's code lists, keyed (adrg, list); and for JA1/JA2/NA1 the codes of each procedure group, keyed
    (adrg, group). A code listed in several groups belongs to its first one (as in the source)."""
    lists: dict[tuple[str, str], set[str]] = {}
    first_group: dict[tuple[str, str], str] = {}
    known = {"principal_diagnosis", "principal_diagnosis_2", "main_procedure", "procedure_2", "department"}
    for number, (adrg, _mdc, list_name, code, group) in read_rows(texts, ADRG_RULES):
        if list_name not in known:
            raise InvalidField(f"{ADRG_RULES}: row {number}.list", f"unknown list {list_name!r}")
        lists.setdefault((adrg, list_name), set()).add(code)
        if group:
            first_group.setdefault((adrg, code), group)
    groups: dict[tuple[str, str], set[str]] = {}
    for (adrg, code), group in first_group.items():
        groups.setdefault((adrg, group), set()).add(code)
    return ({key: frozenset(codes) for key, codes in lists.items()},
            {key: frozenset(codes) for key, codes in groups.items()})


def parse_splits(texts: Mapping[str, str], names: Mapping[str, str]) -> dict[str, tuple[DrgRule, ...]]:
    drgs: dict[str, list[DrgRule]] = {}
    for number, cells in read_rows(texts, DRG_SPLIT):
        row = dict(zip(HEADERS[DRG_SPLIT], cells, strict=True))
        where = f"{DRG_SPLIT}: row {number}"
        if row["split"] not in {split.value for split in Split}:
            raise InvalidField(f"{where}.split", f"unknown split {row['split']!r}")
        split = Split(row["split"])
        if row["drg"] != row["adrg"] + SPLIT_SUFFIX[split]:
            raise InvalidField(f"{where}.drg", f"{row['drg']} does not end in {SPLIT_SUFFIX[split]} ({split.value})")
        if row["drg"] not in names:
            raise InvalidField(f"{where}.drg", f"{row['drg']} has no name in {GROUPS}")
        drgs.setdefault(row["adrg"], []).append(DrgRule(row["drg"], split, names[row["drg"]]))
    ordered = {}
    for adrg, rules in drgs.items():
        rules.sort(key=lambda rule: rule.drg)
        if rules[-1].split not in (Split.NONE, Split.UNSPLIT) or (
                rules[-1].split is Split.UNSPLIT and len(rules) > 1):
            raise InvalidField(f"{DRG_SPLIT}: {adrg}", "must end in one …5 group, or be one …9 group")
        ordered[adrg] = tuple(rules)
    return ordered


def parse_adrgs(
    texts: Mapping[str, str], lists: Mapping[tuple[str, str], frozenset[str]],
    groups: Mapping[tuple[str, str], frozenset[str]], drgs: Mapping[str, tuple[DrgRule, ...]],
    valid: frozenset[str],
) -> dict[str, list[AdrgRule]]:
    """Each MDC's ADRGs in try order, conditions compiled against the ADRG's own lists."""
    by_mdc: dict[str, list[AdrgRule]] = {}
    for number, cells in read_rows(texts, ADRG_CONDITIONS):
        row = dict(zip(HEADERS[ADRG_CONDITIONS], cells, strict=True))
        where = f"{ADRG_CONDITIONS}: row {number}"
        adrg = row["adrg"]
        condition = parse_condition(row["condition"], f"{where}.condition")
        resolve = adrg_resolver(adrg, lists, groups, valid, f"{where}.condition")
        # Every list the condition reads must exist and be non-empty.
        used = {(list_name, group): resolve(list_name, group) for list_name, group in lists_used(condition)}
        if adrg not in drgs:
            raise InvalidField(f"{where}.adrg", f"{adrg} has no DRG in {DRG_SPLIT}")
        if row["part"] not in ("procedure", "medical"):
            raise InvalidField(f"{where}.part", "must be procedure or medical")
        by_mdc.setdefault(row["mdc"], []).append(AdrgRule(
            adrg=adrg, mdc=row["mdc"], order=order_number(row["order"], f"{where}.order"), condition=condition,
            label_zh=row["label_zh"], matches=compile_condition(condition, resolve, {}), drgs=drgs[adrg],
            uses_procedure=row["part"] == "procedure", lists=used))
    for mdc, rules in by_mdc.items():
        rules.sort(key=lambda rule: rule.order)
        if [rule.order for rule in rules] != list(range(1, len(rules) + 1)):
            raise InvalidField(f"{ADRG_CONDITIONS}: {mdc}", "order must run 1, 2, … without gaps")
    return by_mdc


def adrg_resolver(adrg: str, lists: Mapping[tuple[str, str], frozenset[str]],
                  groups: Mapping[tuple[str, str], frozenset[str]], valid: frozenset[str], where: str):  # noqa: ANN201
    def resolve(list_name: str, group: str | None) -> frozenset[str]:
        if list_name == "valid_procedures":
            return valid
        codes = groups.get((adrg, group)) if group is not None else lists.get((adrg, list_name))
        if not codes:
            shown = f"{list_name}[procedure_group={group}]" if group else list_name
            raise InvalidField(where, f"{adrg} reads list {shown}, which has no codes in {ADRG_RULES}")
        return codes

    return resolve


def parse_mdcs(texts: Mapping[str, str], entry: Mapping[str, frozenset[str]],
               regions: Mapping[str, Mapping[str, str]], adrgs: Mapping[str, list[AdrgRule]],
               valid: frozenset[str]) -> tuple[MdcRule, ...]:
    mdcs = []
    for number, cells in read_rows(texts, MDC_CONDITIONS):
        row = dict(zip(HEADERS[MDC_CONDITIONS], cells, strict=True))
        where = f"{MDC_CONDITIONS}: row {number}"
        mdc = row["mdc"]
        condition = parse_condition(row["condition"], f"{where}.condition")
        codes = entry.get(mdc, frozenset())

        def resolve(list_name: str, group: str | None, codes: frozenset[str] = codes, mdc: str = mdc) -> frozenset[str]:
            if list_name == "valid_procedures" and group is None:
                return valid
            if list_name == "mdc_principal_diagnosis" and group is None and codes:
                return codes
            raise InvalidField(f"{where}.condition", f"{mdc} reads list {list_name}, which it does not have")

        for list_name, group in lists_used(condition):
            resolve(list_name, group)
        if mdc not in adrgs:
            raise InvalidField(f"{where}.mdc", f"{mdc} has no ADRG in {ADRG_CONDITIONS}")
        mdc_regions = dict(regions.get(mdc, {}))
        mdcs.append(MdcRule(
            mdc=mdc, order=order_number(row["order"], f"{where}.order"), condition=condition,
            label_zh=row["label_zh"], matches=compile_condition(condition, resolve, mdc_regions), diagnoses=codes,
            body_regions=mdc_regions, adrgs=tuple(adrgs[mdc])))
    mdcs.sort(key=lambda rule: rule.order)
    if [rule.order for rule in mdcs] != list(range(1, len(mdcs) + 1)):
        raise InvalidField(MDC_CONDITIONS, "order must run 1, 2, … without gaps")
    unknown = sorted(set(adrgs) - {rule.mdc for rule in mdcs})
    if unknown:
        raise InvalidField(ADRG_CONDITIONS, f"ADRGs of {unknown[0]}, which is not in {MDC_CONDITIONS}")
    return tuple(mdcs)


def order_number(text: str, where: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise InvalidField(where, "must be a whole number")
    return int(text)
