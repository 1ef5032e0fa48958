"""Helpers for the integration tests that drive the real parties (bad input, idempotency, settlement
rules, quote vs online, concurrency).

Everything is reached through one session fixture, `kit` (a `Kit`), because test modules cannot
import this file. `Kit` builds *inputs* (fresh members, hand-made bill lines, catalogue picks) and
reads state back (accumulators, row counts, ledger postings); it never computes an expected amount
with the code under test. A line's `amount_fen` comes from `Decimal` with `ROUND_HALF_UP`.

The database and the enrolled members are shared by the whole session: every helper that creates
something uses a fresh uuid4 (request ids, member ids), so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import os
import sys
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import grpc
import pytest
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from clearing.catalogue import COLUMNS, Catalogue, parse_catalogue_csv
from services.common.regions import load_regions
from services.common.smart_audit import generated_knowledge
from services.stack.config import StackConfig
from services.datagen.catalogue import generate_catalogue_rows

SEED = 2026  # the seed the session stack imported its catalogues and enrolled its members with
YEAR = 2026
YTD_KEYS = ("deductible_fen", "eligible_fen", "hifp_fen", "burden_fen", "hifmi_fen", "assist_base_fen", "maf_fen",
            "admissions")
SCHEMES = {"employee": types_pb2.SCHEME_EMPLOYEE, "resident": types_pb2.SCHEME_RESIDENT}
TIERS = {None: types_pb2.ASSISTANCE_TIER_NONE, "tekun": types_pb2.ASSISTANCE_TIER_TEKUN,
         "dibao": types_pb2.ASSISTANCE_TIER_DIBAO, "dishouru": types_pb2.ASSISTANCE_TIER_DISHOURU}
FILINGS = {"resident": types_pb2.FILING_STATUS_RESIDENT, "referral": types_pb2.FILING_STATUS_REFERRAL,
           "temporary": types_pb2.FILING_STATUS_TEMPORARY}
PARTY_TABLES = {
    "treating": ("catalogue_versions", "encounters", "charge_lines", "uploads", "settlements", "ledger_transactions",
                 "ledger_postings", "requests", "reversals", "payout_closings", "payment_closings", "drg_weight_tables"),
    "insured": ("members", "filings", "accumulators", "settlements", "requests", "reversals"),
    "clearinghouse": ("catalogue_versions", "claims", "ledger_transactions", "ledger_postings", "requests",
                      "reversals"),
    "his": ("discharges",),
}

CLI = Path(sys.executable).parent / "clearing-admin"


def write_stack_file(stack, path: Path) -> Path:  # noqa: ANN001 - an in-process stack (own_stack or stack)
    """A configuration file of an in-process test stack at `path`, as `clearing-admin stack up` would write it, so
    the CLI can be pointed at it with `--config`."""
    StackConfig(base_dsn=stack.config.base_dsn, database_prefix=stack.config.database_prefix,
                clearing_house_port=stack.clearing_house.port, his_port=stack.his.port,
                region_ports={region: running.port for region, running in stack.regions.items()},
                certs_dir=str(stack.certs_dir)).save(path)
    return path


@pytest.fixture(scope="module")
def stack_file(stack, tmp_path_factory) -> Path:  # noqa: ANN001
    """The shared test stack's configuration file (`write_stack_file`)."""
    return write_stack_file(stack, tmp_path_factory.mktemp("stack-file") / "stack.json")


async def clearing_admin(*arguments: str, timeout_s: float = 300) -> tuple[int, str, str]:
    """Run the CLI as a subprocess while this process's event loop keeps serving the stack; (exit code, stdout,
    stderr). 200 columns: a table row per line."""
    process = await asyncio.create_subprocess_exec(str(CLI), *arguments, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE,
                                                   env={**os.environ, "COLUMNS": "200"})
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=timeout_s)
    return process.returncode, stdout.decode(), stderr.decode()



# ---------------------------------------------------------------------------------------------
# Catalogue picks (the generated catalogues the stack imported)
# ---------------------------------------------------------------------------------------------

@functools.cache
def catalogue_rows(region: str) -> tuple[dict[str, str], ...]:
    return tuple(generate_catalogue_rows(region, SEED))


