"""Hypothesis-generated garbage for every RPC of every party (SPEC §8 "Bad input", issue 5 item 7).

Every RPC is discovered from the generated descriptors, so a new one gets garbage without editing
this file (and its corrupted-request test fails until `Scene.build` has a valid base request for
it). Two kinds of request, strategies in `garbage_strategies.py`: whole requests of garbage, and a
valid request with one field corrupted (pure garbage mostly dies at the first check). Each
example sends one request and checks:

* the answer is OK or one of the refusals of the contract (INVALID_ARGUMENT, NOT_FOUND,
  FAILED_PRECONDITION, ALREADY_EXISTS, PERMISSION_DENIED) — never INTERNAL, UNKNOWN or a timeout —
  and no party logged an error while answering (a crash caught inside a party, like a
  discharge of RunDischarges, is a traceback too);
* a refusal carries its google.rpc detail (`kit.assert_refused`), and a BadRequest names a field
  that exists in the request (or in what the RPC validates on the request's behalf, see
  `EXTRA_FIELD_ROOTS`);
* a refusal wrote nothing at any party, and a request without `request_id` (a read: the contract
  says every mutating call carries one) wrote nothing even when it succeeded. "Nothing" is measured
  on every table of every party database: row count and newest row version (`xmin`), so an UPDATE
  counts too. The only refusals the protocol records are the `failed` rows of treating-agency
  `settlements` and clearing-house `claims` (docs/settlement-protocol.md: a definite downstream
  refusal is stored and replayed to retries); those rows, and only those, are left out.

Server-streaming RPCs are drained: their refusal surfaces while iterating. After the garbage, the
clearing house's ledger must still balance and every member's accumulators must equal the sum of
their settled stays.

Base requests and shared state: the stack is the session's, so garbage must not change what later
tests rely on. Most bases are new requests of this module's own member, encounters, scratch
region and scratch month: placeholders are replaced per example with a new request id, encounter
or member number, so a corruption that stays valid goes through every check (and is simply done).
The calls one party makes to another (SettleClaim, Adjudicate, CancelClaim, CancelAdjudication),
Cancel and ImportCatalogue replay an answered request instead, so one corrupted field is refused
or replays: a new one would record a settlement or cancel that the treating agency never made, or
replace a region's catalogue. `SHARED_STATE_GUARDS` keeps hypothesis from sending the few valid
requests that would still reach shared state (closing a real month, publishing a real region's
catalogue, topping up a region other than the scratch one, discharging hundreds of patients).

Runs are repeatable (derandomized, no example database). `GARBAGE_EXAMPLES=500` scales the
number of examples per RPC and kind (10 by default) for a longer local run (about 25 minutes);
`--hypothesis-show-statistics` then shows how often each RPC answered with each code.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import os
import pkgutil
import re
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import grpc
import pytest
import structlog
import clearinghouse.v1
from services.security.identity import agency, operator
from clearinghouse.v1 import audit_pb2, audit_pb2_grpc
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import clearing_house_pb2_grpc as ch_grpc
from clearinghouse.v1 import hospital_pb2 as hp
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2
from conftest import claim_refusal_in_batch
from garbage_strategies import corrupted, garbage_message
from google.protobuf.descriptor import Descriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st

from clearing.catalogue import COLUMNS, parse_catalogue_csv
from clearing.dates import check_month
from clearing.errors import InvalidField
from clearing.member import YTD_FIELDS
from services.common import batching, clock
from services.common.clock import clearing_month, now_utc
from services.common.regions import load_regions
from services.stack.enrol import catalogue_csv_text, enrol_request_id

EXAMPLES = int(os.environ.get("GARBAGE_EXAMPLES", "10"))
GARBAGE = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                          HealthCheck.filter_too_much, HealthCheck.large_base_example])
CALL_TIMEOUT_S = 30.0
# gRPC refuses a message above the servers' MESSAGE_BYTES_MAX (16 MiB, services/security/party.py) itself
# (RESOURCE_EXHAUSTED) before any servicer sees it (tests/integration/test_message_limits.py); garbage stays under
# 4 MiB, well inside it, so that every example reaches a servicer and stays quick to send.
MESSAGE_BYTES_MAX = 4 * 1024 * 1024 - 1024

TREATING = "440100"
INSURED = "610924"  # no agreement with 440100: the treating rule
INSURED_RULE = "430100"  # its agreement with 440100 classifies by the insured region's catalogue
H_GUANGZHOU = "H44010000001"
ADMITTED_ON = "2026-03-02"
DISCHARGED_ON = "2026-03-06"
SCRATCH_REGION = "999997"  # a catalogue region no test uses: PublishCatalogue may create versions of it
SCRATCH_MONTH = "2000-01"  # a month with no obligations, closed by this module; closing it again is harmless
SCRATCH_DAY = "2000-01-15"  # a day no settlement was made on: reconciling it finds (and writes) nothing
# A month only this module settles in (the services' clock moved there), closed, its debtor's transfer paid:
# the other tests of the session's stack settle in the real current month.
PAID_MONTH, PAID_NEXT_MONTH = "2026-02", "2026-03"
TOPUP_REGION = "211100"  # the region whose prepayment garbage may top up (far from its threshold)
STACK_SEED = 2026  # the seed the session's stack imported its catalogues with (tests/conftest.py)

ALLOWED = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                     grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS,
                     grpc.StatusCode.PERMISSION_DENIED})
# Tables in which a refusal is legitimately recorded, and the rows that record it.
REFUSAL_RECORDS = {("treating", "settlements"): "status <> 'failed'", ("clearinghouse", "claims"): "status <> 'failed'"}
# Fields a refusal may name besides the request's own: Settle and PreSettle validate the encounter's
# stored bill (`lines[i].…`) and pass on the refusals of the parties downstream, which name the
# claim the treating agency built (`claim.…`); a catalogue's errors name the CSV row and column.
CSV_POSITION = re.compile(r"^(header|rows|row \d+(\.\w+)?)$")
EXTRA_FIELD_ROOTS = {
    "TreatingAgencyService.Settle": ("lines", "claim"),
    "TreatingAgencyService.PreSettle": ("lines", "claim"),
    "TreatingAgencyService.AuditBill": ("lines",),
}
CSV_RPCS = {"TreatingAgencyService.ImportCatalogue", "ClearingHouseService.PublishCatalogue"}


# ---------------------------------------------------------------------------------------------
# The RPCs, from the descriptors
# ---------------------------------------------------------------------------------------------

def discovered() -> dict[str, MethodDescriptor]:
    """`Service.Method` → descriptor, for every RPC of every service of every generated module of
    proto/clearinghouse/v1 (a new file, service or RPC is picked up without editing this test)."""
    modules = [importlib.import_module(f"clearinghouse.v1.{name}")
               for _, name, _ in pkgutil.iter_modules(clearinghouse.v1.__path__) if name.endswith("_pb2")]
    return {f"{service.name}.{method.name}": method for module in modules
            for service in module.DESCRIPTOR.services_by_name.values() for method in service.methods}


RPCS = discovered()


def stub_for(kit, service: str):  # noqa: ANN001, ANN201
    stubs = {"TreatingAgencyService": lambda: kit.treating(TREATING),
             "InsuredAgencyService": lambda: kit.insured(INSURED),
             "ClearingHouseService": kit.clearing, "HospitalService": kit.hospital_service,
             # every server serves it; the clearing house's, as the operator
             "AuditService": lambda: kit.stack.stub_as(operator("admin"), audit_pb2_grpc.AuditServiceStub,
                                                       kit.stack.clearing_address)}
    if service not in stubs:
        pytest.fail(f"no stub for the new service {service}: add it to stub_for")
    return stubs[service]()


async def send(kit, rpc: str, request: Message) -> grpc.aio.AioRpcError | None:  # noqa: ANN001
    """Call `rpc` (draining a server stream); the refusal, or None when it succeeded. A batch stream gets the
    request as its one batch; its first refused claim is the refusal, with the field named from the batch."""
    service, method = rpc.split(".")
    if RPCS[rpc].client_streaming:
        return await send_batch(batch_stub_for(kit, service), method, request)
    call = getattr(stub_for(kit, service), method)(request, timeout=CALL_TIMEOUT_S)
    try:
        if RPCS[rpc].server_streaming:
            async for _ in call:
                pass
        else:
            await call
    except grpc.aio.AioRpcError as error:
        return error
    return None


def batch_stub_for(kit, service: str) -> Any:  # noqa: ANN001, ANN401
    """Who sends a service's batch stream: the clearing house to an insured agency, the scene's treating agency to
    the clearing house (a routed stub cannot look into a stream's batches to choose)."""
    if service == "ClearingHouseService":
        return kit.stack.stub_as(agency(TREATING), ch_grpc.ClearingHouseServiceStub, kit.stack.clearing_address)
    return stub_for(kit, service)


async def send_batch(stub: Any, method: str, batch: Message) -> grpc.aio.AioRpcError | None:  # noqa: ANN401
    """Send `batch` on a batch stream: the stream's own refusal, else the first refused claim's, as the refusal of
    a call naming `claims[i].…`; None when every claim was answered."""
    try:
        answers = [answer async for answer in getattr(stub, method)(iter([batch]), timeout=CALL_TIMEOUT_S)]
    except grpc.aio.AioRpcError as error:
        return error
    assert [answer.batch_id for answer in answers] == [batch.batch_id], "one answer, to the batch sent"
    assert len(answers[0].outcomes) == len(batch.claims), "one outcome per claim"
    for index, outcome in enumerate(answers[0].outcomes):
        if outcome.WhichOneof("outcome") == "refusal":
            return batching.error_of(claim_refusal_in_batch(outcome.refusal, index))
    return None




# ---------------------------------------------------------------------------------------------
# Valid requests that garbage must not send: they would change what later tests rely on
# ---------------------------------------------------------------------------------------------

def _real_region(value: str) -> bool:
    return value in load_regions()


def _valid_month_after_scratch(value: str) -> bool:
    try:
        return check_month(value, "month") > SCRATCH_MONTH
    except InvalidField:
        return False


@functools.cache
def _imported_catalogue() -> str:
    return catalogue_csv_text(TREATING, STACK_SEED)


def _other_catalogue(value: str) -> bool:
    """Parses as a catalogue and is not the one 440100 imported (an import would replace it)."""
    if value == _imported_catalogue():
        return False
    try:
        parse_catalogue_csv(value, TREATING)
    except InvalidField:
        return False
    return True


SHARED_STATE_GUARDS: dict[str, Callable[[Any], bool]] = {
    # Closing a month after the scratch one would close the months the other tests settle in.
    "ClearingHouseService.CloseMonth": lambda r: _valid_month_after_scratch(r.month),
    # The same at the treating agency: its payout months after the scratch one are the other tests'.
    "TreatingAgencyService.ClosePayoutMonth": lambda r: _valid_month_after_scratch(r.month),
    # A posted hospital payment freezes the year's weights and writes ledger transfers: previews only.
    "TreatingAgencyService.CloseHospitalPaymentMonth": lambda r: not r.validate_only,
    "TreatingAgencyService.CloseHospitalPaymentYear": lambda r: not r.validate_only,
    # Other regions' prepayment terms are what test_prepayment_draws measures against.
    "ClearingHouseService.SetPrepaymentTerms": lambda r: _real_region(r.insured_region) and r.insured_region != TOPUP_REGION,
    # A real region's catalogue (or one for 999999, test_bad_input's region without a catalogue).
    "ClearingHouseService.PublishCatalogue": lambda r: _real_region(r.region) or r.region == "999999",
    # 530100 must stay unfunded (test_prepayment_draws); the others' thresholds are tested too.
    "ClearingHouseService.TopUpPrepayment": lambda r: _real_region(r.insured_region) and r.insured_region != TOPUP_REGION,
    "TreatingAgencyService.ImportCatalogue": lambda r: _other_catalogue(r.csv_text),
    # Up to 100,000 real discharges.
    "HospitalService.RunDischarges": lambda r: 2 < r.count <= 100_000,
    # Up to 100,000 real visits (门诊慢特病) of the enrolled patients.
    "HospitalService.RunVisits": lambda r: 2 < r.count <= 100_000,
}


def harmful(rpc: str, request: Message) -> bool:
    guard = SHARED_STATE_GUARDS.get(rpc)
    return guard is not None and guard(request)


# ---------------------------------------------------------------------------------------------
# What a refusal must look like
# ---------------------------------------------------------------------------------------------

def names_a_field(descriptor: Descriptor, path: str) -> bool:
    """True when `path` (`claim.lines[0].line.qty`) walks through fields of `descriptor`."""
    for step in path.split("."):
        name = re.sub(r"\[\d+\]$", "", step)
        if descriptor is None or name not in descriptor.fields_by_name:
            return False
        descriptor = descriptor.fields_by_name[name].message_type
    return True


def check_refusal(kit, rpc: str, request: Message, error: grpc.aio.AioRpcError) -> None:  # noqa: ANN001
    assert error.code() in ALLOWED, f"{rpc} answered {error.code().name}: {error.details()}"
    kit.assert_refused(error, error.code())
    if error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS):
        for field in kit.violated_fields(error):
            root = re.sub(r"\[\d+\]$", "", field.split(".")[0])
            assert (names_a_field(request.DESCRIPTOR, field) or root in EXTRA_FIELD_ROOTS.get(rpc, ())
                    or (rpc in CSV_RPCS and CSV_POSITION.match(field))), \
                f"{rpc}: the BadRequest names {field!r}, which is no field of {request.DESCRIPTOR.name}"


