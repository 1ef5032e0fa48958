"""Entry point of one party's process: `python -m services.stack.serve ROLE --config stack.json`.

ROLE is `clearinghouse`, `his` or `region:<code>` (that region's treating and insured agencies).
The process serves until SIGTERM, then stops with a grace period and closes its pools.

When the configuration gives a role several processes (`workers`), each is started with `--worker K` and they all
serve the role's one port (SO_REUSEPORT); each has its own metrics port (`metrics_ports["ROLE#K"]`, K > 0) and
touches `--ready-file` once it serves, since a health check on the shared port may reach any of them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import prometheus_client
import uvloop

from services.common.db import POOL_SIZE_MAX
from services.common.heap import freeze_long_lived
from services.common.logs import configure
from services.common.server import run_until_stopped
from services.insured.keys import load_member_key
from services.stack.config import StackConfig, process_name
from services.stack.wiring import Running, start_clearing_house, start_his, start_region

POOL_SIZE_MIN_SHARED = 2  # a process of a shared role keeps at least this many connections


async def start(role: str, config: StackConfig) -> Running:
    regions = {region: config.dial_address(f"region:{region}") for region in config.region_ports}
    transport = config.transport()  # mutual TLS from config.certs_dir; plaintext (with a warning) if insecure
    workers = config.worker_count(role)
    share_port = workers > 1
    # The processes of a role share the database server's connections: each keeps a share of one party's pool.
    pool_size = max(POOL_SIZE_MIN_SHARED, POOL_SIZE_MAX // workers)
    if role == "clearinghouse":
        return await start_clearing_house(config.dsn("clearinghouse"), regions, config.clearing_house_port,
                                          transport=transport, share_port=share_port, pool_size=pool_size)
    if role == "his":
        return await start_his(config.dsn("his"), regions, config.seed, config.members_per_region, config.his_port,
                               transport=transport)
    kind, _, region = role.partition(":")
    if kind != "region" or region not in config.region_ports:
        raise SystemExit(f"unknown role {role!r}")
    return await start_region(region, config.dsn(f"treating_{region}"), config.dsn(f"insured_{region}"),
                              config.dial_address("clearinghouse"), config.region_ports[region],
                              insured_addresses=regions, transport=transport,
                              member_key=load_member_key(region, config.member_key_dir or None),
                              share_port=share_port, pool_size=pool_size,
                              audit_rules_dir=Path(config.audit_rules_dir) if config.audit_rules_dir else None)


async def serve(role: str, config_path: Path, worker: int = 0, ready_file: Path | None = None) -> None:
    configure(json_output=True)
    config = StackConfig.load(config_path)
    name = process_name(role, worker)
    if name in config.metrics_ports:
        prometheus_client.start_http_server(config.metrics_ports[name], addr="127.0.0.1")
    running = await start(role, config)
    freeze_long_lived()  # tables, policies, caches loaded at start: out of the collector's walks
    if ready_file is not None:
        ready_file.write_text(f"{os.getpid()}\n")

    async def close() -> None:
        for closer in reversed(running.closers):
            await closer()

    await run_until_stopped(running.server, close)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--worker", type=int, default=0, help="this process's number among the role's processes")
    parser.add_argument("--ready-file", type=Path, help="written once the server serves")
    arguments = parser.parse_args()
    # uvloop: the event loop in C (libuv). A discharge crosses several processes and each does dozens of socket
    # writes and wake-ups (gRPC, Postgres); asyncio's pure-Python loop was a fifth of a service's CPU.
    uvloop.run(serve(arguments.role, arguments.config, arguments.worker, arguments.ready_file))


if __name__ == "__main__":
    main()