@functools.cache
def catalogue_csv(region: str) -> str:
    """The generated rows as SPEC §4.1 CSV text, written here (not by the stack's enrol code)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(catalogue_rows(region))
    return buffer.getvalue()


@functools.cache
def catalogue(region: str) -> Catalogue:
    return parse_catalogue_csv(catalogue_csv(region), region)


@functools.cache
def versions_by_code(region: str) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for row in catalogue_rows(region):
        found.setdefault(row["local_code"], []).append(row)
    return found


def is_plain(row: dict[str, str], grade: str = "A") -> bool:
    """A row whose classification is easy to reason about: mapped, no restriction, no price cap; and one that
    smart audit has nothing to say about (no knowledge-base facts: any sex, age, level and quantity)."""
    return (row["grade"] == grade and bool(row["national_code"]) and not row["restriction"].strip()
            and not row["price_cap_fen"] and row["relation"] == "equivalent"
            and generated_knowledge().facts(row["national_code"]) is None)


@functools.cache
def plain_codes(region: str, grade: str = "A") -> tuple[str, ...]:
    """Local codes with ONE row, valid all of 2026, plain (see `is_plain`), sorted."""
    codes = []
    for code, versions in versions_by_code(region).items():
        if len(versions) != 1:
            continue
        row = versions[0]
        if is_plain(row, grade) and row["valid_from"] <= "2026-01-01" and not row["valid_to"]:
            codes.append(code)
    return tuple(sorted(codes))


@functools.cache
def local_only_code(region: str) -> str:
    """A local-only item (empty national code): UNMAPPED wherever it is billed."""
    return sorted(code for code, versions in versions_by_code(region).items()
                  if all(not row["national_code"] for row in versions))[0]


@functools.cache
def hospitals(region: str) -> tuple[tuple[str, int], ...]:
    return tuple((hospital.code, hospital.level) for hospital in load_regions()[region].hospitals)


def hospital(region: str, level: int = 3) -> str:
    return next(code for code, hospital_level in hospitals(region) if hospital_level == level)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

def rid() -> str:
    return str(uuid.uuid4())


def amount_fen(qty: str, unit_price_fen: int) -> int:
    """round_half_up(qty × unit_price), by Decimal: an oracle independent of `clearing.money`."""
    return int((Decimal(qty) * unit_price_fen).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def bill_line(line_id: str, code: str, qty: str, unit_price_fen: int, service_date: str,
              amount: int | None = None) -> types_pb2.BillLine:
    return types_pb2.BillLine(line_id=line_id, code=code, qty=qty, unit_price_fen=unit_price_fen,
                              amount_fen=amount_fen(qty, unit_price_fen) if amount is None else amount,
                              service_date=service_date)


def lines_from_bill(bill: dict[str, Any]) -> list[types_pb2.BillLine]:
    """The B.json lines of a generated bill as proto lines."""
    return [types_pb2.BillLine(line_id=item["line_id"], code=item["code"], qty=item["qty"],
                               unit_price_fen=item["unit_price_fen"], amount_fen=item["amount_fen"],
                               service_date=item["service_date"]) for item in bill["lines"]]


def new_id_number(region: str) -> str:
    """18 characters: region, birth date 1970-01-01…, 4 random digits (no checksum is enforced)."""
    serial = uuid.uuid4().int
    return f"{region}19{70 + serial % 30:02d}0{1 + serial % 9}1{serial % 10}{serial // 10 % 10000:04d}"


@dataclass(frozen=True)
class Member:
    """A member registered by a test, as the insured agency has it."""

    region: str
    member_id: str
    id_number: str
    name: str
    scheme: str
    retired: bool
    poverty: bool
    assistance: str | None
    filing: str  # "unfiled" unless the test recorded a filing


def ytd_dict(message: types_pb2.Accumulators) -> dict[str, int]:
    return {key: getattr(message, key) for key in YTD_KEYS}


def ytd_delta(before: types_pb2.Accumulators, after: types_pb2.Accumulators) -> dict[str, int]:
    return {key: getattr(after, key) - getattr(before, key) for key in YTD_KEYS}


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------

async def refusal(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    """Await a call that must fail; return its error (the test fails if it succeeds)."""
    try:
        answer = await call
    except grpc.aio.AioRpcError as error:
        return error
    raise AssertionError(f"the call succeeded but should have been refused: {answer}")


def status_of(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    status = rpc_status.from_call(error)
    assert status is not None, f"no google.rpc.Status in the trailers of {error.code().name}: {error.details()}"
    return status


def detail_of(error: grpc.aio.AioRpcError, kind: type) -> Any:
    """The first detail of type `kind` in the error's google.rpc.Status."""
    for item in status_of(error).details:
        found = kind()
        if item.Unpack(found):
            return found
    raise AssertionError(f"no {kind.DESCRIPTOR.full_name} detail in {error.code().name}: {error.details()}")


