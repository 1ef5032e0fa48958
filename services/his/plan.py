"""Who is discharged where: a deterministic plan of discharges for a seed (no I/O).

Most patients are treated in another region (the product's whole point); a share are local.
Request ids are UUID5s of the run and the discharge number, so re-running the same run replays
the same requests and settles nothing twice.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date

from services.common.regions import Region

LOCAL_SHARE_PCT = 15
ADMISSION_DAYS_SPREAD = 14


@dataclass(frozen=True, slots=True)
class Discharge:
    index: int
    treating_region: str
    hospital_code: str
    hospital_level: int
    insured_region: str
    member_index: int
    admitted_on: date
    bill_seed: int


def plan_discharge(seed: int, index: int, regions: dict[str, Region], members_per_region: int, month_start: date,
                   treating_region: str | None = None, local_share_pct: int = LOCAL_SHARE_PCT) -> Discharge:
    """Discharge `index` of a run; with `treating_region`, always at one of that region's hospitals.
    `local_share_pct` of discharges are of a member of the treating region (the load harness asks for 20)."""
    assert 0 <= local_share_pct <= 100
    rng = random.Random(f"discharge:{seed}:{index}")
    codes = sorted(regions)
    treating = rng.choice(codes)
    if treating_region is not None:
        treating = treating_region
    if rng.randrange(100) < local_share_pct:
        insured = treating
    else:
        insured = rng.choice([code for code in codes if code != treating])
    hospital = rng.choice(regions[treating].hospitals)
    admitted_on = date.fromordinal(month_start.toordinal() + rng.randrange(ADMISSION_DAYS_SPREAD))
    return Discharge(index, treating, hospital.code, hospital.level, insured, rng.randrange(members_per_region),
                     admitted_on, rng.randrange(2**31))


def request_id(run_request_id: str, index: int, step: str) -> str:
    """A stable request id for step `step` of discharge `index` of a run."""
    return str(uuid.uuid5(uuid.UUID(run_request_id), f"{index}:{step}"))