# ---------------------------------------------------------------------------------------------
# "Writes nothing": every table of every party database
# ---------------------------------------------------------------------------------------------

# An operator's every call is recorded, refused or not (docs/security.md "Operator audit log"): the audit log is
# what a refusal *does* write, by design; tests/integration/test_operator_audit.py checks what it holds.
AUDIT_TABLES = frozenset({"operator_audit", "operator_audit_outcomes"})


class Footprint:
    """Per (party, table): row count and newest row version (xmin), refusal records left out."""

    def __init__(self, kit, queries: dict[str, str]) -> None:  # noqa: ANN001
        self.kit = kit
        self.queries = queries

    def __repr__(self) -> str:
        return f"Footprint({len(self.queries)} party databases)"

    @classmethod
    async def of(cls, kit) -> Footprint:  # noqa: ANN001
        queries = {}
        for party in kit.stack.config.parties():
            conn = await kit.db(party)
            tables = [row["tablename"] for row in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
                if row["tablename"] not in AUDIT_TABLES]
            kind = party.split("_")[0]
            queries[party] = " UNION ALL ".join(
                f"SELECT '{table}' AS name, count(*) AS n, coalesce(max(xmin::text::bigint), 0) AS version "
                f"FROM {table} WHERE {REFUSAL_RECORDS.get((kind, table), 'true')}" for table in tables)
        return cls(kit, queries)

    async def take(self) -> dict[tuple[str, str], tuple[int, int]]:
        async def one(party: str) -> dict[tuple[str, str], tuple[int, int]]:
            rows = await (await self.kit.db(party)).fetch(self.queries[party])
            return {(party, row["name"]): (row["n"], row["version"]) for row in rows}

        result: dict[tuple[str, str], tuple[int, int]] = {}
        for part in await asyncio.gather(*(one(party) for party in self.queries)):
            result.update(part)
        return result