def violated_fields(error: grpc.aio.AioRpcError) -> list[str]:
    return [item.field for item in detail_of(error, error_details_pb2.BadRequest).field_violations]


def assert_refused(error: grpc.aio.AioRpcError, code: grpc.StatusCode, field: str | None = None,
                   resource: str | None = None, subject: str | None = None) -> None:
    """The status is `code` (never INTERNAL) and its detail names `field`/`resource`/`subject`."""
    assert error.code() is not grpc.StatusCode.INTERNAL, f"INTERNAL: {error.details()}"
    assert error.code() is code, f"expected {code.name}, got {error.code().name}: {error.details()}"
    status = status_of(error)
    assert status.code == code.value[0]
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS):
        fields = violated_fields(error)
        assert fields, "a BadRequest detail with at least one field violation"
        if field is not None:
            assert fields[0] == field, f"expected the detail to name {field!r}, it names {fields}"
    elif code is grpc.StatusCode.NOT_FOUND:
        info = detail_of(error, error_details_pb2.ResourceInfo)
        assert info.resource_name
        if resource is not None:
            assert resource in info.resource_name, f"{resource!r} not in {info.resource_name!r}"
    elif code is grpc.StatusCode.FAILED_PRECONDITION:
        failure = detail_of(error, error_details_pb2.PreconditionFailure)
        assert failure.violations
        if subject is not None:
            assert failure.violations[0].subject == subject, failure
    elif code is grpc.StatusCode.PERMISSION_DENIED:
        info = detail_of(error, error_details_pb2.ErrorInfo)
        if subject is not None:
            assert info.metadata.get("identity") == subject, info
    assert field is None or code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS)


def same_bytes(first: Any, second: Any) -> bool:
    """Equal messages with equal deterministic encodings (map order aside, byte for byte)."""
    return first == second and \
        first.SerializeToString(deterministic=True) == second.SerializeToString(deterministic=True)


# ---------------------------------------------------------------------------------------------
# The kit
# ---------------------------------------------------------------------------------------------

def claim_refusal_in_batch(refused: types_pb2.Refusal, index: int) -> types_pb2.Refusal:
    """A claim's refusal inside a batch with the fields of its BadRequest named from the batch (`claims[index].…`)."""
    status = status_pb2.Status.FromString(refused.status)
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            for violation in bad_request.field_violations:
                violation.field = f"claims[{index}].{violation.field}"
            detail.Pack(bad_request)
    return types_pb2.Refusal(code=refused.code, message=refused.message, status=status.SerializeToString())


async def batch_answered(stream: Any) -> None:  # noqa: ANN401
    """Drain a batch stream's answers; its first refused claim is raised as the error of a call (the fields named
    from the batch), so a batch reads like any other call to `refusal` and `assert_refused`."""
    from services.common.batching import error_of

    async for answer in stream:
        for index, outcome in enumerate(answer.outcomes):
            if outcome.WhichOneof("outcome") == "refusal":
                raise error_of(claim_refusal_in_batch(outcome.refusal, index))


