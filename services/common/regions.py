"""The deployment's reference configuration: regions and their hospitals, policies, agreements.

Files live in `services/regions/` (see its README); this module reads them and hands values to
the core's parsers, so every error still names the file and key.
"""

from __future__ import annotations

import re
import tomllib
import functools
from dataclasses import dataclass
from pathlib import Path

from clearing.errors import InvalidField
from clearing.hospital_payment import PaymentParams, parse_payment_params
from clearing.policy import PolicyBook, parse_policy
from clearing.translate import Agreements, parse_agreements

REGIONS_DIR = Path(__file__).resolve().parents[1] / "regions"
REGIONS_FILE = REGIONS_DIR / "regions.toml"
PAYMENT_DIR = "payment"  # services/regions/payment/<region>.toml: the [hospital_payment] section (issue 13)
_REGION_RE = re.compile(r"^\d{6}$")
_HOSPITAL_RE = re.compile(r"^H\d{11}$")


@dataclass(frozen=True, slots=True)
class Hospital:
    """A designated hospital (定点医疗机构) of a region."""

    code: str
    name: str
    level: int


@dataclass(frozen=True, slots=True)
class Region:
    """A pooling region (统筹地区) with its designated hospitals."""

    code: str
    name: str
    province_code: str
    hospitals: tuple[Hospital, ...]
    name_latin: str = ""  # pinyin, for charts whose fonts lack Chinese glyphs


def chart_label(code: str) -> str:
    """A region on a chart's axis: its pinyin name over its code (the code alone for a region not configured)."""
    region = load_regions().get(code)
    return f"{region.name_latin}\n{code}" if region is not None and region.name_latin else code


def _hospital(region_code: str, raw: dict[str, object], where: str) -> Hospital:
    code, name, level = raw.get("code"), raw.get("name"), raw.get("level")
    if not isinstance(code, str) or not _HOSPITAL_RE.match(code) or code[1:7] != region_code:
        raise ValueError(f"{where}.code: must be H + the region code + 5 digits, got {code!r}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}.name: must be a non-empty string")
    if level not in (1, 2, 3) or isinstance(level, bool):
        raise ValueError(f"{where}.level: must be 1, 2 or 3, got {level!r}")
    return Hospital(code=code, name=name, level=level)


def _region(raw: dict[str, object], where: str) -> Region:
    code, name, province_code = raw.get("code"), raw.get("name"), raw.get("province_code")
    name_latin = raw.get("name_latin", "")
    if not isinstance(name_latin, str) or not name_latin.isascii():
        raise ValueError(f"{where}.name_latin: must be ASCII (pinyin), got {name_latin!r}")
    if not isinstance(code, str) or not _REGION_RE.match(code):
        raise ValueError(f"{where}.code: must be a 6-digit region code, got {code!r}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}.name: must be a non-empty string")
    if province_code != code[:2] + "0000":
        raise ValueError(f"{where}.province_code: must be {code[:2]}0000, got {province_code!r}")
    raw_hospitals = raw.get("hospitals")
    if not isinstance(raw_hospitals, list) or not raw_hospitals:
        raise ValueError(f"{where}.hospitals: at least one hospital is required")
    hospitals = tuple(_hospital(code, h, f"{where}.hospitals[{i}]") for i, h in enumerate(raw_hospitals))
    return Region(code=code, name=name, province_code=province_code, hospitals=hospitals, name_latin=name_latin)


def load_region_list(path: str | Path = REGIONS_FILE) -> tuple[Region, ...]:
    """The regions in file order; ValueError naming the key for a malformed file."""
    with Path(path).open("rb") as handle:
        document = tomllib.load(handle)
    raw_regions = document.get("regions")
    if not isinstance(raw_regions, list) or not raw_regions:
        raise ValueError("regions: at least one [[regions]] table is required")
    regions = tuple(_region(raw, f"regions[{i}]") for i, raw in enumerate(raw_regions))
    codes = [r.code for r in regions]
    if len(set(codes)) != len(codes):
        raise ValueError("regions: a region code appears twice")
    hospital_codes = [h.code for r in regions for h in r.hospitals]
    if len(set(hospital_codes)) != len(hospital_codes):
        raise ValueError("regions: a hospital code appears twice")
    return regions


def demo_region_codes() -> tuple[str, ...]:
    """The 6-digit codes of the demo regions, in file order."""
    return tuple(region.code for region in load_region_list())


@functools.cache
def load_regions(directory: Path = REGIONS_DIR) -> dict[str, Region]:
    """The regions by code."""
    return {region.code: region for region in load_region_list(directory / "regions.toml")}


def load_policy_book(region: str, directory: Path = REGIONS_DIR) -> PolicyBook:
    """Every policy version of `region` in `policies/`; errors name the file and the key."""
    policies = []
    for path in sorted((directory / "policies").glob(f"{region}_*.toml")):
        try:
            policies.append(parse_policy(path.read_text(encoding="utf-8")))
        except InvalidField as error:
            raise InvalidField(f"{path.name}: {error.field}", error.reason) from None
    if not policies:
        raise InvalidField("region", f"no policy file for region {region}")
    return PolicyBook.of(policies)


def load_agreements(directory: Path = REGIONS_DIR) -> Agreements:
    return parse_agreements((directory / "agreements.toml").read_text(encoding="utf-8"))


def check_payment_params(params: PaymentParams, region: Region, where: str = "hospital_payment") -> PaymentParams:
    """The parameters' hospitals must be the region's own: a 总额预付 budget for another region's hospital is a typo."""
    own = {hospital.code for hospital in region.hospitals}
    for index, hospital in enumerate(params.global_budgets):
        if hospital not in own:
            raise InvalidField(f"{where}.global_budgets[{index}].hospital",
                               f"{hospital} is not a designated hospital of region {region.code}")
    return params


def parse_region_payment_params(text: str, region: Region | None, name: str) -> PaymentParams:
    """Parse one payment file's text; errors name the file (`name`) and the key."""
    try:
        params = parse_payment_params(text)
        return params if region is None else check_payment_params(params, region)
    except InvalidField as error:
        raise InvalidField(f"{name}: {error.field}", error.reason) from None


def load_payment_params(region: str, directory: Path = REGIONS_DIR) -> PaymentParams:
    """The treating region's hospital-payment parameters, `payment/<region>.toml`; errors name the file and key."""
    regions = load_regions(directory)
    if region not in regions:
        raise InvalidField("region", f"{region} is not a configured region")
    path = directory / PAYMENT_DIR / f"{region}.toml"
    if not path.is_file():
        raise InvalidField("region", f"region {region} has no hospital-payment file {PAYMENT_DIR}/{region}.toml")
    return parse_region_payment_params(path.read_text(encoding="utf-8"), regions[region], path.name)