def changed_tables(before: dict, after: dict) -> list[str]:
    return [f"{party}.{table}" for (party, table) in sorted(after) if before.get((party, table)) != after[(party, table)]]


def is_read(request: Message) -> bool:
    """Every mutating request carries a `request_id` (SPEC §8); one without it is a read."""
    return "request_id" not in request.DESCRIPTOR.fields_by_name


async def check_one(kit, footprint: Footprint, rpc: str, request: Message) -> grpc.aio.AioRpcError | None:  # noqa: ANN001
    """Send one request; check its answer, that no party logged an error, and that a refusal (or a
    read) wrote nothing."""
    before = await footprint.take()
    with structlog.testing.capture_logs() as logs:  # the parties run in this process
        error = await send(kit, rpc, request)
    event("OK" if error is None else error.code().name)
    crashes = [entry for entry in logs if entry["log_level"] in ("error", "critical")]
    assert crashes == [], f"{rpc} logged an error (a traceback): {crashes}"
    if error is not None:
        check_refusal(kit, rpc, request, error)
    if error is not None or is_read(request):
        after = await footprint.take()
        what = f"refused with {error.code().name}" if error is not None else "a read"
        assert changed_tables(before, after) == [], f"{rpc} ({what}) wrote to {changed_tables(before, after)}"
    return error


# ---------------------------------------------------------------------------------------------
# Valid base requests (the scene)
# ---------------------------------------------------------------------------------------------

def tiny_catalogue_csv() -> str:
    row = {"local_code": "G0001", "national_code": "NG0001", "relation": "equivalent", "kind": "drug",
           "name": "垃圾测试药", "grade": "A", "selfpay_bp": "0", "price_cap_fen": "", "restriction": "",
           "valid_from": "2024-01-01", "valid_to": ""}
    return ",".join(COLUMNS) + "\n" + ",".join(row[name] for name in COLUMNS) + "\n"


async def stored_request(kit, party: str, table: str, settlement_id: str, kind: type[Message]) -> Message:  # noqa: ANN001
    raw = await (await kit.db(party)).fetchval(f"SELECT request FROM {table} WHERE settlement_id = $1",
                                               uuid.UUID(settlement_id))
    return kind.FromString(bytes(raw))


# Placeholders in a base request that `Scene.freshen` replaces, per example, with a new value when the
# corruption left them alone: so a valid corrupted request is a new request, not a replay, and reaches
# the checks after the idempotency lookup (a top-up's amount, a settlement's dates), while the
# strategies still see the same base every time (hypothesis needs deterministic data generation).
NEW_REQUEST_ID = "00000000-0000-4000-8000-0000000000a1"
NEW_ENCOUNTER = "00000000-0000-4000-8000-0000000000e1"  # an admitted encounter with two uploaded lines
NEW_MEMBER = "GARBAGE-NEW-MEMBER"
ENROLLED_MEMBER = "GARBAGE-ENROLLED-MEMBER"  # a member registered at INSURED for the example (a recognition's)


def new_member(region: str) -> ia.Member:
    return ia.Member(member_id=f"G{region}{uuid.uuid4().hex[:10].upper()}", id_number=f"{region}19800101123X",
                     name="垃圾测试", scheme=types_pb2.SCHEME_EMPLOYEE, assistance=types_pb2.ASSISTANCE_TIER_NONE)


