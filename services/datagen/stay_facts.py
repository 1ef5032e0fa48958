"""Realistic 病案首页 facts for a generated stay: full 医保版 2.0 diagnosis codes, procedures that fit them, the
patient's sex and age, newborn facts, the discharge status (docs/stay-facts.md).

`bills.generate_bill` draws the diagnoses as categories (`C34`) or subcategories (`C34.1`) and builds the lines
from them. Here, with a random generator of their own (so the lines, and so every seeded bill's money, stay as
they were drawn), each written code becomes a code of the CHS-DRG 1.1 tables (services/drg/reference) that
extends it (`C34.1` → `C34.100x003`): every 3-character restriction prefix (限定支付范围) and the smart-audit
rules that read the category see the same codes. Then:

* **Principal diagnosis**: a code the grouper takes for the patient's sex (not on the male list MDCM for a
  woman, nor on MDCN or the pregnancy list MDCO for a man), tried until the stay groups (`clearing.drg.group`),
  a surgical stay to a surgical ADRG.
* **Procedures** (ICD-9-CM3 医保版, from the tables' ADRG lists): a stay whose bill has a surgery line gets the
  operation that treats its principal diagnosis (`PROCEDURES_BY_CATEGORY`: K80 → 51.22/51.23 胆囊切除, C34 →
  32.4 肺叶切除, …), a cardiac intervention a coronary stent (36.06/36.07) with 00.66 PTCA; a medical stay none.
* **A patient under one year** (the HIS simulator's members: the age follows from the ID number) gets a newborn
  or infant principal diagnosis from the MDCP list (`NEWBORN_PRINCIPALS`), the drawn codes as secondary ones,
  the age in days and a birth weight (lower for a preterm birth); no procedure.
* **Discharge status** (离院方式): mostly `1` 医嘱离院 (`DISCHARGE_WEIGHTS`).
* Without a patient (benchmarks, the datagen CLI) the sex and age are drawn too.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass

from clearing.drg import DrgTables, group
from clearing.medical_record import MedicalRecord, drg_case
from services.drg.reference import load_tables

# Procedure prefixes (ICD-9-CM3 医保版) for a stay with a surgery line, by the principal diagnosis's category.
PROCEDURES_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "K80": ("51.22", "51.23"),  # 胆囊切除术, 腹腔镜胆囊切除术
    "K35": ("47.0",),  # 阑尾切除术
    "K40": ("53.0", "53.1"),  # 腹股沟疝修补术
    "K56": ("54.5", "45.6"),  # 腹膜粘连松解术, 小肠部分切除术
    "S72": ("79.35", "81.52"),  # 股骨骨折切开复位内固定术, 部分髋关节置换术
    "S82": ("79.36",),  # 胫腓骨骨折切开复位内固定术
    "M17": ("81.54",),  # 全膝关节置换术
    "C34": ("32.4", "32.3"),  # 肺叶切除术, 肺段切除术
    "C16": ("43.5", "43.6", "43.7", "43.9"),  # 胃部分/全胃切除术
    "C50": ("85.4", "85.2"),  # 乳房切除术, 乳房病损切除术
    "C18": ("45.7", "45.8"),  # 结肠部分切除术, 全结肠切除术
    "I63": ("39.74",),  # 血管内取栓术
    "J18": ("33.2",),  # 支气管镜检查 (一部分为手术室操作)
    "J44": ("33.2",),
    "E11": ("86.22",),  # 伤口、感染或坏死组织切除性清创术 (糖尿病足)
    "A41": ("86.22",),
    "I50": ("37.8",),  # 永久起搏器置入
    "N18": ("39.27",),  # 动静脉造瘘术 (透析通路)
    "N20": ("55.0", "56.0"),  # 肾切开取石, 输尿管切开取石
}
INTERVENTION_PROCEDURES = ("36.06", "36.07")  # 冠状动脉支架置入 (with 00.66 PTCA as a second procedure)
PTCA = "00.66"
# Newborn and infant principal diagnoses (MDCP list prefixes) with the birth-weight range (g) they come with.
NEWBORN_PRINCIPALS: tuple[tuple[str, int, int, int], ...] = (  # (prefix, weight, low g, high g)
    ("P59.9", 35, 2500, 4200),  # 新生儿黄疸
    ("P07.3", 15, 1000, 2499),  # 早产儿
    ("P22.1", 10, 1800, 3800),  # 新生儿暂时性呼吸急促
    ("P23.9", 15, 2300, 4000),  # 新生儿肺炎
    ("P36.9", 8, 1500, 4000),  # 新生儿败血症
    ("P21.1", 7, 2000, 4000),  # 轻度出生窒息
    ("P92.9", 10, 2500, 4000),  # 新生儿喂养问题
)
DISCHARGE_WEIGHTS = {"1": 920, "2": 25, "3": 10, "4": 30, "5": 5, "9": 10}  # per 1,000 stays
ATTEMPTS_MAX = 12  # principal / procedure pairs tried before the last one is kept as it groups


@dataclass(frozen=True, slots=True)
class Pools:
    """The tables' codes, sorted (a seed draws the same codes on every run)."""

    by_category: dict[str, tuple[str, ...]]  # every MDC entry and MCC/CC code, by its first three characters
    principal: frozenset[str]  # the MDC entry codes (主诊表): what a principal diagnosis is drawn from
    male_only: frozenset[str]  # MDCM's list
    female_only: frozenset[str]  # MDCN's and MDCO's lists
    newborn: frozenset[str]  # MDCP's list
    procedures: dict[str, tuple[str, ...]]  # every procedure an ADRG list names, by its first two digits


