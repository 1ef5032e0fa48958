"""An insured region's benefits policy (待遇政策), parsed from TOML and validated — SPEC §5.1, §13.1.

`parse_policy(text)` takes the file's text (the caller reads it) and returns frozen values; every
error names the key (`schemes.employee.bands[1].upto_fen`). Absent optional sections mean "not
applicable": no 大病, no filing cut, no poverty bonus, no assistance. A cap of 0 means "no cap".
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from clearing import limits
from clearing.bill import HOSPITAL_LEVELS, check_region
from clearing.catalogue import ICD_PREFIX
from clearing.dates import parse_day
from clearing.errors import InvalidField, PreconditionFailed
from clearing.money import BP_WHOLE

AMOUNT_FEN_MAX = 10**13  # 100 billion yuan: any larger figure in a policy is a typo


class Scheme(StrEnum):
    EMPLOYEE = "employee"  # 职工基本医疗保险
    RESIDENT = "resident"  # 城乡居民基本医疗保险


class FilingStatus(StrEnum):
    """Filing status for treatment outside the insured region (异地备案)."""

    RESIDENT = "resident"  # 异地长期居住人员
    REFERRAL = "referral"  # 转诊转院人员
    TEMPORARY = "temporary"  # 临时外出就医人员
    UNFILED = "unfiled"  # 未备案


class AssistanceTier(StrEnum):
    """Medical assistance tier (医疗救助对象)."""

    TEKUN = "tekun"  # 特困人员
    DIBAO = "dibao"  # 低保对象
    DISHOURU = "dishouru"  # 低收入人口


@dataclass(frozen=True, slots=True)
class Band:
    """A segment of the year's eligible-amount axis ending at `upto_fen` (None: open), with a ratio
    per hospital level (分段比例)."""

    upto_fen: int | None
    ratio_bp: dict[int, int]


@dataclass(frozen=True, slots=True)
class CriticalBand:
    """A 大病保险 segment measured from the threshold, not from zero."""

    upto_fen: int | None
    ratio_bp: int


@dataclass(frozen=True, slots=True)
class Critical:
    """Critical-illness insurance (大病保险)."""

    threshold_fen: int
    annual_cap_fen: int
    bands: tuple[CriticalBand, ...]


@dataclass(frozen=True, slots=True)
class SchemePolicy:
    annual_cap_fen: int  # 统筹基金年度最高支付限额; 0 = none
    annual_deductible_cap_fen: int  # 0 = none
    retired_bonus_bp: int
    deductible_fen: dict[int, int]  # 起付线 per stay by hospital level
    bands: tuple[Band, ...]
    critical: Critical | None


@dataclass(frozen=True, slots=True)
class Poverty:
    """一站式 for poverty-registered members."""

    ratio_bonus_bp: int
    critical_threshold_bp: int


@dataclass(frozen=True, slots=True)
class AssistanceRule:
    """One tier of medical assistance (医疗救助): an annual threshold on its own axis, a ratio, a cap."""

    deductible_fen: int
    ratio_bp: int
    annual_cap_fen: int


class Disease(StrEnum):
    """The five outpatient special diseases settled directly across regions (门诊慢特病, SPEC §13)."""

    HYPERTENSION = "hypertension"  # 高血压
    DIABETES = "diabetes"  # 糖尿病
    CANCER_THERAPY = "cancer_therapy"  # 恶性肿瘤门诊放化疗
    DIALYSIS = "dialysis"  # 尿毒症透析
    TRANSPLANT = "transplant"  # 器官移植术后抗排异治疗


@dataclass(frozen=True, slots=True)
class SpecialDiseasePolicy:
    """One `[outpatient_special.<disease>]` section (SPEC §13.1). Exactly one of the two limits is set (not None);
    a limit of 0 means no limit. `icd_prefixes` are upper-case without dots, as a catalogue's `icd:` lists are."""

    icd_prefixes: tuple[str, ...]
    deductible_fen: int  # 起付线 per policy year for this disease
    ratio_bp: dict[int, int]  # by hospital level
    annual_limit_fen: int | None  # 年度支付限额
    monthly_limit_fen: int | None  # 月度定额 (e.g. dialysis)
    shares_inpatient_cap: bool  # the pay also counts toward the scheme's annual_cap_fen

    def __post_init__(self) -> None:
        assert (self.annual_limit_fen is None) != (self.monthly_limit_fen is None)
        assert self.icd_prefixes


@dataclass(frozen=True, slots=True)
class Policy:
    region: str
    name: str
    effective_from: date
    schemes: dict[Scheme, SchemePolicy]
    filing_cut_bp: dict[FilingStatus, int] | None
    poverty: Poverty | None
    assistance: dict[AssistanceTier, AssistanceRule] | None
    # A disease without a section is not covered by the region (SPEC §13.1).
    outpatient_special: dict[Disease, SpecialDiseasePolicy] = field(default_factory=dict)