class Scene:
    """The valid base requests (one or more per RPC), and the members, code and encounters they use."""

    def __init__(self, kit) -> None:  # noqa: ANN001
        self.kit = kit
        self.bases: dict[str, list[Message]] = {}
        self.members = {INSURED: new_member(INSURED), INSURED_RULE: new_member(INSURED_RULE)}
        self.member = self.members[INSURED]
        self.code = kit.plain_codes(TREATING)[3]

    def __repr__(self) -> str:
        return f"Scene({len(self.bases)} RPCs)"

    async def encounter(self, lines: int = 2, insured_region: str = INSURED,
                        ) -> tuple[ta.AdmitRequest, ta.UploadChargesRequest]:
        """Admit a member of the scene at a Guangzhou hospital and upload `lines` lines."""
        treating = self.kit.treating(TREATING)
        member = self.members[insured_region]
        admit = ta.AdmitRequest(request_id=self.kit.rid(), hospital_code=H_GUANGZHOU, admitted_on=ADMITTED_ON,
                                diagnoses=["J18.9", "I10"], patient=ta.Patient(
                                    insured_region=insured_region, member_id=member.member_id,
                                    id_number=member.id_number, name=member.name))
        encounter_id = (await treating.Admit(admit)).encounter_id
        upload = ta.UploadChargesRequest(request_id=self.kit.rid(), encounter_id=encounter_id, lines=[
            self.kit.bill_line(str(index + 1), self.code, "1.5", 1234 + index, "2026-03-03") for index in range(lines)])
        await treating.UploadCharges(upload)
        return admit, upload

    async def freshen(self, request: Message) -> Message:
        """`request` with every placeholder still in it replaced by a new value."""
        for message in walk(request):
            for field in message.DESCRIPTOR.fields:
                if field.type == field.TYPE_STRING and not field.is_repeated:
                    value = getattr(message, field.name)
                    if value == NEW_REQUEST_ID:
                        setattr(message, field.name, self.kit.rid())
                    elif value == NEW_ENCOUNTER:
                        setattr(message, field.name, (await self.encounter())[1].encounter_id)
                    elif value == NEW_MEMBER:
                        setattr(message, field.name, f"G{uuid.uuid4().hex[:16].upper()}")
                    elif value == ENROLLED_MEMBER:
                        member = new_member(INSURED)
                        await self.kit.insured(INSURED).RegisterMember(ia.RegisterMemberRequest(
                            request_id=self.kit.rid(), member=member))
                        setattr(message, field.name, member.member_id)
        return request

    async def paid_month(self) -> tuple[ch.ConfirmTransferRequest, ch.SetPrepaymentTermsRequest]:
        """A closed month with a transfer, in a month of its own: one stay settled in PAID_MONTH (the services'
        clock moved to its end, then to the next month to close it, then back), its debtor's transfer confirmed."""
        kit, treating = self.kit, self.kit.treating(TREATING)
        member = self.members[INSURED]
        saved = clock.offset()
        try:
            clock.set_offset(clock.offset_to(clock.shanghai_instant(date.fromisoformat(f"{PAID_MONTH}-27"), 20)))
            encounter_id = (await treating.Admit(ta.AdmitRequest(
                request_id=kit.rid(), hospital_code=H_GUANGZHOU, admitted_on=f"{PAID_MONTH}-20", diagnoses=["J18.9"],
                patient=ta.Patient(insured_region=INSURED, member_id=member.member_id, id_number=member.id_number,
                                   name=member.name)))).encounter_id
            await treating.UploadCharges(ta.UploadChargesRequest(request_id=kit.rid(), encounter_id=encounter_id, lines=[
                kit.bill_line("1", self.code, "3", 250000, f"{PAID_MONTH}-21")]))
            await treating.Settle(ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id,
                                                   discharged_on=f"{PAID_MONTH}-25"))
            clock.set_offset(clock.offset_to(clock.shanghai_instant(date.fromisoformat(f"{PAID_NEXT_MONTH}-01"), 10)))
            await kit.clearing().CloseMonth(ch.CloseMonthRequest(request_id=kit.rid(), month=PAID_MONTH))
        finally:
            clock.set_offset(saved)
        status = await kit.clearing().GetMonthClosing(ch.GetMonthClosingRequest(month=PAID_MONTH))
        debtor = next(item for item in status.transfers if item.region == INSURED)
        confirm = ch.ConfirmTransferRequest(request_id=kit.rid(), month=PAID_MONTH, region=INSURED,
                                            amount_fen=debtor.transfer.amount_fen, reference="GARBAGE-BANK-1")
        await kit.clearing().ConfirmTransfer(confirm)
        terms = ch.SetPrepaymentTermsRequest(request_id=NEW_REQUEST_ID, insured_region=TOPUP_REGION, months=2,
                                             threshold_bp=7000)
        return confirm, terms

    async def disputes(self) -> tuple[str, str, str]:
        """A stay the funds pay for, settled now, with two disputes: one appealed, one appealed and rejected."""
        kit, treating, member = self.kit, self.kit.treating(TREATING), self.members[INSURED]
        encounter_id = (await treating.Admit(ta.AdmitRequest(
            request_id=kit.rid(), hospital_code=H_GUANGZHOU, admitted_on=ADMITTED_ON, diagnoses=["J18.9"],
            patient=ta.Patient(insured_region=INSURED, member_id=member.member_id, id_number=member.id_number,
                               name=member.name)))).encounter_id
        await treating.UploadCharges(ta.UploadChargesRequest(request_id=kit.rid(), encounter_id=encounter_id, lines=[
            kit.bill_line("1", self.code, "3", 250000, "2026-03-03")]))
        settlement_id = (await treating.Settle(ta.SettleRequest(
            request_id=kit.rid(), encounter_id=encounter_id, discharged_on=DISCHARGED_ON))).settlement.settlement_id
        appealed_id, decided_id = kit.rid(), kit.rid()
        for dispute_id in (appealed_id, decided_id):
            await kit.clearing().RaiseDispute(ch.RaiseDisputeRequest(
                request_id=dispute_id, settlement_id=settlement_id, amount_fen=1, rule_id="AUD-DAYQTY",
                insured_region=INSURED))
            await kit.clearing().AnswerDispute(ch.AnswerDisputeRequest(
                request_id=kit.rid(), dispute_id=dispute_id, answer=ch.DISPUTE_ANSWER_APPEAL, appeal_text="垃圾测试"))
        await kit.clearing().DecideDispute(ch.DecideDisputeRequest(
            request_id=kit.rid(), dispute_id=decided_id, decision=ch.DISPUTE_DECISION_REJECTED))
        return appealed_id, decided_id, settlement_id

    async def build(self) -> None:
        kit, rid = self.kit, self.kit.rid
        for region, member in self.members.items():
            await kit.insured(region).RegisterMember(ia.RegisterMemberRequest(request_id=rid(), member=member))
        filing = ia.RecordFilingRequest(request_id=NEW_REQUEST_ID, member_id=self.member.member_id, filing=ia.Filing(
            category=types_pb2.FILING_STATUS_RESIDENT, treating_region=TREATING, valid_from="2026-01-01"))
        dialysis = await kit.insured(INSURED).RecordSpecialDisease(ia.RecordSpecialDiseaseRequest(
            request_id=rid(), member_id=self.member.member_id, recognition=types_pb2.SpecialDiseaseRecognition(
                disease=types_pb2.SPECIAL_DISEASE_DIALYSIS, valid_from="2026-01-01", diagnosis="N18.500")))
        self.cancelled_recognition = ia.CancelSpecialDiseaseRequest(
            request_id=rid(), member_id=self.member.member_id,
            recognition_id=dialysis.recognition.recognition_id, reason="垃圾测试")
        await kit.insured(INSURED).CancelSpecialDisease(self.cancelled_recognition)
        admit, settled_upload = await self.encounter()
        _, open_upload = await self.encounter()
        treating = kit.treating(TREATING)
        settlement_id = (await treating.Settle(ta.SettleRequest(
            request_id=rid(), encounter_id=settled_upload.encounter_id, discharged_on=DISCHARGED_ON))).settlement.settlement_id
        _, cancelled_upload = await self.encounter(1)
        cancelled_id = (await treating.Settle(ta.SettleRequest(
            request_id=rid(), encounter_id=cancelled_upload.encounter_id,
            discharged_on=DISCHARGED_ON))).settlement.settlement_id
        cancel = ta.CancelRequest(request_id=rid(), settlement_id=cancelled_id, reason="垃圾测试")
        await treating.Cancel(cancel)
        # The clearing house's and the insured agency's requests of the settlement, replayed: a new one
        # would record a settlement the treating agency never made.
        settle_claim = await stored_request(kit, "clearinghouse", "claims", settlement_id, ch.SettleClaimRequest)
        _, insured_rule_upload = await self.encounter(insured_region=INSURED_RULE)
        insured_rule_id = (await treating.Settle(ta.SettleRequest(
            request_id=rid(), encounter_id=insured_rule_upload.encounter_id,
            discharged_on=DISCHARGED_ON))).settlement.settlement_id
        settle_claim_insured_rule = await stored_request(kit, "clearinghouse", "claims", insured_rule_id,
                                                         ch.SettleClaimRequest)
        adjudicate = await stored_request(kit, f"insured_{INSURED}", "settlements", settlement_id, ia.AdjudicateRequest)
        await kit.clearing().CloseMonth(ch.CloseMonthRequest(request_id=rid(), month=SCRATCH_MONTH, allow_empty=True))
        await treating.ClosePayoutMonth(ta.ClosePayoutMonthRequest(request_id=rid(), month=SCRATCH_MONTH,
                                                                   allow_empty=True))
        confirm, terms = await self.paid_month()
        await kit.clearing().PublishCatalogue(ch.PublishCatalogueRequest(
            request_id=rid(), region=SCRATCH_REGION, version=1, csv_text=tiny_catalogue_csv()))
        appealed_id, decided_id, disputed_id = await self.disputes()
        run = hp.RunDischargesRequest(request_id=rid(), count=1, seed=5, concurrency=1, month="2026-03")
        async for _ in kit.hospital_service().RunDischarges(run):
            pass
        bases = {
            "TreatingAgencyService.Admit": with_request_id(admit, NEW_REQUEST_ID),
            # An outpatient special-disease visit's registration (门诊慢特病, med_type 14) for the scene's member.
            "TreatingAgencyService.RegisterVisit": ta.RegisterVisitRequest(
                request_id=NEW_REQUEST_ID, hospital_code=admit.hospital_code, patient=admit.patient,
                visit_on=admit.admitted_on, disease=types_pb2.SPECIAL_DISEASE_DIABETES),
            "TreatingAgencyService.UploadCharges": ta.UploadChargesRequest(
                request_id=NEW_REQUEST_ID, encounter_id=NEW_ENCOUNTER,
                lines=[kit.bill_line("u1", self.code, "2", 1500, "2026-03-04"),
                       kit.bill_line("u2", self.code, "0.25", 999, "2026-03-05")]),
            # Voids the first line of a new encounter (two uploaded lines) each time.
            "TreatingAgencyService.VoidCharges": ta.VoidChargesRequest(
                request_id=NEW_REQUEST_ID, encounter_id=NEW_ENCOUNTER, line_ids=["1"], reason="退费"),
            "TreatingAgencyService.PreSettle": ta.PreSettleRequest(encounter_id=open_upload.encounter_id,
                                                                   discharged_on=DISCHARGED_ON, diagnoses=["J18.9"]),
            "TreatingAgencyService.AuditBill": ta.AuditBillRequest(encounter_id=open_upload.encounter_id,
                                                                   discharged_on=DISCHARGED_ON, diagnoses=["J18.9"]),
            "TreatingAgencyService.Settle": ta.SettleRequest(request_id=NEW_REQUEST_ID, encounter_id=NEW_ENCOUNTER,
                                                             discharged_on=DISCHARGED_ON, diagnoses=["J18.9", "C34.1"]),
            "TreatingAgencyService.Cancel": cancel,
            "TreatingAgencyService.GetSettlement": ta.GetSettlementRequest(settlement_id=settlement_id),
            # Replayed: an import of other text would replace the region's catalogue for the whole session.
            "TreatingAgencyService.ImportCatalogue": ta.ImportCatalogueRequest(
                request_id=enrol_request_id(kit.seed, f"{TREATING}:catalogue"),
                csv_text=catalogue_csv_text(TREATING, kit.seed)),
            # The running list of this month, and the frozen list of the scratch month (closed above).
            "TreatingAgencyService.ListPayouts": [ta.ListPayoutsRequest(month=clearing_month(now_utc())),
                                                  ta.ListPayoutsRequest(month=SCRATCH_MONTH)],
            # Read-only: the scratch month's settled stays (a month no test settles in: a short answer).
            "TreatingAgencyService.ListSettledStays": ta.ListSettledStaysRequest(period=SCRATCH_MONTH),
            # A preview of the scratch month's hospital payment (its payout list is closed above), weighted by this
            # year's settled stays (the scene's among them); nothing is posted (the guard keeps validate_only).
            "TreatingAgencyService.CloseHospitalPaymentMonth": ta.CloseHospitalPaymentMonthRequest(
                month=SCRATCH_MONTH, weights_year=clearing_month(now_utc())[:4], validate_only=True),
            # A year-to-date preview of this year (nothing posted: the guard keeps validate_only).
            "TreatingAgencyService.CloseHospitalPaymentYear": ta.CloseHospitalPaymentYearRequest(
                year=clearing_month(now_utc())[:4], validate_only=True),
            "ClearingHouseService.QuoteClaim": [ch.QuoteClaimRequest(claim=settle_claim.claim),
                                                ch.QuoteClaimRequest(claim=settle_claim_insured_rule.claim)],
            "ClearingHouseService.SettleClaim": [settle_claim, settle_claim_insured_rule],
            # A batch of the two replayed claims (a treating agency's batch stream).
            "ClearingHouseService.SettleClaimBatch": ch.SettleClaimBatchRequest(
                batch_id=1, claims=[settle_claim, settle_claim_insured_rule]),
            "ClearingHouseService.CancelClaim": ch.CancelClaimRequest(
                request_id=cancel.request_id, settlement_id=cancelled_id, reason=cancel.reason),
            "ClearingHouseService.GetClaim": ch.GetClaimRequest(settlement_id=settlement_id),
            "ClearingHouseService.Translate": ch.TranslateRequest(from_region=TREATING, code=self.code,
                                                                  to_region="430100", on_date=ADMITTED_ON),
            "ClearingHouseService.PublishCatalogue": ch.PublishCatalogueRequest(
                request_id=NEW_REQUEST_ID, region=SCRATCH_REGION, version=1, csv_text=tiny_catalogue_csv()),
            "ClearingHouseService.CloseMonth": ch.CloseMonthRequest(request_id=NEW_REQUEST_ID, month=SCRATCH_MONTH,
                                                                    allow_empty=True),
            # The scratch month's payouts at the treating agency, closed above: closing it again returns the first
            # result (a later month would close the payout months the other tests settle in).
            "TreatingAgencyService.ClosePayoutMonth": ta.ClosePayoutMonthRequest(
                request_id=NEW_REQUEST_ID, month=SCRATCH_MONTH, allow_empty=True),
            # Replayed: the confirmation of the paid month's debtor (a second confirmation is refused).
            "ClearingHouseService.ConfirmTransfer": confirm,
            "ClearingHouseService.SetPrepaymentTerms": terms,
            "ClearingHouseService.GetMonthClosing": ch.GetMonthClosingRequest(month=SCRATCH_MONTH),
            "ClearingHouseService.TopUpPrepayment": ch.TopUpPrepaymentRequest(
                request_id=NEW_REQUEST_ID, insured_region=TOPUP_REGION, amount_fen=1, required_fen=0),
            "ClearingHouseService.ListPrepayments": ch.ListPrepaymentsRequest(insured_region=TOPUP_REGION),
            "ClearingHouseService.StreamStatement": ch.StreamStatementRequest(region=TREATING, month=SCRATCH_MONTH),
            "InsuredAgencyService.RegisterMember": ia.RegisterMemberRequest(request_id=NEW_REQUEST_ID, member=ia.Member(
                member_id=NEW_MEMBER, id_number=f"{INSURED}19900101002X", name="新成员", scheme=types_pb2.SCHEME_RESIDENT,
                retired=True, poverty=True, assistance=types_pb2.ASSISTANCE_TIER_DIBAO)),
            "InsuredAgencyService.RecordFiling": filing,
            # A recognition of a member registered for the example (a corruption that stays valid records one);
            # the cancel replays the build's; the query is a read.
            "InsuredAgencyService.RecordSpecialDisease": ia.RecordSpecialDiseaseRequest(
                request_id=NEW_REQUEST_ID, member_id=ENROLLED_MEMBER,
                recognition=types_pb2.SpecialDiseaseRecognition(
                    disease=types_pb2.SPECIAL_DISEASE_DIABETES, valid_from="2026-01-01", diagnosis="E11.900")),
            "InsuredAgencyService.CancelSpecialDisease": self.cancelled_recognition,
            "InsuredAgencyService.ListSpecialDiseases": ia.ListSpecialDiseasesRequest(
                member_id=self.member.member_id, valid_on="2026-03-01"),
            "InsuredAgencyService.GetMember": ia.GetMemberRequest(member_id=self.member.member_id, year=2026),
            # A page after the scene's member, and a catalogue look-up by code and by name (reads).
            "InsuredAgencyService.ListMembers": ia.ListMembersRequest(limit=5, page_token=self.member.member_id),
            "TreatingAgencyService.SearchCatalogue": [
                ta.SearchCatalogueRequest(code=self.code, on_date=ADMITTED_ON),
                ta.SearchCatalogueRequest(text="注射", limit=3)],
            # The scene's member with its own ID number: matches (a corrupted number or member id is refused,
            # or answers `matches: false`, writing nothing either way).
            "InsuredAgencyService.VerifyMember": ia.VerifyMemberRequest(member_id=self.member.member_id,
                                                                      id_number=self.member.id_number),
            "InsuredAgencyService.QuoteAdjudication": ia.QuoteAdjudicationRequest(claim=adjudicate.claim),
            "InsuredAgencyService.Adjudicate": adjudicate,
            # A batch of one replayed claim (the clearing house's batch stream).
            "InsuredAgencyService.AdjudicateBatch": ia.AdjudicateBatchRequest(batch_id=1, claims=[adjudicate]),
            "InsuredAgencyService.CancelAdjudication": ia.CancelAdjudicationRequest(
                request_id=cancel.request_id, settlement_id=cancelled_id),
            "HospitalService.RunDischarges": with_request_id(run, NEW_REQUEST_ID),
            "HospitalService.GetSummary": hp.GetSummaryRequest(month="2026-03"),
            "HospitalService.RunVisits": hp.RunVisitsRequest(request_id=NEW_REQUEST_ID, month="2026-03", count=1,
                                                             concurrency=1),
            # 冲正 of ids nobody recorded (each example a new one): the outcome is NOTHING_RECORDED.
            "TreatingAgencyService.Reverse": ta.ReverseRequest(request_id=NEW_REQUEST_ID,
                                                               original_request_id=NEW_REQUEST_ID, reason="垃圾"),
            "ClearingHouseService.ReverseClaim": ch.ReverseClaimRequest(
                request_id=NEW_REQUEST_ID, settlement_id=NEW_REQUEST_ID, treating_region=TREATING,
                insured_region=INSURED),
            "InsuredAgencyService.ReverseAdjudication": ia.ReverseAdjudicationRequest(
                request_id=NEW_REQUEST_ID, settlement_id=NEW_REQUEST_ID),
            # 3201 / 3202 / reconciliation of the scene's discharge day (reads) and of an empty day.
            "TreatingAgencyService.GetDailyTotals": ta.GetDailyTotalsRequest(day=DISCHARGED_ON, hospital_code=H_GUANGZHOU,
                                                                             day_key=types_pb2.DAY_KEY_DISCHARGE),
            "TreatingAgencyService.StreamDailyDetail": ta.StreamDailyDetailRequest(day=DISCHARGED_ON,
                                                                                   day_key=types_pb2.DAY_KEY_DISCHARGE),
            "TreatingAgencyService.Reconcile": ta.ReconcileRequest(day=SCRATCH_DAY, pending_grace_s=60),
            "ClearingHouseService.GetClaimDailyTotals": ch.GetClaimDailyTotalsRequest(
                day=DISCHARGED_ON, treating_region=TREATING, insured_region=INSURED, day_key=types_pb2.DAY_KEY_DISCHARGE),
            "ClearingHouseService.StreamClaimDailyDetail": ch.StreamClaimDailyDetailRequest(
                day=DISCHARGED_ON, insured_region=INSURED, day_key=types_pb2.DAY_KEY_DISCHARGE),
            "ClearingHouseService.ReconcileInsuredAgencies": ch.ReconcileInsuredAgenciesRequest(day=SCRATCH_DAY),
            "ClearingHouseService.GetYearSummary": ch.GetYearSummaryRequest(region=TREATING, year="2026"),
            "InsuredAgencyService.GetAdjudicationDailyTotals": ia.GetAdjudicationDailyTotalsRequest(
                day=DISCHARGED_ON, day_key=types_pb2.DAY_KEY_DISCHARGE),
            "InsuredAgencyService.StreamAdjudicationDailyDetail": ia.StreamAdjudicationDailyDetailRequest(
                day=DISCHARGED_ON, treating_region=TREATING, day_key=types_pb2.DAY_KEY_DISCHARGE),
            # The policy what-if's read of every settlement of the scene's month (a read: writes nothing).
            "InsuredAgencyService.ExportAdjudications": ia.ExportAdjudicationsRequest(from_month=DISCHARGED_ON[:7],
                                                                                   to_month=DISCHARGED_ON[:7]),
            "HospitalService.ReconcileWithAgencies": hp.ReconcileWithAgenciesRequest(day=SCRATCH_DAY),
            # Disputes (拒付): a new 1-fen dispute each time on a stay the funds pay for; the answer and the decision
            # replayed on disputes appealed and rejected in the scene (the same content returns the first result),
            # so no garbage ever posts an adjustment into a payout list another test reads.
            "ClearingHouseService.RaiseDispute": ch.RaiseDisputeRequest(
                request_id=NEW_REQUEST_ID, settlement_id=disputed_id, amount_fen=1, rule_id="AUD-DAYQTY",
                insured_region=INSURED),
            "ClearingHouseService.AnswerDispute": ch.AnswerDisputeRequest(
                request_id=NEW_REQUEST_ID, dispute_id=appealed_id, answer=ch.DISPUTE_ANSWER_APPEAL,
                appeal_text="垃圾测试"),
            "ClearingHouseService.DecideDispute": ch.DecideDisputeRequest(
                request_id=NEW_REQUEST_ID, dispute_id=decided_id, decision=ch.DISPUTE_DECISION_REJECTED),
            "ClearingHouseService.GetDispute": ch.GetDisputeRequest(dispute_id=appealed_id),
            "ClearingHouseService.ListDisputes": ch.ListDisputesRequest(region=INSURED),
            "AuditService.ListAuditEvents": audit_pb2.ListAuditEventsRequest(who="operator/admin", limit=5),
        }
        self.bases = {rpc: base if isinstance(base, list) else [base] for rpc, base in bases.items()}


