"""Realistic stays built from the grouping tables, aimed at a chosen ADRG, and a speed measurement.

`sample_cases` picks an ADRG at random and builds a stay its condition should take: a principal diagnosis
from the ADRG's own list (or its MDC's), the procedures its condition names, the sex and newborn facts its MDC
needs, and secondary diagnoses drawn from the MCC/CC list and the MDC lists. Earlier ADRGs (and MDCs) in the
try order may still take such a stay, as they would a real one; the sample measures how many are grouped at
all and how many land where they were aimed.

    python -m services.drg.sample [COUNT]     # table load time and grouping speed on one core
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass

from clearing.drg import DischargeStatus, DrgCase, DrgTables, Sex, group, parse_tables
from clearing.drg.conditions import Compare, InList, RegionCount, Subject, condition_subjects, fields_compared
from clearing.drg.tables import AdrgRule, MdcRule


@dataclass(frozen=True, slots=True)
class Aimed:
    case: DrgCase
    mdc: str
    adrg: str


def sample_cases(tables: DrgTables, count: int, seed: int = 13) -> list[Aimed]:
    """`count` stays, each aimed at an ADRG drawn uniformly from the 376."""
    rng = random.Random(seed)
    adrgs = [(mdc, adrg) for mdc in tables.mdcs for adrg in mdc.adrgs]
    pools = Pools.of(tables)
    return [aimed_case(rng, tables, pools, *rng.choice(adrgs)) for _ in range(count)]


@dataclass(frozen=True, slots=True)
class Pools:
    """Sorted code lists to draw from (sorted: a seed gives the same sample on every run)."""

    all_entry: tuple[str, ...]
    cc: tuple[str, ...]
    valid: tuple[str, ...]

    @staticmethod
    def of(tables: DrgTables) -> Pools:
        return Pools(all_entry=tuple(sorted(set().union(*(mdc.diagnoses for mdc in tables.mdcs)))),
                     cc=tuple(sorted(tables.cc)), valid=tuple(sorted(tables.valid_procedures)))


def lists_of(adrg: AdrgRule) -> list[InList]:
    found: list[InList] = []

    def walk(condition: object) -> None:
        if isinstance(condition, InList):
            found.append(condition)
        for part in getattr(condition, "parts", ()):
            walk(part)

    walk(adrg.condition)
    return found


def aimed_case(rng: random.Random, tables: DrgTables, pools: Pools, mdc: MdcRule, adrg: AdrgRule) -> Aimed:
    resolve = adrg_lists(tables, adrg)
    principal = pick_principal(rng, pools, mdc, adrg, resolve)
    procedures = pick_procedures(rng, pools, adrg, resolve)
    others = [rng.choice(pools.cc) for _ in range(rng.choice((0, 0, 1, 1, 2, 3)))]
    others += [rng.choice(pools.all_entry) for _ in range(rng.choice((0, 1, 2)))]
    if any(isinstance(part, RegionCount) for part in getattr(mdc.condition, "parts", ())):
        region = mdc.body_regions.get(principal)
        others.append(rng.choice(sorted(code for code, other in mdc.body_regions.items() if other != region)))
    for listed in lists_of(adrg):
        if listed.subject is Subject.ANY_DIAGNOSIS and listed.list_name != "valid_procedures":
            others.append(rng.choice(sorted(resolve(listed.list_name, None))))
    sex = required_sex(mdc) or rng.choice((Sex.MALE, Sex.FEMALE))
    newborn = mdc.mdc == "MDCP"
    weight = newborn_weight(rng, adrg) if newborn else None
    case = DrgCase(
        principal_diagnosis=principal, other_diagnoses=tuple(dict.fromkeys(others)), procedures=procedures,
        sex=sex, age_years=0 if newborn else rng.randint(1, 95),
        age_days=rng.randint(0, 28) if newborn and "age_days" in fields_compared(adrg.condition) else
        (rng.randint(0, 364) if newborn else None),
        birth_weight_g=weight, los_days=rng.randint(1, 30), discharge_status=rng.choice(list(DischargeStatus)))
    return Aimed(case, mdc.mdc, adrg.adrg)


def required_sex(mdc: MdcRule) -> Sex | None:
    """MDCM and MDCN compare `sex == 1` / `sex == 2` (the tables' numbers)."""
    parts = getattr(mdc.condition, "parts", (mdc.condition,))
    for part in parts:
        if isinstance(part, Compare) and part.field == "sex":
            return {1: Sex.MALE, 2: Sex.FEMALE}[part.value]
    return None


def adrg_lists(tables: DrgTables, adrg: AdrgRule):  # noqa: ANN201 - (list name, group) → codes
    def resolve(name: str, group: str | None) -> frozenset[str]:
        if name == "valid_procedures":
            return tables.valid_procedures
        return adrg.lists.get((name, group), frozenset())

    return resolve


def pick_principal(rng: random.Random, pools: Pools, mdc: MdcRule, adrg: AdrgRule, resolve) -> str:  # noqa: ANN001
    entry = mdc.diagnoses or frozenset(pools.all_entry)
    if Subject.PRINCIPAL_DIAGNOSIS in condition_subjects(adrg.condition):
        own = resolve("principal_diagnosis", None) & entry
        if own:
            return rng.choice(sorted(own))
    return rng.choice(sorted(entry))


def pick_procedures(rng: random.Random, pools: Pools, adrg: AdrgRule, resolve) -> tuple[str, ...]:  # noqa: ANN001
    main: list[str] = []
    extra: list[str] = []
    for listed in lists_of(adrg):
        if listed.subject is Subject.MAIN_PROCEDURE:
            main.append(rng.choice(sorted(resolve(listed.list_name, None))))
        elif listed.subject is Subject.ANY_PROCEDURE:
            extra.append(rng.choice(sorted(resolve(listed.list_name, listed.procedure_group))))
    if not main and not extra and adrg.uses_procedure:
        main.append(rng.choice(pools.valid))
    procedures = main[:1] + extra + [rng.choice(pools.valid) for _ in range(rng.choice((0, 0, 1)))] \
        if adrg.uses_procedure else []
    return tuple(dict.fromkeys(procedures))


def newborn_weight(rng: random.Random, adrg: AdrgRule) -> int | None:
    bands = [part for part in getattr(adrg.condition, "parts", ()) if isinstance(part, Compare)
             and part.field == "birth_weight_g"]
    low = next((band.value for band in bands if band.op == ">="), 500)
    high = next((band.value - 1 for band in bands if band.op == "<"), 4500)
    return rng.randint(low, high)


def measure(count: int) -> None:
    """Print the table load time and the grouping speed (one process, one core)."""
    from services.drg.reference import table_texts

    start = time.perf_counter()
    cpu = time.process_time()
    tables = parse_tables(table_texts())
    print(f"load: {time.perf_counter() - start:.2f} s wall, {time.process_time() - cpu:.2f} s CPU")
    cases = [item.case for item in sample_cases(tables, count)]
    cpu = time.process_time()
    grouped = sum(group(case, tables).grouped for case in cases)
    seconds = time.process_time() - cpu
    print(f"grouped {grouped}/{count} in {seconds:.2f} s CPU: {count / seconds:,.0f} cases/s on one core")


if __name__ == "__main__":
    measure(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
