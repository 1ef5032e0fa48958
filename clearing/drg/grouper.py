"""Group one stay into a CHS-DRG 1.1 DRG: MDC → ADRG → DRG (分组: 主要诊断大类 → 核心疾病诊断相关组 → 疾病诊断相关组).

1. MDC: the MDCs are tried in the tables' order; the first whose entry condition holds is entered.
2. ADRG: that MDC's ADRGs are tried in order; the first whose condition holds wins. If none does, the MDC is
   left and the next MDC in the order is tried (as the source grouper does).
3. DRG: the ADRG's DRGs are tried in suffix order 1 → 3 → 5 (or 9) by the case's MCC/CC level, where a
   secondary diagnosis on the MCC/CC list does not count if the principal diagnosis's exclusion table
   (排除表) is the same as its own.

No MDC giving an ADRG means "0000" (无法入组) with a reason. `group` is pure and total on a valid `DrgCase`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from clearing.drg.case import DrgCase, Sex
from clearing.drg.conditions import Facts, Subject, condition_subjects, fields_compared
from clearing.drg.tables import AdrgRule, CcLevel, DrgRule, DrgTables, MdcRule, Split

UNGROUPABLE = "0000"
SEX_NUMBER = {Sex.MALE: 1, Sex.FEMALE: 2}  # the tables' GB/T 2261.1 numbers


class Ungroupable(StrEnum):
    """Why a stay is "0000", for counting (the `reason` text says it in full)."""

    SEX_CONFLICT = "sex_conflict"  # the principal diagnosis is on MDCM/MDCN's list only for the other sex
    AGE_CONFLICT = "age_conflict"  # on the MDCP list, but not under one year
    NO_ADRG = "no_adrg"  # an MDC was entered but none of its ADRGs matches
    NO_MDC = "no_mdc"  # the principal diagnosis is a code of the tables but on no MDC's list
    UNKNOWN_CODE = "unknown_code"  # the principal diagnosis is in none of the tables
    OTHER = "other"  # an MDC condition on the list failed for another reason


@dataclass(frozen=True, slots=True)
class Complications:
    """The case's secondary diagnoses sorted by what they count for (并发症或合并症)."""

    level: CcLevel
    mcc: tuple[str, ...]  # counted MCCs
    cc: tuple[str, ...]  # counted CCs
    excluded: tuple[str, ...]  # on the MCC/CC list but excluded by the principal diagnosis's table


@dataclass(frozen=True, slots=True)
class GroupResult:
    """The group of one stay. `mdc` and `adrg` are None when `drg` is "0000"."""

    mdc: str | None
    adrg: str | None
    drg: str
    drg_name_zh: str | None
    cc_level: CcLevel
    reason: str
    complications: Complications
    ungroupable: Ungroupable | None = None  # None when grouped

    @property
    def grouped(self) -> bool:
        return self.drg != UNGROUPABLE


def group(case: DrgCase, tables: DrgTables) -> GroupResult:
    """Group a validated case with the given tables (pure, deterministic, never raises on a valid case)."""
    facts = case_facts(case)
    complications = classify_complications(case, tables)
    notes: list[tuple[Ungroupable, str]] = []
    for mdc in tables.mdcs:
        if not mdc.matches(facts):
            note = skipped_mdc_note(mdc, case, facts)
            if note:
                notes.append(note)
            continue
        adrg = first_adrg(mdc, facts)
        if adrg is None:
            if mdc.diagnoses:  # MDCA (entered by any OR procedure) falling through is the normal path
                notes.append((Ungroupable.NO_ADRG, f"{mdc.mdc} entered ({mdc_reason(mdc, case, facts)}) but none "
                                                   f"of its ADRGs matches{procedure_text(case)}"))
            continue
        drg = first_drg(adrg, complications.level)
        return GroupResult(
            mdc=mdc.mdc, adrg=adrg.adrg, drg=drg.drg, drg_name_zh=drg.name_zh, cc_level=complications.level,
            reason=f"{mdc.mdc} by {mdc_reason(mdc, case, facts)}; {adrg.adrg} by {adrg_reason(adrg, case)}; "
                   f"{drg.drg} {drg.name_zh}: {drg_reason(drg, complications)}",
            complications=complications)
    kind, reason = ungroupable_reason(case, tables, notes)
    return GroupResult(mdc=None, adrg=None, drg=UNGROUPABLE, drg_name_zh=None, cc_level=complications.level,
                       reason=reason, complications=complications, ungroupable=kind)


def case_facts(case: DrgCase) -> Facts:
    return Facts(
        principal_diagnosis=case.principal_diagnosis,
        diagnoses=frozenset((case.principal_diagnosis, *case.other_diagnoses)),
        main_procedure=case.main_procedure, procedures=frozenset(case.procedures), sex=SEX_NUMBER[case.sex],
        age_years=case.age_years, age_days=case.age_days, birth_weight_g=case.birth_weight_g)


def first_adrg(mdc: MdcRule, facts: Facts) -> AdrgRule | None:
    for adrg in mdc.adrgs:
        if adrg.matches(facts):
            return adrg
    return None


def first_drg(adrg: AdrgRule, level: CcLevel) -> DrgRule:
    for drg in adrg.drgs:
        if drg.split.takes(level):
            return drg
    raise AssertionError(f"{adrg.adrg}: the last DRG always matches (checked at load)")