def walk(message: Message):  # noqa: ANN201 - the message and every submessage set in it
    yield message
    for field in message.DESCRIPTOR.fields:
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            continue
        if field.is_repeated:
            for item in getattr(message, field.name):
                yield from walk(item)
        elif message.HasField(field.name):
            yield from walk(getattr(message, field.name))


def copy_of(message: Message) -> Message:
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


def with_request_id(message: Message, request_id: str) -> Message:
    copy = copy_of(message)
    copy.request_id = request_id
    return copy


@pytest.fixture(scope="module")
async def scene(kit) -> Scene:
    made = Scene(kit)
    await made.build()
    return made


@pytest.fixture(scope="module")
async def footprint(kit) -> Footprint:
    return await Footprint.of(kit)


# ---------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------

async def test_every_rpc_has_a_valid_base_request(kit, scene):
    """A new RPC gets garbage automatically; its corrupted requests need a valid base in `Scene.build`."""
    assert sorted(set(RPCS) - set(scene.bases)) == [], "add a valid base request for these RPCs to Scene.build"
    for rpc in RPCS:
        for base in scene.bases[rpc]:
            error = await send(kit, rpc, await scene.freshen(copy_of(base)))
            assert error is None, f"the base request of {rpc} is refused: {error.code().name} {error.details()}"