def parse_policy(text: str) -> Policy:
    """Parse and validate one policy file's text."""
    try:
        document = tomllib.loads(text)
    except ValueError as error:  # TOMLDecodeError, and plain ValueError for integers of thousands of digits
        raise InvalidField("policy", f"not valid TOML: {error}") from None
    check_keys(document, "", required={"region", "name", "effective_from", "schemes"},
               optional={"filing", "poverty", "assistance", "outpatient_special"})
    schemes_table = table_at(document, "schemes", "schemes")
    if not schemes_table:
        raise InvalidField("schemes", "must define at least one scheme (employee or resident)")
    schemes: dict[Scheme, SchemePolicy] = {}
    for name, table in schemes_table.items():
        if name not in Scheme.__members__.values():
            raise InvalidField(f"schemes.{name}", "unknown scheme (expected employee or resident)")
        schemes[Scheme(name)] = parse_scheme(table_at(schemes_table, name, f"schemes.{name}"), f"schemes.{name}")
    name = document["name"]
    if not isinstance(name, str) or not name.strip():
        raise InvalidField("name", "must be a non-empty string")
    effective_from = document["effective_from"]
    return Policy(
        region=check_region(document["region"], "region"),
        name=name,
        effective_from=effective_from if type(effective_from) is date else parse_day(effective_from, "effective_from"),
        schemes=schemes,
        filing_cut_bp=parse_filing(document["filing"]) if "filing" in document else None,
        poverty=parse_poverty(document["poverty"]) if "poverty" in document else None,
        assistance=parse_assistance(document["assistance"]) if "assistance" in document else None,
        outpatient_special=parse_outpatient_special(document["outpatient_special"])
        if "outpatient_special" in document else {},
    )


def parse_scheme(table: dict[str, Any], where: str) -> SchemePolicy:
    check_keys(table, where, required={"deductible_fen", "bands"},
               optional={"annual_cap_fen", "annual_deductible_cap_fen", "retired_bonus_bp", "critical"})
    raw_bands = table["bands"]
    if not isinstance(raw_bands, list) or not raw_bands:
        raise InvalidField(f"{where}.bands", "must be a non-empty list of bands")
    bands = []
    for index, raw in enumerate(raw_bands):
        band_where = f"{where}.bands[{index}]"
        if not isinstance(raw, dict):
            raise InvalidField(band_where, "must be a table")
        check_keys(raw, band_where, required={"ratio_bp"}, optional={"upto_fen"})
        bands.append(Band(
            upto_fen=amount(raw["upto_fen"], f"{band_where}.upto_fen") if "upto_fen" in raw else None,
            ratio_bp=by_level(raw["ratio_bp"], f"{band_where}.ratio_bp", ratio),
        ))
    check_band_order([band.upto_fen for band in bands], f"{where}.bands")
    return SchemePolicy(
        annual_cap_fen=amount(table.get("annual_cap_fen", 0), f"{where}.annual_cap_fen"),
        annual_deductible_cap_fen=amount(table.get("annual_deductible_cap_fen", 0),
                                         f"{where}.annual_deductible_cap_fen"),
        retired_bonus_bp=ratio(table.get("retired_bonus_bp", 0), f"{where}.retired_bonus_bp"),
        deductible_fen=by_level(table["deductible_fen"], f"{where}.deductible_fen", amount),
        bands=tuple(bands),
        critical=parse_critical(table["critical"], f"{where}.critical") if "critical" in table else None,
    )


def parse_critical(raw: Any, where: str) -> Critical:
    if not isinstance(raw, dict):
        raise InvalidField(where, "must be a table")
    check_keys(raw, where, required={"threshold_fen", "bands"}, optional={"annual_cap_fen"})
    raw_bands = raw["bands"]
    if not isinstance(raw_bands, list) or not raw_bands:
        raise InvalidField(f"{where}.bands", "must be a non-empty list of bands")
    bands = []
    for index, band in enumerate(raw_bands):
        band_where = f"{where}.bands[{index}]"
        if not isinstance(band, dict):
            raise InvalidField(band_where, "must be a table")
        check_keys(band, band_where, required={"ratio_bp"}, optional={"upto_fen"})
        bands.append(CriticalBand(
            upto_fen=amount(band["upto_fen"], f"{band_where}.upto_fen") if "upto_fen" in band else None,
            ratio_bp=ratio(band["ratio_bp"], f"{band_where}.ratio_bp"),
        ))
    check_band_order([band.upto_fen for band in bands], f"{where}.bands")
    return Critical(
        threshold_fen=amount(raw["threshold_fen"], f"{where}.threshold_fen"),
        annual_cap_fen=amount(raw.get("annual_cap_fen", 0), f"{where}.annual_cap_fen"),
        bands=tuple(bands),
    )