class Kit:
    """Stubs, database connections and the HIS steps (2201 admit, 2301 upload, 2304 settle).

    Every party of the stack speaks mutual TLS and knows its caller from the caller's certificate, so each
    stub calls as the identity a real caller would have. The routing is test-side (tests/conftest.py `Stack`),
    so tests read as before:

    * `treating(region)`: as the HOSPITAL the request concerns — its `hospital_code`, or the hospital of its
      `encounter_id` / `settlement_id` / `original_request_id` in that treating agency's database — and as the
      operator for agency-wide calls (ImportCatalogue, ListPayouts, ClosePayoutMonth, Reconcile, GetDailyTotals
      and StreamDailyDetail without a hospital_code);
    * `insured(region)`: as the operator for member calls (RegisterMember, RecordFiling, GetMember) and
      ExportAdjudications, and as the clearing house for adjudication calls (tests call Adjudicate, CancelAdjudication, ReverseAdjudication…
      directly to play the clearing house);
    * `clearing()`: as the treating agency of the claim (`claim.treating_region`, `treating_region`, or the claim
      looked up by settlement id) for SettleClaim, QuoteClaim, CancelClaim, ReverseClaim and the daily totals and
      detail of one treating region, and as the operator for everything else;
    * `hospital_service()`: as the operator.

    A test that needs another identity asks the stack: `kit.stack.stub_as(identity, StubClass, address)`, or a
    channel with `kit.stack.channel_as(identity, address)`; a routed stub of a server the test started itself is
    `kit.stack.treating(region, address)` (and `insured(region, address)`, `clearing(address)`).
    """

    seed = SEED
    year = YEAR
    rid = staticmethod(rid)
    amount_fen = staticmethod(amount_fen)
    bill_line = staticmethod(bill_line)
    lines_from_bill = staticmethod(lines_from_bill)
    catalogue_rows = staticmethod(catalogue_rows)
    catalogue_csv = staticmethod(catalogue_csv)
    catalogue = staticmethod(catalogue)
    versions_by_code = staticmethod(versions_by_code)
    plain_codes = staticmethod(plain_codes)
    local_only_code = staticmethod(local_only_code)
    hospitals = staticmethod(hospitals)
    hospital = staticmethod(hospital)
    refusal = staticmethod(refusal)
    status_of = staticmethod(status_of)
    detail_of = staticmethod(detail_of)
    violated_fields = staticmethod(violated_fields)
    assert_refused = staticmethod(assert_refused)
    batch_answered = staticmethod(batch_answered)
    same_bytes = staticmethod(same_bytes)
    ytd_dict = staticmethod(ytd_dict)
    ytd_delta = staticmethod(ytd_delta)

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self._stubs: dict[tuple[str, str], Any] = {}
        self._connections: dict[str, Any] = {}

    # -- stubs --------------------------------------------------------------------------------
    def treating(self, region: str):  # noqa: ANN201
        key = ("treating", region)
        if key not in self._stubs:
            self._stubs[key] = self.stack.treating(region)
        return self._stubs[key]

    def insured(self, region: str):  # noqa: ANN201
        key = ("insured", region)
        if key not in self._stubs:
            self._stubs[key] = self.stack.insured(region)
        return self._stubs[key]

    def clearing(self):  # noqa: ANN201
        if ("clearing", "") not in self._stubs:
            self._stubs[("clearing", "")] = self.stack.clearing()
        return self._stubs[("clearing", "")]

    def hospital_service(self):  # noqa: ANN201
        if ("his", "") not in self._stubs:
            self._stubs[("his", "")] = self.stack.hospital()
        return self._stubs[("his", "")]

    # -- databases ----------------------------------------------------------------------------
    async def db(self, party: str):  # noqa: ANN201
        """A kept asyncpg connection to a party's database ("treating_440100", "clearinghouse", …)."""
        if party not in self._connections:
            self._connections[party] = await self.stack.connect(party)
        return self._connections[party]

    async def counts(self, *parties: str) -> dict[tuple[str, str], int]:
        """Rows in every table of each party: compare before and after a refused call."""
        result = {}
        for party in parties:
            tables = PARTY_TABLES[party.split("_")[0]]
            row = await (await self.db(party)).fetchrow(
                "SELECT " + ", ".join(f"(SELECT count(*) FROM {table}) AS {table}" for table in tables))
            result.update({(party, table): row[table] for table in tables})
        return result

    async def close(self) -> None:
        for connection in self._connections.values():
            await connection.close()
        self._connections.clear()

    # -- members ------------------------------------------------------------------------------
    async def new_member(self, region: str, *, scheme: str = "employee", retired: bool = False,
                         poverty: bool = False, assistance: str | None = None, filing: str | None = None,
                         filing_region: str = "", filing_from: str = "2026-01-01") -> Member:
        """Register a member nobody else uses (and record a filing when `filing` is given)."""
        member = Member(region, f"T{region}{uuid.uuid4().hex[:12].upper()}", new_id_number(region), "测试人员",
                        scheme, retired, poverty, assistance, filing or "unfiled")
        await self.insured(region).RegisterMember(ia.RegisterMemberRequest(
            request_id=rid(), member=ia.Member(
                member_id=member.member_id, id_number=member.id_number, name=member.name, scheme=SCHEMES[scheme],
                retired=retired, poverty=poverty, assistance=TIERS[assistance])))
        if filing is not None:
            await self.insured(region).RecordFiling(ia.RecordFilingRequest(
                request_id=rid(), member_id=member.member_id,
                filing=ia.Filing(category=FILINGS[filing], treating_region=filing_region, valid_from=filing_from)))
        return member

    async def accumulators(self, member: Member, year: int = YEAR) -> types_pb2.Accumulators:
        answer = await self.insured(member.region).GetMember(ia.GetMemberRequest(member_id=member.member_id,
                                                                                 year=year))
        return answer.accumulators

    # -- the HIS steps ------------------------------------------------------------------------
    async def admit(self, hospital_code: str, member: Member, admitted_on: str, *, emergency: bool = False,
                    diagnoses: tuple[str, ...] = ("J18.9",), request_id: str | None = None) -> ta.AdmitResponse:
        region = hospital_code[1:7]
        return await self.treating(region).Admit(self.admit_request(
            hospital_code, member, admitted_on, emergency=emergency, diagnoses=diagnoses, request_id=request_id))

    @staticmethod
    def admit_request(hospital_code: str, member: Member, admitted_on: str, *, emergency: bool = False,
                      diagnoses: tuple[str, ...] = ("J18.9",), request_id: str | None = None) -> ta.AdmitRequest:
        return ta.AdmitRequest(
            request_id=request_id or rid(), hospital_code=hospital_code,
            patient=ta.Patient(insured_region=member.region, member_id=member.member_id,
                               id_number=member.id_number, name=member.name),
            admitted_on=admitted_on, emergency=emergency, diagnoses=list(diagnoses))

    async def open_encounter(self, hospital_code: str, member: Member, lines: list[types_pb2.BillLine],
                             admitted_on: str, **admit: Any) -> str:
        """Admit (2201) and upload the lines (2301) in batches of 25, as the HIS does."""
        region = hospital_code[1:7]
        admitted = await self.admit(hospital_code, member, admitted_on, **admit)
        for start in range(0, len(lines), 25):
            await self.treating(region).UploadCharges(ta.UploadChargesRequest(
                request_id=rid(), encounter_id=admitted.encounter_id, lines=lines[start:start + 25]))
        return admitted.encounter_id

    async def discharge(self, hospital_code: str, member: Member, lines: list[types_pb2.BillLine],
                        admitted_on: str, discharged_on: str, **admit: Any) -> types_pb2.Settlement:
        """The whole stay: admit, upload, settle (2304); returns the settlement."""
        encounter_id = await self.open_encounter(hospital_code, member, lines, admitted_on, **admit)
        settled = await self.treating(hospital_code[1:7]).Settle(ta.SettleRequest(
            request_id=rid(), encounter_id=encounter_id, discharged_on=discharged_on))
        return settled.settlement

    async def ledger(self, settlement_id: str, party: str = "clearinghouse") -> dict[str, dict[str, int]]:
        """A ledger's postings of one settlement: {kind: {account: amount_fen}}; the clearing house's, or
        a treating agency's (`party="treating_440100"`)."""
        rows = await (await self.db(party)).fetch(
            "SELECT t.kind, p.account, p.amount_fen FROM ledger_postings p JOIN ledger_transactions t USING (tx_id) "
            "WHERE t.settlement_id = $1", uuid.UUID(settlement_id))
        result: dict[str, dict[str, int]] = {}
        for row in rows:
            result.setdefault(row["kind"], {})[row["account"]] = row["amount_fen"]
        return result


@pytest.fixture(scope="session")
async def kit(stack):
    helper = Kit(stack)
    yield helper
    await helper.close()


@pytest.fixture(scope="module")
async def own_kit(own_stack):
    """A kit on the module's own stack (see `own_stack` in tests/conftest.py)."""
    helper = Kit(own_stack)
    yield helper
    await helper.close()