@pytest.mark.parametrize("rpc", sorted(RPCS))
@GARBAGE
@given(data=st.data())
async def test_garbage_is_refused_cleanly(kit, footprint, rpc, data):
    request = data.draw(garbage_message(RPCS[rpc].input_type), label="request")
    assume(request.ByteSize() <= MESSAGE_BYTES_MAX and not harmful(rpc, request))
    await check_one(kit, footprint, rpc, request)


@pytest.mark.parametrize("rpc", sorted(RPCS))
@GARBAGE
@given(data=st.data())
async def test_a_corrupted_valid_request_is_refused_cleanly(kit, footprint, scene, rpc, data):
    if rpc not in scene.bases:
        pytest.fail(f"{rpc} has no valid base request in Scene.build")
    base = data.draw(st.sampled_from(scene.bases[rpc]), label="base")
    path, request = data.draw(corrupted(base), label="corrupted")
    note(f"corrupted field: {path}")
    assume(request.ByteSize() <= MESSAGE_BYTES_MAX and not harmful(rpc, request))
    await check_one(kit, footprint, rpc, await scene.freshen(request))


async def test_the_parties_still_agree_after_the_garbage(kit, scene):
    """After all the garbage: every ledger transaction balances, every running balance equals the
    sum of its account's postings, a claim has a settlement transaction exactly when it was settled and the
    funds pay something (a cancel transaction exactly when such a claim was cancelled, a reversal one exactly
    when reversed after settling; a claim the funds pay nothing for posts nothing),
    every member's accumulators equal the sum of the deltas of their settled stays, and each member of
    the scene has the same settlements, in the same state, at the treating agency, the clearing house
    and the insured agency."""
    ledger = await kit.db("clearinghouse")
    assert await ledger.fetch(
        "SELECT tx_id FROM ledger_postings GROUP BY tx_id HAVING sum(amount_fen) <> 0") == []
    assert await ledger.fetch("""
        SELECT coalesce(b.account, p.account) FROM ledger_balances b
        FULL JOIN (SELECT account, sum(amount_fen) AS total FROM ledger_postings GROUP BY account) p USING (account)
        WHERE b.balance_fen IS DISTINCT FROM p.total""") == []
    assert await ledger.fetch("""
        WITH c AS (SELECT settlement_id, status, clearing_month IS NOT NULL AS was_settled,
                          coalesce(fund_pay_fen, 0) > 0 AS pays, undo_month,
                          EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.settlement_id = claims.settlement_id
                                  AND t.kind = 'settlement') AS posted,
                          EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.settlement_id = claims.settlement_id
                                  AND t.kind = 'cancel') AS cancel_posted,
                          EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.settlement_id = claims.settlement_id
                                  AND t.kind = 'reversal') AS reversal_posted
                   FROM claims)
        SELECT settlement_id, status FROM c
        WHERE was_settled <> (status IN ('settled', 'cancelled') OR (status = 'reversed' AND undo_month IS NOT NULL))
           OR posted <> (pays AND was_settled)
           OR cancel_posted <> (pays AND status = 'cancelled')
           OR reversal_posted <> (pays AND was_settled AND status = 'reversed')""") == []
    sums = ", ".join(f"coalesce(sum((s.delta->>'{name}')::bigint), 0) AS {name}" for name in YTD_FIELDS)
    differences = " OR ".join(f"a.{name} <> coalesce(t.{name}, 0)" for name in YTD_FIELDS)
    for region in kit.stack.regions:
        insured = await kit.db(f"insured_{region}")
        wrong = await insured.fetch(f"""
            WITH t AS (SELECT member_id, year, {sums} FROM settlements s WHERE status = 'settled' GROUP BY 1, 2)
            SELECT a.member_id, a.year FROM accumulators a LEFT JOIN t USING (member_id, year)
            WHERE {differences}""")
        assert wrong == [], f"insured_{region}: accumulators differ from their settlements for {wrong}"
    for region, member in scene.members.items():
        at_treating = await (await kit.db(f"treating_{TREATING}")).fetch(
            "SELECT s.settlement_id, s.status FROM settlements s JOIN encounters e USING (encounter_id) "
            "WHERE e.member_id = $1 AND s.status IN ('settled', 'cancelled')", member.member_id)
        at_clearing = await ledger.fetch("SELECT settlement_id, status FROM claims WHERE member_id = $1 "
                                         "AND status IN ('settled', 'cancelled')", member.member_id)
        at_insured = await (await kit.db(f"insured_{region}")).fetch(
            "SELECT settlement_id, status FROM settlements WHERE member_id = $1", member.member_id)
        assert at_treating, "the scene settled a stay of each member"
        assert {tuple(row) for row in at_treating} == {tuple(row) for row in at_clearing} \
            == {tuple(row) for row in at_insured}, f"the parties disagree on the settlements of {member.member_id}"


