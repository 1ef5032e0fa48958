"""Seeded generator of the smart-audit knowledge base (知识库, SPEC §12.1) from the national lists.

`generate_knowledge_rows(seed)` is a pure function of the seed: it walks every national item
(`national.py`: the codes the regional catalogues map to, so the knowledge base is keyed by the codes
bills really carry) in reference-file order, applies the name rules below, then the seeded ones, and
returns one row per item with at least one fact, sorted by national code. Real data: codes and names.
Decided here (docs/smart-audit.md lists what each rule matches):

* **Sex** (`sex`): a name containing 前列腺 or 睾丸 → `M`; 子宫, 卵巢, 宫颈 or 阴道 → `F`; and 产 only
  inside an obstetric word (`OBSTETRIC_WORDS`: 产前, 产后, 产时, 引产, 流产, 助产, 顺产, 难产, 剖宫产, 催产)
  → `F`. A bare 产 would also take 降解产物 / 裂解产物 (degradation products, lab tests for anyone) and
  双重造影产气 (an effervescent contrast agent). A name with words of both sexes gets no sex.
* **Age**: 新生儿 → `max_age` 0; otherwise 小儿 or 儿童 → `max_age` 14, except a product that only
  *includes* a children's form (`含儿童型`).
* **Bed-day** (`bed_day` 1): a name containing 床位费 (every 病房床位费 of the service list).
* **Nursing grades**: the items named exactly 特级护理, Ⅰ级护理, Ⅱ级护理, Ⅲ级护理 (or with 一/二/三) form one
  `exclusive_group` (`等级护理`) with `max_qty_per_day` 1. 等级护理 itself (a 加收 item) and 新生儿护理 /
  特殊疾病护理 are not grades.
* **Seeded** (`random.Random(f"knowledge:{seed}")`, draws in file order, so a seed gives one file):
  8 % of surgery items (service chapter 33, anaesthesia and the inpatient basics excepted) get
  `min_hospital_level` 2 (two thirds) or 3; 3 % of laboratory and pathology items (chapters 25, 27)
  get `max_qty_per_day` 1. Both are invented for the demo; no list publishes them.

About 330 rows for seed 2026; generating takes well under a second (the first call parses the lists).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable
from pathlib import Path

from services.datagen.national import ESSENTIAL, KINDS, KIND_SERVICE, NationalItem, national_items

KNOWLEDGE_COLUMNS = (
    "national_code", "sex", "min_age", "max_age", "min_hospital_level", "max_qty_per_day", "bed_day",
    "exclusive_group",
)
MALE_WORDS = ("前列腺", "睾丸")
FEMALE_WORDS = ("子宫", "卵巢", "宫颈", "阴道")
OBSTETRIC_WORDS = ("产前", "产后", "产时", "引产", "流产", "助产", "顺产", "难产", "剖宫产", "催产")
CHILD_WORDS = ("小儿", "儿童")
CHILD_EXCEPT = ("含儿童型",)
CHILD_AGE_MAX = 14
NEWBORN_WORD = "新生儿"
BED_WORD = "床位费"
NURSING_GRADE_NAMES = frozenset(("特级护理", "Ⅰ级护理", "Ⅱ级护理", "Ⅲ级护理", "一级护理", "二级护理", "三级护理"))
NURSING_GROUP = "等级护理"
SURGERY_LEVEL_SHARE = 0.08
LAB_DAY_LIMIT_SHARE = 0.03


def sex_of(name: str) -> str:
    """`M`, `F` or "" by the name rules above."""
    male = any(word in name for word in MALE_WORDS)
    female = any(word in name for word in FEMALE_WORDS + OBSTETRIC_WORDS)
    if male and female:
        return ""  # contradictory: leave it to a human
    return "M" if male else "F" if female else ""


def max_age_of(name: str) -> str:
    if NEWBORN_WORD in name:
        return "0"
    if any(word in name for word in CHILD_WORDS) and not any(word in name for word in CHILD_EXCEPT):
        return str(CHILD_AGE_MAX)
    return ""


def named_facts(item: NationalItem) -> dict[str, str]:
    """The facts the name rules give (every column, "" where none)."""
    nursing = item.kind == KIND_SERVICE and item.name in NURSING_GRADE_NAMES
    return {
        "national_code": item.national_code,
        "sex": sex_of(item.name),
        "min_age": "",
        "max_age": max_age_of(item.name),
        "min_hospital_level": "",
        "max_qty_per_day": "1" if nursing else "",
        "bed_day": "1" if item.kind == KIND_SERVICE and BED_WORD in item.name else "",
        "exclusive_group": NURSING_GROUP if nursing else "",
    }


def seeded_facts(rng: random.Random, item: NationalItem, row: dict[str, str]) -> None:
    """The invented facts, drawn for every service item in file order (the same draws whatever matched)."""
    level_draw, level_pick, limit_draw = rng.random(), rng.random(), rng.random()
    code = item.national_code
    if code in ESSENTIAL or row["bed_day"] or row["exclusive_group"]:
        return  # every hospital can bill a stay's basics
    chapter = code[2:4]
    if chapter == "33" and not code.startswith("003301") and level_draw < SURGERY_LEVEL_SHARE:
        row["min_hospital_level"] = "2" if level_pick < 2 / 3 else "3"
    if chapter in ("25", "27") and limit_draw < LAB_DAY_LIMIT_SHARE:
        row["max_qty_per_day"] = "1"


def generate_knowledge_rows(seed: int) -> list[dict[str, str]]:
    """Every national item with at least one fact, sorted by national code."""
    rng = random.Random(f"knowledge:{seed}")
    rows = []
    for kind in KINDS:
        for item in national_items(kind):
            row = named_facts(item)
            if kind == KIND_SERVICE:
                seeded_facts(rng, item, row)
            if any(row[column] for column in KNOWLEDGE_COLUMNS[1:]):
                rows.append(row)
    return sorted(rows, key=lambda row: row["national_code"])


def write_knowledge_csv(rows: Iterable[dict[str, str]], path: str | Path) -> int:
    """Write rows as a SPEC §12.1 CSV (UTF-8, no BOM, header, LF line ends); returns the row count."""
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=KNOWLEDGE_COLUMNS, lineterminator="\n", extrasaction="raise")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def knowledge_csv_text(seed: int) -> str:
    """The generated knowledge base as CSV text (what `write_knowledge_csv` writes), for in-process use."""
    lines = [",".join(KNOWLEDGE_COLUMNS)]
    for row in generate_knowledge_rows(seed):
        assert not any("," in value or '"' in value for value in row.values())  # no quoting needed
        lines.append(",".join(row[column] for column in KNOWLEDGE_COLUMNS))
    return "\n".join(lines) + "\n"
