"""Several processes of one party on one port (SPEC §11, SO_REUSEPORT): the clearing house and one region run as two
processes each; discharges settle through them as through one, each process serves connections of its own, and a
second process on a port without `workers` is refused instead of sharing it by accident."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import urllib.request
import uuid
from pathlib import Path

import asyncpg
import grpc
import pytest
from clearinghouse.v1 import clearing_house_pb2, clearing_house_pb2_grpc, hospital_pb2, hospital_pb2_grpc

from services.common.server import SERVER_OPTIONS, server_options
from services.security.party import CHANNEL_OPTIONS
from services.stack.config import StackConfig, operator_identity
from services.stack.enrol import enrol_all
from services.stack.processes import StackProcesses

pytestmark = pytest.mark.e2e
SEED = 2026
MEMBERS = 10
SHARED_REGION = "440100"
WORKERS = {"clearinghouse": 2, f"region:{SHARED_REGION}": 2}
# A channel of its own: grpc otherwise shares one connection among channels to one address, and the kernel spreads
# connections, not calls, over the processes of a port.
OWN_CONNECTION = (*CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1))


@pytest.fixture(scope="module")
async def stack(database):
    work_dir = Path(tempfile.mkdtemp(prefix="clearing-workers-"))
    processes = StackProcesses(work_dir=work_dir, seed=SEED, members_per_region=MEMBERS, database=database,
                               workers=WORKERS)
    try:
        config = await processes.start()
        await enrol_all({region: config.address(port) for region, port in config.region_ports.items()}, SEED, MEMBERS,
                        transport=config.transport())
        yield processes
    finally:
        processes.stop()
        shutil.rmtree(work_dir, ignore_errors=True)


def handled(metrics_port: int, method: str) -> float:
    """grpc_server_handled_total of `method` (every code) in one process's exposition."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("grpc_server_handled_total{") and f'grpc_method="{method}"' in line)


def test_the_share_port_option_turns_so_reuseport_on_and_only_then():
    assert dict(SERVER_OPTIONS)["grpc.so_reuseport"] == 0
    assert dict(server_options(False)) == dict(SERVER_OPTIONS)
    shared = dict(server_options(True))
    assert shared["grpc.so_reuseport"] == 1
    assert {name: value for name, value in shared.items() if name != "grpc.so_reuseport"} == \
        {name: value for name, value in SERVER_OPTIONS if name != "grpc.so_reuseport"}


def test_a_malformed_workers_entry_is_refused_naming_it():
    config = StackConfig(base_dsn="postgresql:///x", workers={"clearinghouse": 0})
    with pytest.raises(ValueError, match="workers.clearinghouse"):
        config.worker_count("clearinghouse")
    with pytest.raises(ValueError, match="workers.his"):
        StackConfig(base_dsn="postgresql:///x", workers={"his": 2}).worker_count("his")
    assert StackConfig(base_dsn="postgresql:///x").worker_count("region:440100") == 1


async def test_every_process_of_a_shared_port_serves_and_discharges_settle_through_them(stack):
    config = stack.config
    assert {name for name in stack.services if "#" in name} == {"clearinghouse#1", f"region:{SHARED_REGION}#1"}
    assert stack.services["clearinghouse#1"].port == stack.services["clearinghouse"].port
    assert all(stack.running(name) for name in stack.services)

    # Many connections to the clearing house's port: the kernel gives each process some of them.
    async def list_prepayments() -> None:
        channel = config.transport().channel(config.address(config.clearing_house_port), operator_identity(),
                                             OWN_CONNECTION)
        async with channel:
            await clearing_house_pb2_grpc.ClearingHouseServiceStub(channel).ListPrepayments(
                clearing_house_pb2.ListPrepaymentsRequest(), timeout=30)

    await asyncio.gather(*(list_prepayments() for _ in range(24)))
    served = [handled(config.metrics_ports[name], "ListPrepayments") for name in ("clearinghouse", "clearinghouse#1")]
    assert sum(served) == 24 and min(served) > 0, served

    # Discharges across regions settle through both pairs of processes exactly once each.
    async with config.transport().channel(config.address(config.his_port), operator_identity()) as channel:
        updates = [update async for update in hospital_pb2_grpc.HospitalServiceStub(channel).RunDischarges(
            hospital_pb2.RunDischargesRequest(request_id=str(uuid.uuid4()), count=24, seed=5, concurrency=6,
                                              month="2026-05"))]
    assert updates[-1].done == 24
    connection = await asyncpg.connect(config.dsn("his"))
    try:
        rows = await connection.fetch("SELECT * FROM discharges")
    finally:
        await connection.close()
    settled = [row for row in rows if row["status"] == "settled"]
    assert len(settled) >= 20, [row["error"] for row in rows if row["status"] != "settled"]
    cross = [row["settlement_id"] for row in settled if row["treating_region"] != row["insured_region"]]
    connection = await asyncpg.connect(config.dsn("clearinghouse"))
    try:
        claims = await connection.fetchval("SELECT count(*) FROM claims WHERE settlement_id = ANY($1::uuid[])", cross)
    finally:
        await connection.close()
    assert claims == len(cross)


async def bound_port(port: int, share_port: bool) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(options=server_options(share_port))
    try:
        return server, server.add_insecure_port(f"127.0.0.1:{port}")
    except RuntimeError:  # grpc raises where older versions returned 0
        return server, 0


async def test_a_port_is_shared_only_between_processes_that_all_ask_for_it():
    first, port = await bound_port(0, share_port=True)
    await first.start()
    try:
        second, second_port = await bound_port(port, share_port=True)
        assert second_port == port
        await second.stop(None)
        lone, lone_port = await bound_port(port, share_port=False)
        assert lone_port == 0  # refused, not silently sharing
        await lone.stop(None)
    finally:
        await first.stop(None)