# ---------------------------------------------------------------------------------------------
# Concurrent copies of one request (issue 9 item 7): every mutating RPC, found from the descriptors
# ---------------------------------------------------------------------------------------------

MUTATING = sorted(rpc for rpc, method in RPCS.items() if "request_id" in method.input_type.fields_by_name)


@pytest.mark.parametrize("rpc", MUTATING)
async def test_two_concurrent_copies_of_one_request_get_one_answer(kit, scene, rpc):
    """Two copies of one new request (a client retrying while the first is still running) arriving together:
    both get the same answer — the first's, replayed — and no party logs an error (a unique violation would
    be an INTERNAL). A new RPC with a request_id is picked up from the descriptors."""
    for base in scene.bases[rpc]:
        request = await scene.freshen(copy_of(base))
        with structlog.testing.capture_logs() as logs:
            first, second = await asyncio.gather(send_for_answer(kit, rpc, request),
                                                 send_for_answer(kit, rpc, request))
        crashes = [entry for entry in logs if entry["log_level"] in ("error", "critical")]
        assert crashes == [], f"{rpc} logged an error: {crashes}"
        assert first == second, f"{rpc}: the two copies got different answers: {first!r} / {second!r}"
        assert first[0] == "OK", f"{rpc}: the valid base request was refused: {first}"


async def send_for_answer(kit, rpc: str, request: Message) -> tuple[str, bytes]:  # noqa: ANN001
    """The answer to one call: ("OK", the serialized response(s)) or (code, detail)."""
    service, method = rpc.split(".")
    call = getattr(stub_for(kit, service), method)(request, timeout=CALL_TIMEOUT_S)
    try:
        if RPCS[rpc].server_streaming:
            return "OK", b"".join([item.SerializeToString(deterministic=True) async for item in call])
        return "OK", (await call).SerializeToString(deterministic=True)
    except grpc.aio.AioRpcError as error:
        return error.code().name, (error.details() or "").encode()