def parse_filing(raw: Any) -> dict[FilingStatus, int]:
    if not isinstance(raw, dict):
        raise InvalidField("filing", "must be a table")
    check_keys(raw, "filing", required=set(), optional={status.value for status in FilingStatus})
    # A status the table leaves out takes no cut.
    return {status: ratio(raw.get(status.value, 0), f"filing.{status.value}") for status in FilingStatus}


def parse_poverty(raw: Any) -> Poverty:
    if not isinstance(raw, dict):
        raise InvalidField("poverty", "must be a table")
    check_keys(raw, "poverty", required=set(), optional={"ratio_bonus_bp", "critical_threshold_bp"})
    return Poverty(
        ratio_bonus_bp=ratio(raw.get("ratio_bonus_bp", 0), "poverty.ratio_bonus_bp"),
        critical_threshold_bp=ratio(raw.get("critical_threshold_bp", BP_WHOLE), "poverty.critical_threshold_bp"),
    )


def parse_assistance(raw: Any) -> dict[AssistanceTier, AssistanceRule]:
    if not isinstance(raw, dict):
        raise InvalidField("assistance", "must be a table of tiers")
    tiers: dict[AssistanceTier, AssistanceRule] = {}
    for name, table in raw.items():
        where = f"assistance.{name}"
        if name not in AssistanceTier.__members__.values():
            raise InvalidField(where, "unknown tier (expected tekun, dibao or dishouru)")
        if not isinstance(table, dict):
            raise InvalidField(where, "must be a table")
        check_keys(table, where, required={"ratio_bp"}, optional={"deductible_fen", "annual_cap_fen"})
        tiers[AssistanceTier(name)] = AssistanceRule(
            deductible_fen=amount(table.get("deductible_fen", 0), f"{where}.deductible_fen"),
            ratio_bp=ratio(table["ratio_bp"], f"{where}.ratio_bp"),
            annual_cap_fen=amount(table.get("annual_cap_fen", 0), f"{where}.annual_cap_fen"),
        )
    return tiers


def parse_outpatient_special(raw: Any) -> dict[Disease, SpecialDiseasePolicy]:
    """The `[outpatient_special.<disease>]` sections (SPEC §13.1, readings of §13.4)."""
    if not isinstance(raw, dict):
        raise InvalidField("outpatient_special", "must be a table of diseases")
    diseases: dict[Disease, SpecialDiseasePolicy] = {}
    for name, table in raw.items():
        where = f"outpatient_special.{name}"
        if name not in Disease.__members__.values():
            raise InvalidField(where, f"unknown disease (expected one of {', '.join(Disease)})")
        if not isinstance(table, dict):
            raise InvalidField(where, "must be a table")
        check_keys(table, where, required={"icd", "ratio_bp"},
                   optional={"deductible_fen", "annual_limit_fen", "monthly_limit_fen", "shares_inpatient_cap"})
        has_annual, has_monthly = "annual_limit_fen" in table, "monthly_limit_fen" in table
        if has_annual == has_monthly:
            raise InvalidField(f"{where}.annual_limit_fen" if not has_annual else f"{where}.monthly_limit_fen",
                               "exactly one of annual_limit_fen and monthly_limit_fen is required")
        shares = table.get("shares_inpatient_cap", False)
        if not isinstance(shares, bool):
            raise InvalidField(f"{where}.shares_inpatient_cap", "must be true or false")
        diseases[Disease(name)] = SpecialDiseasePolicy(
            icd_prefixes=icd_list(table["icd"], f"{where}.icd"),
            deductible_fen=amount(table.get("deductible_fen", 0), f"{where}.deductible_fen"),
            ratio_bp=by_level(table["ratio_bp"], f"{where}.ratio_bp", ratio),
            annual_limit_fen=amount(table["annual_limit_fen"], f"{where}.annual_limit_fen") if has_annual else None,
            monthly_limit_fen=amount(table["monthly_limit_fen"], f"{where}.monthly_limit_fen") if has_monthly else None,
            shares_inpatient_cap=shares,
        )
    return diseases