@functools.cache
def pools() -> Pools:
    tables = load_tables()
    lists = {mdc.mdc: mdc.diagnoses for mdc in tables.mdcs}
    procedures = {code for adrg in tables.adrgs.values() for (name, _), codes in adrg.lists.items()
                  if name != "principal_diagnosis" for code in codes if code[:2].isdigit()}
    entry = frozenset(set().union(*lists.values()))
    by_category: dict[str, list[str]] = {}
    for code in sorted(entry | set(tables.cc)):
        by_category.setdefault(code[:3], []).append(code)
    return Pools(by_category={key: tuple(codes) for key, codes in by_category.items()}, principal=entry,
                 male_only=frozenset(lists.get("MDCM", ())), female_only=frozenset(lists.get("MDCN", ())) |
                 frozenset(lists.get("MDCO", ())), newborn=frozenset(lists.get("MDCP", ())),
                 procedures=chapters(procedures))


def chapters(procedures: set[str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for code in sorted(procedures):
        found.setdefault(code[:2], []).append(code)
    return {key: tuple(codes) for key, codes in found.items()}


@functools.cache
def codes_under(prefix: str, sex: str | None, principal: bool = False) -> tuple[str, ...]:
    """The tables' diagnosis codes extending `prefix` (`C34` → `C34.…`), for the sex (None: for either); for a
    principal diagnosis only those on an MDC's entry list."""
    written = prefix if "." in prefix else prefix + "."
    table = pools()
    found = [code for code in table.by_category.get(prefix[:3], ()) if code.startswith(written)
             and (not principal or code in table.principal)]
    fitting = tuple(code for code in found if not sex_conflict(code, sex))
    return fitting or tuple(found)


def sex_conflict(code: str, sex: str | None) -> bool:
    table = pools()
    return (sex != "M" and code in table.male_only) or (sex != "F" and code in table.female_only)


@functools.cache
def procedures_under(prefix: str) -> tuple[str, ...]:
    return tuple(code for code in pools().procedures.get(prefix[:2], ()) if code.startswith(prefix))


def full_code(rng: random.Random, written: str, sex: str | None, principal: bool = False) -> str:
    """A tables code extending the written one (or its category); the written one when the tables have none."""
    candidates = codes_under(written, sex, principal) or codes_under(written[:3], sex, principal)
    return rng.choice(candidates) if candidates else written


@dataclass(frozen=True, slots=True)
class Patient:
    sex: str
    age_years: int
    age_days: int | None  # under one year only


def stay_facts(rng: random.Random, written: Sequence[str], operation: str | None, patient: Patient | None,
               nights: int, tables: DrgTables | None = None) -> tuple[list[str], MedicalRecord]:
    """The stay's full diagnosis codes (principal first) and its facts. `written`: the bill's drawn codes;
    `operation`: "surgery", "intervention" or None, as the bill's lines have it."""
    tables = tables or load_tables()
    if patient is None:
        patient = Patient(sex=rng.choice("MF"), age_years=rng.randint(18, 90), age_days=None)
    status = rng.choices(list(DISCHARGE_WEIGHTS), weights=list(DISCHARGE_WEIGHTS.values()))[0]
    others = [full_code(rng, code, patient.sex) for code in written[1:]]
    if patient.age_years == 0:
        return newborn_facts(rng, written, others, patient, status, nights, tables)
    category = written[0][:3]
    best: tuple[list[str], MedicalRecord] | None = None
    for _ in range(ATTEMPTS_MAX):
        principal = full_code(rng, written[0], patient.sex, principal=True)
        procedures = pick_procedures(rng, category, operation)
        diagnoses = list(dict.fromkeys([principal, *others]))
        record = MedicalRecord(procedures=procedures, sex=patient.sex, age_years=patient.age_years,
                               discharge_status=status)
        best = (diagnoses, record)
        case = drg_case(tuple(diagnoses), record, nights)
        result = group(case, tables) if case is not None else None
        if result is not None and result.grouped and (not procedures or surgical(result.adrg)):
            break
    assert best is not None
    return best


def surgical(adrg: str | None) -> bool:
    """A procedure ADRG: second letter A–Q (MDCA's are all surgical)."""
    return adrg is not None and "A" <= adrg[1] <= "Q"


def pick_procedures(rng: random.Random, category: str, operation: str | None) -> tuple[str, ...]:
    if operation == "intervention":
        stents = [code for prefix in INTERVENTION_PROCEDURES for code in procedures_under(prefix)]
        return (rng.choice(stents), rng.choice(procedures_under(PTCA))) if stents else ()
    if operation != "surgery":
        return ()
    prefixes = PROCEDURES_BY_CATEGORY.get(category)
    if not prefixes:
        return ()
    candidates = [code for prefix in prefixes for code in procedures_under(prefix)]
    return (rng.choice(candidates),) if candidates else ()


def newborn_facts(rng: random.Random, written: Sequence[str], others: list[str], patient: Patient, status: str,
                  nights: int, tables: DrgTables) -> tuple[list[str], MedicalRecord]:
    """An infant's stay: a newborn principal diagnosis (MDCP) before the drawn codes, age in days, birth weight."""
    first = full_code(rng, written[0], patient.sex)
    best: tuple[list[str], MedicalRecord] | None = None
    for _ in range(ATTEMPTS_MAX):
        prefix, _, low, high = rng.choices(NEWBORN_PRINCIPALS, weights=[item[1] for item in NEWBORN_PRINCIPALS])[0]
        candidates = [code for code in codes_under(prefix, patient.sex) if code in pools().newborn]
        principal = rng.choice(candidates) if candidates else prefix
        diagnoses = list(dict.fromkeys([principal, first, *others]))
        record = MedicalRecord(sex=patient.sex, age_years=0, age_days=patient.age_days,
                               birth_weight_g=rng.randint(low, high), discharge_status=status)
        best = (diagnoses, record)
        case = drg_case(tuple(diagnoses[:32]), record, nights)
        if case is not None and group(case, tables).grouped:
            break
    assert best is not None
    return best
