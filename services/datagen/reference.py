"""Read the copied national reference lists in `reference/` (see its README for sources).

This module decides nothing: it parses each CSV once into frozen rows and caches them, so
every generator sees the same tuples in file order (file order is part of the national drug
code scheme, see `national.py`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REFERENCE_DIR = Path(__file__).with_name("reference")


@dataclass(frozen=True, slots=True)
class DrugListRow:
    """One line of the 2024 National Reimbursement Drug List (国家医保药品目录)."""

    category: str  # 西药 / 中成药
    section: str  # source sheet: 西药部分 / 中成药部分 / 协议西药 / 协议中成药 / 竞价药品部分
    class_code: str
    grade: str  # 甲 / 乙
    list_no: str  # "15", or "★(15)" for a repeat line of No. 15
    is_repeat: bool
    drug_name: str
    dosage_form: str
    restriction: str
    payment_standard: str
    validity_period: str


@dataclass(frozen=True, slots=True)
class ServiceItemRow:
    """One national medical service item (医疗服务项目) with its 15-digit code."""

    code: str
    base_code: str  # 9-digit 全国医疗服务价格项目规范 code; its first two digits are the chapter
    name: str


@dataclass(frozen=True, slots=True)
class ConsumableRow:
    """One consumable class (医用耗材) with its 10-character C… code."""

    code: str
    name: str
    fee_item: str
    level_1_code: str


@dataclass(frozen=True, slots=True)
class IcdCategory:
    """One ICD-10 3-character category with its Chinese name."""

    code: str
    name_zh: str
    group_name_zh: str


@dataclass(frozen=True, slots=True)
class Division:
    """One administrative division (province, prefecture or county) of the demo regions."""

    code: str
    name: str
    level: str
    parent_code: str


def _read(name: str) -> list[dict[str, str]]:
    with (REFERENCE_DIR / name).open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


@cache
def drug_list() -> tuple[DrugListRow, ...]:
    """All 3,826 NRDL 2024 lines in file order."""
    return tuple(
        DrugListRow(
            category=row["category"],
            section=row["section"],
            class_code=row["class_code"],
            grade=row["grade"],
            list_no=row["list_no"],
            is_repeat=row["is_repeat"] == "1",
            drug_name=row["drug_name"],
            dosage_form=row["dosage_form"],
            restriction=row["restriction"],
            payment_standard=row["payment_standard"],
            validity_period=row["validity_period"],
        )
        for row in _read("nrdl_2024_drugs.csv")
    )


@cache
def service_items() -> tuple[ServiceItemRow, ...]:
    """All 3,156 national service items in file order."""
    return tuple(
        ServiceItemRow(code=row["code"], base_code=row["base_code"], name=row["name"])
        for row in _read("medical_service_items.csv")
    )


@cache
def consumables() -> tuple[ConsumableRow, ...]:
    """All 185 consumable classes in file order."""
    return tuple(
        ConsumableRow(
            code=row["code"], name=row["name"], fee_item=row["fee_item"], level_1_code=row["level_1_code"]
        )
        for row in _read("medical_consumables.csv")
    )


@cache
def icd10_categories() -> tuple[IcdCategory, ...]:
    """All 1,965 ICD-10 categories in file order."""
    return tuple(
        IcdCategory(code=row["code"], name_zh=row["name_zh"], group_name_zh=row["group_name_zh"])
        for row in _read("icd10_categories.csv")
    )


@cache
def divisions() -> tuple[Division, ...]:
    """The administrative divisions of the demo regions (a subset, see the README)."""
    return tuple(
        Division(code=row["code"], name=row["name"], level=row["level"], parent_code=row["parent_code"])
        for row in _read("admin_divisions_demo.csv")
    )