def icd_list(raw: Any, where: str) -> tuple[str, ...]:
    """A non-empty list of ICD-10 prefixes (`C`, `E11`, `N18.5`), kept upper-case without dots."""
    if not isinstance(raw, list) or not raw:
        raise InvalidField(where, "must be a non-empty list of ICD-10 prefixes such as \"E11\"")
    if len(raw) > limits.ICD_PREFIXES_PER_DISEASE_MAX:
        raise InvalidField(where, f"must have at most {limits.ICD_PREFIXES_PER_DISEASE_MAX} prefixes")
    prefixes = []
    for index, code in enumerate(raw):
        if not isinstance(code, str) or not ICD_PREFIX.fullmatch(code.strip().upper()):
            raise InvalidField(f"{where}[{index}]", "must be an ICD-10 prefix such as \"E11\" or \"N18.5\"")
        prefixes.append(code.strip().upper().replace(".", ""))
    return tuple(prefixes)


def check_keys(table: dict[str, Any], where: str, required: set[str], optional: set[str]) -> None:
    prefix = f"{where}." if where else ""
    for key in sorted(table):
        if key not in required | optional:
            raise InvalidField(f"{prefix}{key}", "unknown key")
    for key in sorted(required):
        if key not in table:
            raise InvalidField(f"{prefix}{key}", "is required")


def table_at(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent[key]
    if not isinstance(value, dict):
        raise InvalidField(where, "must be a table")
    return value


def amount(value: Any, where: str) -> int:
    """A non-negative integer amount in fen."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(where, "must be an integer number of fen")
    if value < 0:
        raise InvalidField(where, "must not be negative")
    if value > AMOUNT_FEN_MAX:
        raise InvalidField(where, f"must not exceed {AMOUNT_FEN_MAX}")
    return value


def ratio(value: Any, where: str) -> int:
    """An integer ratio in basis points, 0..10000."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(where, "must be an integer number of basis points")
    if not 0 <= value <= BP_WHOLE:
        raise InvalidField(where, "must be between 0 and 10000 basis points")
    return value


def by_level(raw: Any, where: str, parse) -> dict[int, int]:  # noqa: ANN001 - parse is amount or ratio
    """A table keyed by hospital level "1", "2", "3"."""
    if not isinstance(raw, dict):
        raise InvalidField(where, 'must be a table with keys "1", "2", "3"')
    check_keys(raw, where, required={str(level) for level in HOSPITAL_LEVELS}, optional=set())
    return {level: parse(raw[str(level)], f"{where}.{level}") for level in HOSPITAL_LEVELS}


def check_band_order(uptos: list[int | None], where: str) -> None:
    """Every band but the last ends at an `upto_fen`, strictly increasing; the last is open."""
    if len(uptos) > limits.BANDS_MAX:
        raise InvalidField(where, f"must have at most {limits.BANDS_MAX} bands")
    previous = 0
    for index, upto in enumerate(uptos):
        is_last = index == len(uptos) - 1
        if is_last and upto is not None:
            raise InvalidField(f"{where}[{index}].upto_fen", "the last band must be open (omit upto_fen)")
        if not is_last:
            if upto is None:
                raise InvalidField(f"{where}[{index}].upto_fen", "is required on every band but the last")
            if upto <= previous:
                raise InvalidField(f"{where}[{index}].upto_fen", "must be greater than the previous band's")
            previous = upto


@dataclass(frozen=True)
class PolicyBook:
    """Every version of one region's policy; `on(day)` picks the one in force."""

    region: str
    versions: tuple[Policy, ...]

    def __post_init__(self) -> None:
        assert self.versions, "a policy book has at least one version"
        assert all(policy.region == self.region for policy in self.versions)
        dates = [policy.effective_from for policy in self.versions]
        assert dates == sorted(dates) and len(set(dates)) == len(dates)

    @classmethod
    def of(cls, policies: list[Policy]) -> PolicyBook:
        """Build a book, refusing mixed regions or two versions with the same effective date."""
        if not policies:
            raise InvalidField("policies", "at least one policy is needed")
        region = policies[0].region
        for policy in policies:
            if policy.region != region:
                raise InvalidField("region", f"{policy.region} mixed with {region}")
        ordered = sorted(policies, key=lambda policy: policy.effective_from)
        for earlier, later in zip(ordered, ordered[1:]):
            if earlier.effective_from == later.effective_from:
                raise InvalidField("effective_from", f"two versions take effect on {later.effective_from}")
        return cls(region, tuple(ordered))

    def on(self, day: date, field: str = "discharged_on") -> Policy:
        """The version in force on `day`; a day before the first version is a precondition failure naming `field`
        (a stay's `discharged_on`, a visit's `visit_on`)."""
        in_force = [policy for policy in self.versions if policy.effective_from <= day]
        if not in_force:
            raise PreconditionFailed(
                field, f"{day} is before the first {self.region} policy ({self.versions[0].effective_from})",
            )
        return in_force[-1]
