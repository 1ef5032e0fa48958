"""The harness as the hospitals' HIS: concurrent discharges (admit 2201 → upload 2301 → settle 2304)
straight on TreatingAgencyService, through the proxies, journaling what the HIS saw.

Which discharges happen is the seed's (services/his/plan.py: treating and insured region, hospital,
member, bill); request ids are UUID5s of the seed and the discharge number. Settle carries a short
deadline; an unknown answer is retried with the same request id a few times while the run goes on,
and whatever is still unknown when the faults stop is resolved by `settle_down` on clean links.
A small seeded share of successful settlements is cancelled (撤销 2305).

Each hospital settles as itself: the driver dials every treating agency once per hospital of its region, with
that hospital's certificate (mutual TLS through the proxies, which forward TCP).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import grpc
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import treating_agency_pb2_grpc, types_pb2

from services.common import convert
from services.common.clock import shanghai_today
from services.common.status_text import domain_error_from_status
from services.common.regions import Region
from services.datagen.bills import CatalogueIndex, generate_bill
from services.datagen.catalogue import generate_catalogue_rows
from services.datagen.population import generate_members
from services.datagen.visits import SpecialPatient, special_patients, visit_days, visit_lines
from services.faults.journal import DEFINITE_CODES, Entry, Intent, Journal, Outcome, Split
from clearing.smart_audit.report import member_facts_from_id_number
from services.his.plan import Discharge, plan_discharge, request_id
from services.security.identity import hospital
from services.security.party import CHANNEL_OPTIONS, Transport

RUN_NAMESPACE = uuid.UUID("0b8f3f0e-6c55-4d1e-9a57-3c2f1d4e5a61")
UPLOAD_BATCH_LINES = 25
# The harness's own channels reconnect quickly after a restart, so a kill costs the HIS seconds, not
# the default backoff's minutes; the services keep their own channel settings.
HIS_CHANNEL_OPTIONS = (*CHANNEL_OPTIONS, ("grpc.initial_reconnect_backoff_ms", 100),
                       ("grpc.max_reconnect_backoff_ms", 1000))

# A reversal (冲正 2601) by the original request id: returns REVERSED (or FAILED when refused
# definitely) or UNKNOWN (services/faults/recovery.py).
Reverser = Callable[[treating_agency_pb2_grpc.TreatingAgencyServiceStub, Entry, float], Awaitable[Outcome]]


@dataclass(frozen=True)
class DriverSettings:
    concurrency: int = 12
    month: str = "2026-05"  # admissions fall in this month's first two weeks
    settle_deadline_s: float = 2.0
    call_deadline_s: float = 5.0
    settle_retries_in_run: int = 3  # after the first attempt, while faults go on
    step_attempts_max: int = 8  # admit / upload: idempotent, retried until definite or this many
    cancel_share_bp: int = 500  # 5 % of succeeded settlements are cancelled
    reverse_share_bp: int = 2500  # share of still-unknown settlements reversed (冲正) instead of resent
    # Share of still-unknown settlements the HIS never resends: they stay unknown to it and their
    # fate is reconciliation's to settle.
    abandon_share_bp: int = 1000
    # Share of the discharge numbers that are outpatient special-disease visits (门诊慢特病) of the members enrolment
    # recognised, settled by the same Settle / Cancel / Reverse as a stay (RegisterVisit opens them).
    visit_share_bp: int = 2000
    settle_down_attempts_max: int = 30
    settle_down_deadline_s: float = 10.0


@dataclass
class Answer:
    """One call's result as the HIS classifies it."""

    kind: str  # "ok", "failed", "unknown"
    response: Any = None
    error: str = ""


@dataclass
class DriverCounts:
    discharges: int = 0
    abandoned: int = 0  # admit or upload never went through: no settlement was requested
    visits: int = 0  # of the discharges, outpatient special-disease visits (门诊慢特病)


