"""Builders for DRG grouping tests: a C.json dict and its validated `DrgCase`, and the shipped tables.

The expected groups in the tests are worked out by hand from the table rows quoted next to each case
(grep services/drg/reference/*.csv for the code), never by calling the grouper.
"""

from __future__ import annotations

from typing import Any

from clearing.drg import DrgCase, DrgTables, case_from_dict
from services.drg.reference import load_tables


def case_dict(principal: str, others: tuple[str, ...] | list[str] = (), procedures: tuple[str, ...] | list[str] = (),
              sex: str = "M", age_years: int = 50, age_days: int | None = None, birth_weight_g: int | None = None,
              los_days: int = 8, discharge_status: str = "1") -> dict[str, Any]:
    return {"principal_diagnosis": principal, "other_diagnoses": list(others), "procedures": list(procedures),
            "sex": sex, "age_years": age_years, "age_days": age_days, "birth_weight_g": birth_weight_g,
            "los_days": los_days, "discharge_status": discharge_status}


def case(principal: str, *others: str, **fields: Any) -> DrgCase:
    return case_from_dict(case_dict(principal, others, **fields))


def tables() -> DrgTables:
    return load_tables()
