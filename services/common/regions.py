"""The deployment's reference configuration: regions and their hospitals, policies, agreements.

Files live in `services/regions/` (see its README); this module reads them and hands values to
the core's parsers, so every error still names the file and key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from clearing.bill import check_hospital_code, check_hospital_level, check_region
from clearing.errors import InvalidField
from clearing.policy import PolicyBook, parse_policy
from clearing.translate import Agreements, parse_agreements

REGIONS_DIR = Path(__file__).resolve().parent.parent / "regions"


@dataclass(frozen=True, slots=True)
class Hospital:
    code: str
    name: str
    level: int


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    province_code: str
    hospitals: tuple[Hospital, ...]


def load_regions(directory: Path = REGIONS_DIR) -> dict[str, Region]:
    document = tomllib.loads((directory / "regions.toml").read_text(encoding="utf-8"))
    regions: dict[str, Region] = {}
    for index, table in enumerate(document.get("regions", [])):
        where = f"regions[{index}]"
        hospitals = tuple(
            Hospital(check_hospital_code(item["code"], f"{where}.hospitals[{position}].code"), item["name"],
                     check_hospital_level(item["level"], f"{where}.hospitals[{position}].level"))
            for position, item in enumerate(table.get("hospitals", []))
        )
        region = Region(check_region(table["code"], f"{where}.code"), table["name"],
                        check_region(table["province_code"], f"{where}.province_code"), hospitals)
        regions[region.code] = region
    return regions


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
