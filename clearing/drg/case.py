"""One inpatient stay as the grouper sees it (病案首页 facts), validated (SPEC §14, C.json).

Everything a caller can get wrong is refused here with the field named; `group` then never raises.
Codes are 医保版 2.0 (ICD-10 diagnoses, ICD-9-CM3 procedures). A well-formed code the tables do not know is not
an input error: the stay is then ungroupable ("0000") and the reason says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from clearing import limits
from clearing.errors import InvalidField

# Upper-case category letter, then the 医保版 2.0 tail: A00.000x001, A54.301+H13.1*, I21.000.
DIAGNOSIS_PATTERN = re.compile(r"^[A-Z][0-9]{2}[0-9A-Za-z.+*]{0,16}\Z")
# ICD-9-CM3 医保版 2.0: 01.2502, 00.5500x008, 31.1x00x005 (and a bare two-digit chapter code).
PROCEDURE_PATTERN = re.compile(r"^[0-9]{2}(\.[0-9A-Za-z]{1,12})?\Z")

AGE_YEARS_MAX = 150
AGE_DAYS_MAX = 365  # 年龄不足1周岁的年龄(天): only for a patient under one year
BIRTH_WEIGHT_G_MAX = 9999  # 新生儿出生体重(克); the 病案首页 field has four digits
LOS_DAYS_MAX = 36_600

E = TypeVar("E", bound=StrEnum)

CASE_FIELDS = ("principal_diagnosis", "other_diagnoses", "procedures", "sex", "age_years", "age_days",
               "birth_weight_g", "los_days", "discharge_status")


class Sex(StrEnum):
    MALE = "M"
    FEMALE = "F"


class DischargeStatus(StrEnum):
    """离院方式 (national code)."""

    ORDERED = "1"  # 医嘱离院
    TRANSFER = "2"  # 医嘱转院
    COMMUNITY = "3"  # 医嘱转社区卫生服务机构/乡镇卫生院
    AGAINST_ADVICE = "4"  # 非医嘱离院
    DEATH = "5"  # 死亡
    OTHER = "9"  # 其他


@dataclass(frozen=True, slots=True)
class DrgCase:
    """The grouper's input. `procedures[0]` is the main procedure (主要手术及操作)."""

    principal_diagnosis: str
    other_diagnoses: tuple[str, ...]
    procedures: tuple[str, ...]
    sex: Sex
    age_years: int
    age_days: int | None
    birth_weight_g: int | None
    los_days: int
    discharge_status: DischargeStatus

    @property
    def main_procedure(self) -> str | None:
        return self.procedures[0] if self.procedures else None


def case_from_dict(data: object, field: str = "") -> DrgCase:
    """Validate a decoded C.json object; errors name the field (`other_diagnoses[2]`), prefixed by `field`."""
    prefix = f"{field}." if field else ""
    if not isinstance(data, dict):
        raise InvalidField(field or "case", "must be a JSON object")
    unknown = sorted(set(data) - set(CASE_FIELDS))
    if unknown:
        raise InvalidField(f"{prefix}{unknown[0]}", "unknown field")
    for name in CASE_FIELDS:
        if name not in data:
            raise InvalidField(f"{prefix}{name}", "missing")
    age_years = whole(data["age_years"], f"{prefix}age_years", 0, AGE_YEARS_MAX)
    age_days = optional_whole(data["age_days"], f"{prefix}age_days", 0, AGE_DAYS_MAX)
    if age_days is not None and age_years != 0:
        raise InvalidField(f"{prefix}age_days", "only for a patient under one year (age_years 0); use null")
    return DrgCase(
        principal_diagnosis=code(data["principal_diagnosis"], f"{prefix}principal_diagnosis", DIAGNOSIS_PATTERN),
        other_diagnoses=codes(data["other_diagnoses"], f"{prefix}other_diagnoses", DIAGNOSIS_PATTERN,
                              limits.DIAGNOSES_PER_STAY_MAX - 1),
        procedures=codes(data["procedures"], f"{prefix}procedures", PROCEDURE_PATTERN, limits.PROCEDURES_PER_STAY_MAX),
        sex=choice(data["sex"], f"{prefix}sex", Sex),
        age_years=age_years,
        age_days=age_days,
        birth_weight_g=optional_whole(data["birth_weight_g"], f"{prefix}birth_weight_g", 1, BIRTH_WEIGHT_G_MAX),
        los_days=whole(data["los_days"], f"{prefix}los_days", 0, LOS_DAYS_MAX),
        discharge_status=choice(data["discharge_status"], f"{prefix}discharge_status", DischargeStatus),
    )


def code(value: object, field: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        kind = "ICD-10 医保版 2.0 diagnosis" if pattern is DIAGNOSIS_PATTERN else "ICD-9-CM3 医保版 2.0 procedure"
        shown = repr(value)[:40]
        raise InvalidField(field, f"must be an {kind} code (got {shown})")
    return value


def codes(value: object, field: str, pattern: re.Pattern[str], count_max: int) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise InvalidField(field, "must be a list of codes")
    if len(value) > count_max:
        raise InvalidField(field, f"must have at most {count_max} codes")
    return tuple(code(item, f"{field}[{index}]", pattern) for index, item in enumerate(value))


def whole(value: object, field: str, low: int, high: int) -> int:
    # bool is an int subclass: `true` is not an age.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidField(field, "must be a whole number")
    if not low <= value <= high:
        raise InvalidField(field, f"must be between {low} and {high}")
    return value


def optional_whole(value: object, field: str, low: int, high: int) -> int | None:
    return None if value is None else whole(value, field, low, high)


def choice(value: object, field: str, enum: type[E]) -> E:
    allowed = [member.value for member in enum]
    if not isinstance(value, str) or value not in allowed:
        raise InvalidField(field, f"must be one of {', '.join(repr(item) for item in allowed)}")
    return enum(value)


def case_json(case: DrgCase) -> dict[str, Any]:
    """The C.json form of a case (the inverse of `case_from_dict`)."""
    return {
        "principal_diagnosis": case.principal_diagnosis, "other_diagnoses": list(case.other_diagnoses),
        "procedures": list(case.procedures), "sex": case.sex.value, "age_years": case.age_years,
        "age_days": case.age_days, "birth_weight_g": case.birth_weight_g, "los_days": case.los_days,
        "discharge_status": case.discharge_status.value,
    }