class Driver:
    def __init__(self, seed: int, regions: dict[str, Region], members_per_region: int,
                 treating_addresses: dict[str, str], journal: Journal, settings: DriverSettings = DriverSettings(),  # noqa: B008
                 reverser: Reverser | None = None, *, transport: Transport) -> None:
        self.seed = seed
        self.regions = regions
        self.members_per_region = members_per_region
        self.treating_addresses = treating_addresses
        self.journal = journal
        self.settings = settings
        self.reverser = reverser
        self.transport = transport
        self.run_id = str(uuid.uuid5(RUN_NAMESPACE, f"simulate:{seed}"))
        self.month_start = date.fromisoformat(f"{settings.month}-01")
        self.counts = DriverCounts()
        self.channels: dict[str, grpc.aio.Channel] = {}
        # One per hospital code: a channel to its region's treating agency with that hospital's certificate.
        self.stubs: dict[str, treating_agency_pb2_grpc.TreatingAgencyServiceStub] = {}

    async def __aenter__(self) -> Driver:
        for region, address in self.treating_addresses.items():
            for item in self.regions[region].hospitals:
                self.channels[item.code] = self.transport.channel(address, hospital(item.code), HIS_CHANNEL_OPTIONS)
                self.stubs[item.code] = treating_agency_pb2_grpc.TreatingAgencyServiceStub(self.channels[item.code])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for channel in self.channels.values():
            await channel.close()

    @functools.cache  # noqa: B019 - one driver per run, a handful of regions
    def catalogue(self, region: str) -> CatalogueIndex:
        return CatalogueIndex(self.catalogue_rows(region))

    @functools.cache  # noqa: B019
    def catalogue_rows(self, region: str) -> list[dict[str, str]]:
        return generate_catalogue_rows(region, self.seed)

    @functools.cache  # noqa: B019
    def members(self, region: str) -> list[dict]:
        return generate_members(region, self.members_per_region, self.seed)

    # -- the run ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """`concurrency` workers take discharge numbers 0, 1, 2, … until `stop` is set; each finishes
        the discharge it is on (with its in-run retries) before it stops."""
        numbers = itertools.count()

        async def worker() -> None:
            while not stop.is_set():
                await self.discharge(next(numbers))

        await asyncio.gather(*(worker() for _ in range(self.settings.concurrency)))

    async def discharge(self, index: int) -> None:
        plan = plan_discharge(self.seed, index, self.regions, self.members_per_region, self.month_start)
        decisions = random.Random(f"his-decisions:{self.seed}:{index}")
        cancel_it = decisions.randrange(10_000) < self.settings.cancel_share_bp
        reverse_if_unknown = decisions.randrange(10_000) < self.settings.reverse_share_bp
        abandon_if_unknown = decisions.randrange(10_000) < self.settings.abandon_share_bp
        jitter = random.Random(f"his-jitter:{self.seed}:{index}")
        self.counts.discharges += 1
        visit = self.visit_of(index) if decisions.randrange(10_000) < self.settings.visit_share_bp else None
        if visit is not None:  # an outpatient special-disease visit: its day is its "discharge"
            patient, day = visit
            self.counts.visits += 1
            member = self.members(patient.insured_region)[patient.member_index]
            codes = sorted(item.code for item in self.regions[patient.treating_region].hospitals)
            plan = Discharge(index, patient.treating_region, codes[patient.hospital_index % len(codes)], 0,
                             patient.insured_region, patient.member_index, day, patient.seed)
            stub = self.stubs[plan.hospital_code]
            encounter_id = await self.open_visit(stub, plan, patient, member, jitter)
            discharged_on, procedures, discharge_status = day.isoformat(), (), ""  # a visit has no 病案首页 facts
        else:
            member = self.members(plan.insured_region)[plan.member_index]
            bill = generate_bill(plan.bill_seed, self.catalogue(plan.treating_region), plan.treating_region,
                                 plan.hospital_code, plan.hospital_level, plan.admitted_on,
                                 patient=member_facts_from_id_number(member["id_number"]))  # as the HIS simulator
            stub = self.stubs[plan.hospital_code]  # the hospital settles as itself
            encounter_id = await self.open_encounter(stub, plan, member, bill, jitter)
            discharged_on = bill["discharged_on"]
            procedures, discharge_status = tuple(bill["procedures"]), bill["discharge_status"]
        if encounter_id is None:
            self.counts.abandoned += 1
            return
        entry = self.journal.add(Entry(
            request_id=request_id(self.run_id, index, "settle"), index=index, treating_region=plan.treating_region,
            insured_region=plan.insured_region, hospital_code=plan.hospital_code, member_id=member["member_id"],
            encounter_id=encounter_id, discharged_on=discharged_on, procedures=procedures,
            discharge_status=discharge_status))
        await self.settle(stub, entry, 1 + self.settings.settle_retries_in_run, self.settings.settle_deadline_s,
                          jitter)
        if entry.outcome is Outcome.UNKNOWN and reverse_if_unknown and self.reverser is not None:
            # 冲正 2601: instead of resending, this HIS reverses the settlement it is unsure of.
            entry.intent = Intent.REVERSE
            entry.outcome = await self.reverser(stub, entry, self.settings.call_deadline_s)
        elif entry.outcome is Outcome.UNKNOWN and abandon_if_unknown:
            entry.intent = Intent.ABANDON  # the HIS walks away; reconciliation must find it
        if entry.outcome is Outcome.SUCCEEDED and cancel_it:
            entry.cancel_request_id = request_id(self.run_id, index, "cancel")
            await self.cancel(stub, entry, 1 + self.settings.settle_retries_in_run, self.settings.call_deadline_s,
                              jitter)

    @functools.cached_property
    def patients(self) -> list[SpecialPatient]:
        """The members enrolment recognised (services/datagen/visits.py), treated at a hospital of this run."""
        treating = sorted(self.treating_addresses)
        return [patient for region in sorted(self.regions) if region in self.treating_addresses
                for patient in special_patients(region, self.members_per_region, self.seed, treating)]

    def visit_of(self, index: int) -> tuple[SpecialPatient, date] | None:
        """Discharge number `index` as a visit: a recognised patient and one of their visit days of the run's month
        (None when nobody is recognised, or the patient has no visit day that month)."""
        if not self.patients:
            return None
        rng = random.Random(f"his-visit:{self.seed}:{index}")
        patient = rng.choice(self.patients)
        end = (self.month_start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        days = visit_days(patient, self.month_start, min(end, shanghai_today()))
        return (patient, rng.choice(days)) if days else None

    async def open_visit(self, stub: treating_agency_pb2_grpc.TreatingAgencyServiceStub, plan: Discharge,
                         patient: SpecialPatient, member: dict, jitter: random.Random) -> str | None:
        """RegisterVisit and upload the visit's lines, each retried until definite; None when a step never is."""
        attempts = self.settings.step_attempts_max
        lines = visit_lines(patient, plan.admitted_on, self.catalogue_rows(plan.treating_region))
        if not lines:
            return None
        registered = await self.call_until_definite(stub.RegisterVisit, ta.RegisterVisitRequest(
            request_id=request_id(self.run_id, plan.index, "visit"), hospital_code=plan.hospital_code,
            visit_on=plan.admitted_on.isoformat(), disease=convert.SPECIAL_DISEASES[patient.disease.value],
            patient=ta.Patient(insured_region=plan.insured_region, member_id=member["member_id"],
                               id_number=member["id_number"], name=member["name"])),
            attempts, self.settings.call_deadline_s, jitter)
        if registered.kind != "ok":
            return None
        uploaded = await self.call_until_definite(stub.UploadCharges, ta.UploadChargesRequest(
            request_id=request_id(self.run_id, plan.index, "visit:upload"),
            encounter_id=registered.response.encounter_id, lines=[types_pb2.BillLine(**line) for line in lines]),
            attempts, self.settings.call_deadline_s, jitter)
        return registered.response.encounter_id if uploaded.kind == "ok" else None

    async def open_encounter(self, stub: treating_agency_pb2_grpc.TreatingAgencyServiceStub, plan: Discharge,
                             member: dict, bill: dict, jitter: random.Random) -> str | None:
        """Admit and upload the bill in batches, each retried with its own request id until it goes
        through; None when a step never does (no settlement is requested then)."""
        attempts = self.settings.step_attempts_max
        admitted = await self.call_until_definite(stub.Admit, ta.AdmitRequest(
            request_id=request_id(self.run_id, plan.index, "admit"), hospital_code=plan.hospital_code,
            patient=ta.Patient(insured_region=plan.insured_region, member_id=member["member_id"],
                               id_number=member["id_number"], name=member["name"]),
            admitted_on=bill["admitted_on"], emergency=bill["emergency"], diagnoses=bill["diagnoses"],
            birth_weight_g=bill["birth_weight_g"]),
            attempts, self.settings.call_deadline_s, jitter)
        if admitted.kind != "ok":
            return None
        encounter_id = admitted.response.encounter_id
        lines = bill["lines"]
        for batch, start in enumerate(range(0, len(lines), UPLOAD_BATCH_LINES)):
            uploaded = await self.call_until_definite(stub.UploadCharges, ta.UploadChargesRequest(
                request_id=request_id(self.run_id, plan.index, f"upload:{batch}"), encounter_id=encounter_id,
                lines=[types_pb2.BillLine(line_id=line["line_id"], code=line["code"], qty=line["qty"],
                                          unit_price_fen=line["unit_price_fen"], amount_fen=line["amount_fen"],
                                          service_date=line["service_date"])
                       for line in lines[start:start + UPLOAD_BATCH_LINES]]),
                attempts, self.settings.call_deadline_s, jitter)
            if uploaded.kind != "ok":
                return None
        return encounter_id

    # -- settle and cancel --------------------------------------------------------------------

    async def settle(self, stub: treating_agency_pb2_grpc.TreatingAgencyServiceStub, entry: Entry, attempts: int,
                     deadline_s: float, jitter: random.Random) -> None:
        """Send (or resend: the very same request) the settlement until the answer is definite or
        `attempts` are spent."""
        request = ta.SettleRequest(request_id=entry.request_id, encounter_id=entry.encounter_id,
                                   discharged_on=entry.discharged_on, procedures=list(entry.procedures),
                                   discharge_status=entry.discharge_status)
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(backoff_s(attempt, jitter))
            entry.attempts += 1
            entry.requested_on = entry.requested_on or shanghai_today().isoformat()
            answer = await self.call(stub.Settle, request, deadline_s)
            if answer.kind == "ok":
                settlement = answer.response.settlement
                split = settlement.adjudication.split
                entry.outcome = Outcome.SUCCEEDED
                entry.settlement_id = settlement.settlement_id
                entry.settlement_day = settlement.claim.settlement_day
                entry.split = Split(split.total_fen, split.fund_pay_fen, split.psn_pay_fen, split.hifp_fen,
                                    split.hifmi_fen, split.maf_fen)
                return
            if answer.kind == "failed":
                entry.outcome = Outcome.FAILED
                entry.error = answer.error
                return
            entry.unknown_answers += 1
            entry.error = answer.error

    async def cancel(self, stub: treating_agency_pb2_grpc.TreatingAgencyServiceStub, entry: Entry, attempts: int,
                     deadline_s: float, jitter: random.Random) -> None:
        request = ta.CancelRequest(request_id=entry.cancel_request_id, settlement_id=entry.settlement_id,
                                   reason="fault harness: discharge corrected")
        entry.cancel_unknown = True
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(backoff_s(attempt, jitter))
            answer = await self.call(stub.Cancel, request, deadline_s)
            if answer.kind == "ok":
                entry.outcome = Outcome.CANCELLED
                entry.cancel_unknown = False
                return
            if answer.kind == "failed":  # refused: the settlement stands
                entry.cancel_unknown = False
                entry.error = f"cancel {answer.error}"
                return

    async def settle_down(self) -> None:
        """With clean links and every service up: resolve every unknown settlement and cancel, by
        resending it with the same request id (or reversing it, for the HIS that chose to)."""
        semaphore = asyncio.Semaphore(self.settings.concurrency)
        attempts = self.settings.settle_down_attempts_max
        deadline_s = self.settings.settle_down_deadline_s

        async def resolve(entry: Entry) -> None:
            async with semaphore:
                stub = self.stubs[entry.hospital_code]
                jitter = random.Random(f"his-settle-down:{self.seed}:{entry.index}")
                if entry.outcome is Outcome.UNKNOWN and entry.intent is Intent.REVERSE and self.reverser is not None:
                    for attempt in range(attempts):  # 冲正 2601: resend the reversal until definite
                        if attempt:
                            await asyncio.sleep(backoff_s(attempt, jitter))
                        entry.outcome = await self.reverser(stub, entry, deadline_s)
                        if entry.outcome is not Outcome.UNKNOWN:
                            break
                elif entry.outcome is Outcome.UNKNOWN:
                    await self.settle(stub, entry, attempts, deadline_s, jitter)
                if entry.cancel_unknown:
                    await self.cancel(stub, entry, attempts, deadline_s, jitter)

        await asyncio.gather(*(resolve(entry) for entry in self.journal.unresolved()))

    # -- one call ------------------------------------------------------------------------------

    async def call(self, method: Any, request: Any, deadline_s: float) -> Answer:
        try:
            return Answer("ok", await method(request, timeout=deadline_s))
        except grpc.aio.AioRpcError as error:
            self.journal.codes[error.code().name] += 1
            kind = "failed" if error.code() in DEFINITE_CODES else "unknown"
            return Answer(kind, error=domain_error_from_status(error))

    async def call_until_definite(self, method: Any, request: Any, attempts: int, deadline_s: float,
                                  jitter: random.Random) -> Answer:
        answer = Answer("unknown")
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(backoff_s(attempt, jitter))
            answer = await self.call(method, request, deadline_s)
            if answer.kind != "unknown":
                return answer
        return answer


def backoff_s(attempt: int, jitter: random.Random) -> float:
    """0.2 s, 0.4 s, 0.8 s, … (at most 2 s), each × 0.5–1.5 so retries do not march in step."""
    return min(2.0, 0.2 * 2 ** (attempt - 1)) * (0.5 + jitter.random())
