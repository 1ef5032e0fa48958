"""What the load harness discharges: a pool of ready-made discharges (templates), built before the clock starts.

A template is one planned discharge (services/his/plan.py, with 20 % of members local to the treating region, so
80 % cross-region) and its bill, already turned into the three kinds of request a HIS sends — Admit, UploadCharges
in batches of 25 lines (as services/his/servicer.py) and Settle — with every id left empty. A discharge copies
its template and fills in fresh request ids, so the measured window spends no CPU on generating bills (about
5 ms each, which at 300 discharges/s would be one of the machine's two cores). Templates repeat during a run; each
repetition is a new encounter with new ids, so nothing replays.

**Bills of about 50 lines.** `generate_bill` makes 10–60 lines, 32 on average; a template draws its line count
uniformly from `lines_mean ± LINES_SPREAD` and, when the stay's own bill is shorter, adds the lines of further
generated bills of the same hospital and admission day (up to EXTRA_BILLS_MAX of them) whose service day lies
within the stay, then orders the lines by service day and numbers them 1, 2, … again. The extra lines are
realistic items of the same catalogue and dates; `generate_bill`'s output for other callers does not change.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

from services.common.regions import Region
from services.datagen.bills import CatalogueIndex, generate_bill
from services.datagen.catalogue import generate_catalogue_rows
from services.datagen.population import generate_members
from services.his.plan import plan_discharge

LOCAL_SHARE_PCT = 20  # the mix: 80 % of discharges are of a member insured in another region
UPLOAD_BATCH_LINES = 25  # as the HIS simulator uploads
LINES_SPREAD = 15
LINES_MIN = 10
EXTRA_BILLS_MAX = 4


@dataclass(frozen=True)
class Template:
    """One discharge's requests with empty ids; `index` is its number in the pool."""

    index: int
    treating_region: str
    insured_region: str
    hospital_code: str
    admit: ta.AdmitRequest
    uploads: tuple[ta.UploadChargesRequest, ...]
    settle: ta.SettleRequest

    @property
    def local(self) -> bool:
        return self.treating_region == self.insured_region

    @property
    def line_count(self) -> int:
        return sum(len(upload.lines) for upload in self.uploads)


def long_bill(seed: int, index: CatalogueIndex, treating_region: str, hospital_code: str, hospital_level: int,
              admitted_on: date, lines_target: int) -> dict:
    """`generate_bill` of the stay, topped up with the in-stay lines of further bills of the same hospital and
    day until it has `lines_target` lines (or EXTRA_BILLS_MAX bills were used); lines renumbered in day order."""
    bill = generate_bill(seed, index, treating_region, hospital_code, hospital_level, admitted_on)
    lines = list(bill["lines"])
    last_day = bill["discharged_on"]
    for extra in range(1, EXTRA_BILLS_MAX + 1):
        if len(lines) >= lines_target:
            break
        other = generate_bill(random.Random(f"loadtest-extra:{seed}:{extra}"), index, treating_region, hospital_code,
                              hospital_level, admitted_on)
        fitting = [line for line in other["lines"] if line["service_date"] <= last_day]  # ISO dates sort as text
        lines.extend(fitting[:lines_target - len(lines)])
    lines = lines[:max(lines_target, LINES_MIN)]
    lines.sort(key=lambda line: line["service_date"])  # stable: each bill's own order within a day is kept
    bill["lines"] = [{**line, "line_id": str(number)} for number, line in enumerate(lines, start=1)]
    return bill


def template_for(seed: int, number: int, regions: dict[str, Region], members: dict[str, list[dict]],
                 catalogues: dict[str, CatalogueIndex], month_start: date, lines_mean: int) -> Template:
    members_per_region = min(len(listed) for listed in members.values())
    plan = plan_discharge(seed, number, regions, members_per_region, month_start, local_share_pct=LOCAL_SHARE_PCT)
    lines_target = random.Random(f"loadtest-lines:{seed}:{number}").randint(
        max(LINES_MIN, lines_mean - LINES_SPREAD), lines_mean + LINES_SPREAD)
    bill = long_bill(plan.bill_seed, catalogues[plan.treating_region], plan.treating_region, plan.hospital_code,
                     plan.hospital_level, plan.admitted_on, lines_target)
    member = members[plan.insured_region][plan.member_index]
    admit = ta.AdmitRequest(
        hospital_code=plan.hospital_code, admitted_on=bill["admitted_on"], emergency=bill["emergency"],
        diagnoses=bill["diagnoses"],
        patient=ta.Patient(insured_region=plan.insured_region, member_id=member["member_id"],
                           id_number=member["id_number"], name=member["name"]))
    lines = [types_pb2.BillLine(line_id=line["line_id"], code=line["code"], qty=line["qty"],
                                unit_price_fen=line["unit_price_fen"], amount_fen=line["amount_fen"],
                                service_date=line["service_date"]) for line in bill["lines"]]
    uploads = tuple(ta.UploadChargesRequest(lines=lines[start:start + UPLOAD_BATCH_LINES])
                    for start in range(0, len(lines), UPLOAD_BATCH_LINES))
    return Template(number, plan.treating_region, plan.insured_region, plan.hospital_code, admit, uploads,
                    ta.SettleRequest(discharged_on=bill["discharged_on"]))


def make_templates(seed: int, count: int, regions: dict[str, Region], members_per_region: int, month_start: date,
                   lines_mean: int, first: int = 0) -> list[Template]:
    """Templates `first` … `first + count - 1` of a seed: the same seed gives the same discharges. Members are the
    ones `enrol_all` registers for `seed` and `members_per_region`."""
    assert count >= 1 and members_per_region >= 1 and lines_mean >= LINES_MIN
    members = {code: generate_members(code, members_per_region, seed) for code in sorted(regions)}
    catalogues = {code: CatalogueIndex(generate_catalogue_rows(code, seed)) for code in sorted(regions)}
    return [template_for(seed, number, regions, members, catalogues, month_start, lines_mean)
            for number in range(first, first + count)]