def classify_complications(case: DrgCase, tables: DrgTables) -> Complications:
    """Count each distinct secondary diagnosis on the MCC/CC list unless the principal diagnosis's exclusion
    table is the same as its own; a secondary equal to the principal never counts (a diagnosis is not its own
    complication). Sorted, so the order of `other_diagnoses` does not matter."""
    principal_table = tables.cc_exclusions.get(case.principal_diagnosis)
    mcc, cc, excluded = [], [], []
    for code in sorted(set(case.other_diagnoses) - {case.principal_diagnosis}):
        entry = tables.cc.get(code)
        if entry is None:
            continue
        level, table = entry
        if principal_table is not None and table == principal_table:
            excluded.append(code)
        elif level is CcLevel.MCC:
            mcc.append(code)
        else:
            cc.append(code)
    level = CcLevel.MCC if mcc else CcLevel.CC if cc else CcLevel.NONE
    return Complications(level, tuple(mcc), tuple(cc), tuple(excluded))


# ---- reasons ---------------------------------------------------------------------------------------------------


def mdc_reason(mdc: MdcRule, case: DrgCase, facts: Facts) -> str:
    if not mdc.diagnoses:  # MDCA: entered by an operating-room procedure
        return f"main procedure {case.main_procedure} (a valid OR procedure)"
    text = f"principal diagnosis {case.principal_diagnosis}"
    if mdc.body_regions:
        regions = sorted({mdc.body_regions[code] for code in facts.diagnoses if code in mdc.body_regions})
        text += f", {len(regions)} body regions ({'、'.join(regions)})"
    if "age_years" in fields_compared(mdc.condition):
        text += f", age {case.age_years}"
    if "sex" in fields_compared(mdc.condition):
        text += f", sex {case.sex.value}"
    return text


def adrg_reason(adrg: AdrgRule, case: DrgCase) -> str:
    """The source's label (主诊断匹配, 主手术匹配, …) and the case facts the condition read."""
    subjects = condition_subjects(adrg.condition)
    shown = []
    if Subject.PRINCIPAL_DIAGNOSIS in subjects:
        shown.append(f"principal diagnosis {case.principal_diagnosis}")
    if Subject.ANY_DIAGNOSIS in subjects:
        shown.append("a diagnosis on its list")
    if Subject.MAIN_PROCEDURE in subjects:
        shown.append(f"main procedure {case.main_procedure}")
    if Subject.ANY_PROCEDURE in subjects:
        shown.append("procedures on its lists")
    if Subject.NO_PROCEDURE in subjects:
        shown.append("no OR procedure")
    fields = fields_compared(adrg.condition)
    if "age_days" in fields:
        shown.append(f"age {case.age_days} days")
    if "birth_weight_g" in fields:
        shown.append(f"birth weight {case.birth_weight_g} g")
    label = adrg.label_zh or "default group of its MDC"
    return f"{label} ({', '.join(shown)})" if shown else label


def drg_reason(drg: DrgRule, complications: Complications) -> str:
    excluded = f"; excluded by the principal diagnosis's table: {', '.join(complications.excluded)}" \
        if complications.excluded else ""
    if drg.split is Split.UNSPLIT:
        counted = [*(f"MCC {code}" for code in complications.mcc), *(f"CC {code}" for code in complications.cc)]
        noted = f" ({', '.join(counted)} noted)" if counted else ""
        return f"not split by complications{noted}{excluded}"
    if complications.mcc and drg.split is not Split.NONE:
        return f"MCC {', '.join(complications.mcc)}{excluded}"
    if complications.cc and drg.split is Split.CC:
        return f"CC {', '.join(complications.cc)}{excluded}"
    if complications.level is CcLevel.NONE:
        return f"no MCC or CC{excluded}"
    return f"only a CC ({', '.join(complications.cc)}), and this ADRG has no CC group{excluded}"


def skipped_mdc_note(mdc: MdcRule, case: DrgCase, facts: Facts) -> tuple[Ungroupable, str] | None:
    """Why an MDC whose list holds the principal diagnosis was not entered (sex, age, trauma regions)."""
    if case.principal_diagnosis not in mdc.diagnoses:
        return None
    condition = fields_compared(mdc.condition)
    if "sex" in condition:
        return (Ungroupable.SEX_CONFLICT,
                f"{case.principal_diagnosis} is on the {mdc.mdc} list ({mdc.label_zh}) but sex is {case.sex.value}")
    if "age_years" in condition:
        return (Ungroupable.AGE_CONFLICT,
                f"{case.principal_diagnosis} is on the {mdc.mdc} list ({mdc.label_zh}) "
                f"but age_years is {case.age_years}")
    if mdc.body_regions:
        return None  # single-region trauma: the usual case, its body-system MDC takes it
    return (Ungroupable.OTHER,
            f"{case.principal_diagnosis} is on the {mdc.mdc} list but its condition does not hold")


def procedure_text(case: DrgCase) -> str:
    if not case.procedures:
        return " (no procedure)"
    return f" (main procedure {case.main_procedure})"


def ungroupable_reason(case: DrgCase, tables: DrgTables,
                       notes: list[tuple[Ungroupable, str]]) -> tuple[Ungroupable, str]:
    """The kind is the first note's (in MDC order: a sex or age conflict comes before a body-system MDC)."""
    if notes:
        return notes[0][0], "ungroupable: " + "; ".join(text for _, text in notes)
    if case.principal_diagnosis not in tables.diagnosis_codes:
        return Ungroupable.UNKNOWN_CODE, (f"ungroupable: principal diagnosis {case.principal_diagnosis} is not a "
                                          "code of the CHS-DRG 1.1 tables (医保版 2.0)")
    return Ungroupable.NO_MDC, f"ungroupable: principal diagnosis {case.principal_diagnosis} is on no MDC's list"


def result_json(result: GroupResult) -> dict[str, Any]:
    """The SPEC §14 output: {"mdc", "adrg", "drg", "cc_level", "reason"}."""
    return {"mdc": result.mdc, "adrg": result.adrg, "drg": result.drg, "cc_level": result.cc_level.value,
            "reason": result.reason}
