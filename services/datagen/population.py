"""Seeded generator of an insured region's members in the SPEC §5.3 M.json shape.

`generate_members(region, count, seed)` is deterministic: it owns
`random.Random(f"{region}:members:{seed}")` and computes ages against the fixed date
`AGES_AS_OF` (never the clock). Shares, chosen to look like cross-region inpatients
(illustrative, not statistics):

* scheme: 50 % employee (职工), 50 % resident (城乡居民) — employees are over-represented among
  people treated away from home compared with the whole insured population;
* retired: 40 % of employees (so ~20 % of members); residents are never "retired";
* poverty-registered (脱贫/监测人口): 9 % of residents (~4.5 % of members);
* assistance tier (医疗救助): 25 % of poverty-registered residents and 3.5 % of the other
  residents (~3 % of members), split tekun 特困 2 : dibao 低保 5 : dishouru 低收入 3;
* filing (异地备案): resident 40 %, referral 25 %, temporary 20 %, unfiled 15 %;
* ages: employees 22–59 (retired 55–92), residents 0–90 weighted to children and the old;
* year-to-date accumulators all zero (the first stay of the year).

Besides the M.json keys each member has `id_number` (synthetic, well-formed, see
`identity.py`) and `name`; both are personal data to the services (SPEC §9).
`member_id` is `M` + region + 8-digit serial, unique within a region from `first_serial`.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from services.datagen.identity import address_codes, make_id_number, make_name

AGES_AS_OF = date(2026, 1, 1)
SCHEMES = ("employee", "resident")
FILINGS = ("resident", "referral", "temporary", "unfiled")
ASSISTANCE_TIERS = ("tekun", "dibao", "dishouru")
YTD_KEYS = (
    "deductible_fen",
    "eligible_fen",
    "hifp_fen",
    "burden_fen",
    "hifmi_fen",
    "assist_base_fen",
    "maf_fen",
    "admissions",
)
_RESIDENT_AGE_BANDS = ((0, 14), (15, 44), (45, 64), (65, 90))
_RESIDENT_AGE_WEIGHTS = (20, 20, 25, 35)
_ID_ATTEMPTS_MAX = 100


def _age(rng: random.Random, scheme: str, retired: bool) -> int:
    if scheme == "employee":
        return rng.randint(55, 92) if retired else rng.randint(22, 59)
    low, high = rng.choices(_RESIDENT_AGE_BANDS, weights=_RESIDENT_AGE_WEIGHTS)[0]
    return rng.randint(low, high)


def _birth_on(rng: random.Random, age: int) -> date:
    """A birth date at which the member is `age` years old on AGES_AS_OF."""
    latest = date(AGES_AS_OF.year - age, AGES_AS_OF.month, AGES_AS_OF.day)
    earliest = date(AGES_AS_OF.year - age - 1, AGES_AS_OF.month, AGES_AS_OF.day) + timedelta(days=1)
    return earliest + timedelta(days=rng.randint(0, (latest - earliest).days))


def _assistance(rng: random.Random, scheme: str, poverty: bool) -> str | None:
    if scheme != "resident":
        return None
    if rng.random() >= (0.25 if poverty else 0.035):
        return None
    return rng.choices(ASSISTANCE_TIERS, weights=(2, 5, 3))[0]


def _unique_id_number(
    rng: random.Random, region_codes: tuple[str, ...], birth_on: date, male: bool, seen: set[str]
) -> str:
    for _ in range(_ID_ATTEMPTS_MAX):  # bounded: 500 sequence numbers per address and day
        id_number = make_id_number(rng, rng.choice(region_codes), birth_on, male)
        if id_number not in seen:
            seen.add(id_number)
            return id_number
    raise RuntimeError("could not draw a unique ID number; the population is too dense for one birth date")


def generate_members(region: str, count: int, seed: int, *, first_serial: int = 1) -> list[dict[str, Any]]:
    """`count` members of insured region `region` (参保人) in M.json shape plus id_number and name."""
    if len(region) != 6 or not region.isdigit():
        raise ValueError(f"region must be a 6-digit code, got {region!r}")
    if count < 0 or first_serial < 1:
        raise ValueError("count must be >= 0 and first_serial >= 1")
    rng = random.Random(f"{region}:members:{seed}")
    region_codes = address_codes(region)
    seen: set[str] = set()
    members: list[dict[str, Any]] = []
    for serial in range(first_serial, first_serial + count):
        scheme = "employee" if rng.random() < 0.5 else "resident"
        retired = scheme == "employee" and rng.random() < 0.4
        poverty = scheme == "resident" and rng.random() < 0.09
        assistance = _assistance(rng, scheme, poverty)
        filing = rng.choices(FILINGS, weights=(40, 25, 20, 15))[0]
        male = rng.random() < 0.5
        birth_on = _birth_on(rng, _age(rng, scheme, retired))
        members.append(
            {
                "region": region,
                "member_id": f"M{region}{serial:08d}",
                "scheme": scheme,
                "retired": retired,
                "poverty": poverty,
                "assistance": assistance,
                "filing": filing,
                "ytd": dict.fromkeys(YTD_KEYS, 0),
                "id_number": _unique_id_number(rng, region_codes, birth_on, male, seen),
                "name": make_name(rng, male),
            }
        )
    return members
