"""The stay's 病案首页 facts beside its bill: procedures, the patient's sex and age, newborn facts, discharge status.

What DRG grouping (clearing/drg) and the hospital payments need and the money of a settlement never reads. Every
field is optional, so a hospital that sends none of them still settles; what is sent is checked here, the field
named. Where each fact comes from (docs/stay-facts.md): sex and age follow from the ID number at admission
(身份证号: birth date and sex digit), the birth weight is sent at admission, the procedures and the discharge
status at discharge, like the discharge diagnoses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from clearing import limits
from clearing.drg.case import (
    AGE_DAYS_MAX, AGE_YEARS_MAX, BIRTH_WEIGHT_G_MAX, DIAGNOSIS_PATTERN, PROCEDURE_PATTERN, DischargeStatus, DrgCase, Sex,
)
from clearing.errors import InvalidField

SEXES = tuple(sex.value for sex in Sex)
DISCHARGE_STATUSES = tuple(status.value for status in DischargeStatus)
# The bill JSON's optional keys (SPEC §5.3 B.json plus these; the quote's output does not depend on them).
RECORD_KEYS = ("procedures", "sex", "age_years", "age_days", "birth_weight_g", "discharge_status")


@dataclass(frozen=True, slots=True)
class MedicalRecord:
    """The facts; None (or no procedures) when not given. `procedures[0]` is the main one (主要手术及操作)."""

    procedures: tuple[str, ...] = ()
    sex: str | None = None  # 性别 M/F
    age_years: int | None = None  # 年龄(岁) at admission
    age_days: int | None = None  # 年龄不足1周岁的年龄(天): only under one year
    birth_weight_g: int | None = None  # 新生儿出生体重(克): only under one year
    discharge_status: str | None = None  # 离院方式 1–5, 9

    def as_dict(self) -> dict[str, Any]:
        return {"procedures": list(self.procedures), "sex": self.sex, "age_years": self.age_years,
                "age_days": self.age_days, "birth_weight_g": self.birth_weight_g,
                "discharge_status": self.discharge_status}


def check_procedures(values: object, field: str) -> tuple[str, ...]:
    """ICD-9-CM3 医保版 codes (`51.2300`, `00.5500x008`), main first; none is fine (a medical stay)."""
    if not isinstance(values, (list, tuple)):
        raise InvalidField(field, "must be a list of ICD-9-CM3 procedure codes")
    if len(values) > limits.PROCEDURES_PER_STAY_MAX:
        raise InvalidField(field, f"must have at most {limits.PROCEDURES_PER_STAY_MAX} procedures")
    for index, code in enumerate(values):
        if not isinstance(code, str) or not PROCEDURE_PATTERN.match(code):
            raise InvalidField(f"{field}[{index}]", "must be an ICD-9-CM3 医保版 procedure code such as 51.2300")
    if len(set(values)) != len(values):
        first = next(code for index, code in enumerate(values) if code in values[:index])
        raise InvalidField(field, f"lists {first} twice")
    return tuple(values)


def check_discharge_status(value: object, field: str) -> str | None:
    """离院方式: "1" 医嘱离院 … "5" 死亡, "9" 其他; empty or None is not given."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value not in DISCHARGE_STATUSES:
        raise InvalidField(field, f"must be one of {', '.join(DISCHARGE_STATUSES)} (离院方式)")
    return value


def check_sex(value: object, field: str) -> str | None:
    if value is None or value == "":
        return None
    if value not in SEXES:
        raise InvalidField(field, "must be M or F")
    return value  # type: ignore[return-value]


def check_whole(value: object, field: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(field, "must be a whole number")
    if not low <= value <= high:
        raise InvalidField(field, f"must be between {low} and {high}")
    return value


def ages_at(birth_date: date, admitted_on: date) -> tuple[int, int | None]:
    """(age in whole years, age in days when under one year) on the admission day (a birthday counts on the day;
    a 29 February birthday falls on 1 March in other years)."""
    years = admitted_on.year - birth_date.year - ((admitted_on.month, admitted_on.day) < (birth_date.month, birth_date.day))
    return years, (admitted_on - birth_date).days if years == 0 else None


def check_newborn(age_years: int | None, age_days: int | None, birth_weight_g: int | None, prefix: str = "") -> None:
    """Age in days and birth weight belong to a patient under one year (the 病案首页 leaves them empty otherwise)."""
    if age_days is not None and age_years != 0:
        raise InvalidField(f"{prefix}age_days", "only for a patient under one year (age_years 0)")
    if birth_weight_g is not None and age_years is not None and age_years != 0:
        raise InvalidField(f"{prefix}birth_weight_g", "only for a patient under one year (a newborn or infant)")


def record_from_dict(data: dict[str, Any]) -> MedicalRecord:
    """The optional keys of a bill JSON (`procedures`, `sex`, `age_years`, `age_days`, `birth_weight_g`,
    `discharge_status`); a missing key is not given."""
    record = MedicalRecord(
        procedures=check_procedures(data.get("procedures", []), "procedures"),
        sex=check_sex(data.get("sex"), "sex"),
        age_years=check_whole(data.get("age_years"), "age_years", 0, AGE_YEARS_MAX),
        age_days=check_whole(data.get("age_days"), "age_days", 0, AGE_DAYS_MAX),
        birth_weight_g=check_whole(data.get("birth_weight_g"), "birth_weight_g", 1, BIRTH_WEIGHT_G_MAX),
        discharge_status=check_discharge_status(data.get("discharge_status"), "discharge_status"),
    )
    if record.age_days is not None and record.age_years is None:
        raise InvalidField("age_years", "must be given with age_days (0)")
    check_newborn(record.age_years, record.age_days, record.birth_weight_g)
    return record


def drg_case(diagnoses: tuple[str, ...], record: MedicalRecord, los_days: int) -> DrgCase | None:
    """The grouper's case of a stay, or None when it lacks what grouping needs: sex and age, or diagnoses in the
    医保版 spelling (a demo code such as `c34.1` is refused by the grouper's stricter pattern). A stay without a
    discharge status is taken as 医嘱离院 (the grouping does not read it)."""
    if record.sex is None or record.age_years is None or not diagnoses:
        return None
    if not all(DIAGNOSIS_PATTERN.match(code) for code in diagnoses):
        return None
    return DrgCase(
        principal_diagnosis=diagnoses[0], other_diagnoses=tuple(dict.fromkeys(diagnoses[1:])),
        procedures=record.procedures, sex=Sex(record.sex), age_years=record.age_years, age_days=record.age_days,
        birth_weight_g=record.birth_weight_g, los_days=min(max(los_days, 0), 36_600),
        discharge_status=DischargeStatus(record.discharge_status or DischargeStatus.ORDERED.value))
