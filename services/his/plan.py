"""Who is discharged where: a deterministic plan of discharges for a seed (no I/O).

Most patients are treated in another region (the product's whole point); a share are local.
Request ids are UUID5s of the run and the discharge number, so re-running the same run replays
the same requests and settles nothing twice.
"""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass, replace
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


OVERLAP_PCT = 1  # of a run's stays deliberately given to a member who is in hospital then (the odd overlap)


def plan_run(seed: int, count: int, regions: dict[str, Region], members_per_region: int, month_start: date,
             treating_region: str | None = None, local_share_pct: int = LOCAL_SHARE_PCT,
             earlier: dict[tuple[str, int], list[tuple[date, date]]] | None = None) -> list[Discharge]:
    """The discharges of a run, each as `plan_discharge` draws it but for its member: one of the insured region's
    members who is not in hospital during the stay (a member is rarely in two hospitals at once, and smart audit
    blocks it: AUD-OVERLAP), but for OVERLAP_PCT of the stays, on purpose. A member's stays can still follow each
    other closely (a quick readmission, AUD-READMIT, when the diagnoses agree). `earlier`: the stays (admission,
    discharge) members have already, by (insured region, member index), from other runs. Deterministic for the
    seed and `earlier`."""
    from services.datagen.bills import stay_nights  # the bill decides the nights; the plan keeps stays apart

    rng = random.Random(f"members:{seed}:{count}")
    stays: dict[tuple[str, int], list[tuple[date, date]]] = {key: list(value) for key, value in (earlier or {}).items()}
    planned = []
    for index in range(count):
        plan = plan_discharge(seed, index, regions, members_per_region, month_start, treating_region, local_share_pct)
        admitted = plan.admitted_on
        discharged = date.fromordinal(admitted.toordinal() + stay_nights(
            plan.bill_seed, plan.treating_region, plan.hospital_code, admitted))
        overlap = rng.randrange(100) < OVERLAP_PCT
        # The drawn member first, then every other one from a random place on: the first that suits (none: the
        # drawn member, whatever its stays).
        start = rng.randrange(members_per_region)
        member = plan.member_index
        for candidate in itertools.chain([plan.member_index], ((start + step) % members_per_region
                                                               for step in range(members_per_region))):
            taken = stays.get((plan.insured_region, candidate), [])
            busy = any(admitted < other_out and other_in < discharged for other_in, other_out in taken)
            if busy == overlap and (taken or not overlap):
                member = candidate
                break
        stays.setdefault((plan.insured_region, member), []).append((admitted, discharged))
        planned.append(replace(plan, member_index=member))
    return planned


def request_id(run_request_id: str, index: int, step: str) -> str:
    """A stable request id for step `step` of discharge `index` of a run."""
    return str(uuid.uuid5(uuid.UUID(run_request_id), f"{index}:{step}"))
