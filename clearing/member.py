"""The insured member and the year-to-date accumulators (年度累计) the adjudication reads and advances."""

from __future__ import annotations

from dataclasses import dataclass, fields
from operator import add, attrgetter, sub
from typing import Any

from clearing.bill import check_region, check_text
from clearing.errors import InvalidField
from clearing.policy import AssistanceTier, FilingStatus, Scheme
from clearing.values import compile_constructor


@dataclass(frozen=True, slots=True)
class Ytd:
    """A member's accumulators for one policy year, all in fen except `admissions` (SPEC §5.2 step 8)."""

    deductible_fen: int = 0  # 起付线 paid so far
    eligible_fen: int = 0  # position on the basic-fund band axis
    hifp_fen: int = 0  # 统筹基金 paid
    burden_fen: int = 0  # in-scope personal burden, the 大病 axis
    hifmi_fen: int = 0  # 大病保险 paid
    assist_base_fen: int = 0  # the 医疗救助 axis
    maf_fen: int = 0  # 医疗救助 paid
    admissions: int = 0

    def plus(self, other: Ytd) -> Ytd:
        return new_ytd(*map(add, ytd_values(self), ytd_values(other)))

    def minus(self, other: Ytd) -> Ytd:
        return new_ytd(*map(sub, ytd_values(self), ytd_values(other)))

    def as_dict(self) -> dict[str, int]:
        return dict(zip(YTD_FIELDS, ytd_values(self)))

    def is_non_negative(self) -> bool:
        return min(ytd_values(self)) >= 0


YTD_FIELDS = tuple(field.name for field in fields(Ytd))
# Every stay reads and advances the accumulators: the values in field order in one call, and a Ytd without the
# dataclass __init__ (clearing/values.py).
ytd_values = attrgetter(*YTD_FIELDS)
new_ytd = compile_constructor(Ytd)


@dataclass(frozen=True, slots=True)
class Member:
    """What the insured region knows about a member that changes what its funds pay."""

    region: str
    member_id: str
    scheme: Scheme
    retired: bool
    poverty: bool
    assistance: AssistanceTier | None
    filing: FilingStatus


def member_from_dict(data: Any) -> tuple[Member, Ytd]:
    """Parse the SPEC §5.3 M.json shape: the member and the accumulators before this stay."""
    if not isinstance(data, dict):
        raise InvalidField("member", "must be a JSON object")
    member = Member(
        region=check_region(data.get("region"), "member.region"),
        member_id=check_text(data.get("member_id"), "member.member_id", 64),
        scheme=choice(Scheme, data.get("scheme"), "member.scheme"),
        retired=flag(data.get("retired", False), "member.retired"),
        poverty=flag(data.get("poverty", False), "member.poverty"),
        assistance=None if data.get("assistance") is None else choice(
            AssistanceTier, data.get("assistance"), "member.assistance"),
        filing=choice(FilingStatus, data.get("filing"), "member.filing"),
    )
    return member, ytd_from_dict(data.get("ytd", {}), "member.ytd")


def ytd_from_dict(data: Any, where: str) -> Ytd:
    if not isinstance(data, dict):
        raise InvalidField(where, "must be an object")
    for key in data:
        if key not in YTD_FIELDS:
            raise InvalidField(f"{where}.{key}", "unknown accumulator")
    values = []
    for name in YTD_FIELDS:
        value = data.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidField(f"{where}.{name}", "must be a non-negative integer")
        values.append(value)
    return Ytd(*values)


def choice(enum, value: Any, where: str):  # noqa: ANN001, ANN201 - returns a member of `enum`
    allowed = [member.value for member in enum]
    if value not in allowed:
        raise InvalidField(where, f"unknown value {value!r} (expected one of {', '.join(allowed)})")
    return enum(value)


def flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidField(where, "must be true or false")
    return value
