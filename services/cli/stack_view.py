"""`clearing-admin stack up | status | down`: the local stack's life cycle, one stack per directory.

`stack up` claims its `--dir` (`services/stack/owner.py`) before it starts anything, so a second `stack up` on the
same directory is refused naming the first; `stack status` and `stack down` find that owner from another terminal.
`stack down` sends the owner SIGTERM, the same as Ctrl-C in its terminal: it stops every service and the embedded
Postgres, then exits, which releases the directory.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from clearing.money import format_yuan
from services.cli import online, output
from services.cli.online import operator
from services.security.identity import Identity
from services.stack.config import StackConfig
from services.stack.owner import OwnerInfo, StackBusy, StackOwner, running_owner

DOWN_WAIT_S = 90.0  # the owner's own stop waits up to 10 s for the services, then stops Postgres
HEALTH_TIMEOUT_S = 2.0


def busy_message(busy: StackBusy) -> str:
    owner = busy.owner or OwnerInfo()
    who = f"pid {owner.pid}, since {owner.since()}" if owner.pid else "still starting, pid not known yet"
    return (f"--dir: a stack is already running in {busy.work_dir} ({who}); see `clearing-admin stack status "
            f"--dir {busy.work_dir}`, stop it with `clearing-admin stack down --dir {busy.work_dir}`")


def not_running(work_dir: Path) -> str:
    return f"--dir: no stack is running in {work_dir} (start one with `clearing-admin stack up --dir {work_dir}`)"


def stack_up(work_dir: Path, members: int, seed: int, prepayment_fen: int, insecure: bool = False) -> None:
    """Claim the directory, start every service (mutual TLS with the certificates of `work_dir/certs`, made if need
    be; plaintext when `insecure`), import catalogues, enrol members, fund the prepayments and wait for Ctrl-C or
    SIGTERM (`stack down`), which stop everything and the embedded Postgres."""
    import grpc

    from services.common.status_text import domain_error_from_status
    from services.stack.database import exit_on_sigterm
    from services.stack.enrol import enrol_all, fund_prepayments
    from services.stack.processes import StackProcesses

    console = Console()
    operator()  # a bad --operator / $CLEARING_OPERATOR is an operator error before anything starts
    owner = StackOwner(work_dir)
    try:
        owner.claim()  # before anything starts or is written: a refused second stack touches nothing
    except StackBusy as busy:
        output.fail(busy_message(busy))
    exit_on_sigterm()  # from the first moment: a SIGTERM while starting still stops what was started

    failure: list[str] = []

    async def run() -> None:
        stack = StackProcesses(work_dir=work_dir, seed=seed, members_per_region=members, fresh=False,
                               insecure=insecure, operator=online.OPERATOR)
        try:
            try:
                with console.status("Starting the stack…"):
                    config = await stack.start()
                    owner.record_services({role: service.process.pid for role, service in stack.services.items()
                                           if service.process is not None})
                    await enrol_all({r: config.address(p) for r, p in config.region_ports.items()}, seed, members,
                                    transport=config.transport())
                    if prepayment_fen:
                        await fund_prepayments(config.address(config.clearing_house_port),
                                               list(config.region_ports), seed, prepayment_fen,
                                               transport=config.transport())
            except RuntimeError as error:  # a service that exited or never became healthy (names its log)
                failure.append(f"the stack did not start: {error}")
                return
            except grpc.aio.AioRpcError as error:
                failure.append(f"the stack did not start: enrolling failed: {domain_error_from_status(error)}")
                return
            table = Table(title=f"Stack up (config {stack.config_path})")
            table.add_column("party")
            table.add_column("address")
            for role, service in stack.services.items():
                table.add_row(role, service.address)
            console.print(table)
            if config.insecure:
                console.print("WARNING: --insecure: every party speaks plaintext gRPC, no caller is authenticated",
                              soft_wrap=True)
            else:
                console.print(f"Mutual TLS: certificates in {config.certs_dir}; clearing-admin calls as "
                              f"{operator().path}", soft_wrap=True)
            if prepayment_fen:
                console.print(f"Prepayments (预付金): {format_yuan(prepayment_fen)} ¥ deposited for each of the "
                              f"{len(config.region_ports)} insured regions (--prepayment-fen; deposited once per "
                              "directory and amount, a restart does not deposit it again).", soft_wrap=True)
            else:
                console.print("Prepayments (预付金) not funded (--prepayment-fen 0): every cross-region settlement is "
                              "flagged PREPAYMENT_EXHAUSTED until its insured region tops up.", soft_wrap=True)
            console.print(f"Press Ctrl-C to stop (or `clearing-admin stack down --dir {work_dir}`).", soft_wrap=True)
            sys.stdout.flush()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await stop.wait()
        finally:
            stack.stop()
            console.print("stopped")

    try:
        asyncio.run(run())
    finally:
        owner.release()
    if failure:
        output.fail(failure[0])


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def uptime_s(pid: int) -> float | None:
    """Seconds since `pid` started, or None when no such live process exists."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return max(0.0, time.time() - process.create_time())
    except psutil.Error:
        return None


async def service_health(address: str, config: StackConfig, identity: Identity) -> str:
    """`serving`, `not serving` or `no answer`, from the gRPC health check every service answers (called over the
    stack's transport, as the operator)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        async with config.transport().channel(address, identity) as channel:
            answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                                     timeout=HEALTH_TIMEOUT_S)
    except grpc.aio.AioRpcError:
        return "no answer"
    return "serving" if answer.status == health_pb2.HealthCheckResponse.SERVING else "not serving"


async def database_health(base_dsn: str) -> str:
    import asyncpg

    try:
        connection = await asyncpg.connect(base_dsn, timeout=HEALTH_TIMEOUT_S)
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError):
        return "no answer"
    try:
        await connection.fetchval("SELECT 1")
    finally:
        await connection.close()
    return "serving"


def status_document(work_dir: Path, owner: OwnerInfo) -> dict[str, Any]:
    """Every service of the running stack: role, port, metrics port, pid, uptime, health; and its database."""
    from services.stack.database import postmaster_of

    config_path = work_dir / "stack.json"
    starting = not owner.services or not config_path.exists()
    services: list[dict[str, Any]] = []
    database: dict[str, Any] = {}
    if not starting:
        config = StackConfig.load(config_path)
        roles = ["clearinghouse", "his", *(f"region:{region}" for region in sorted(config.region_ports))]
        identity = operator()

        async def probe() -> tuple[list[str], str]:
            return (await asyncio.gather(*(service_health(config.address(config.role_port(role)), config, identity) for role in roles)),
                    await database_health(config.base_dsn))

        healths, database_state = asyncio.run(probe())
        for role, health in zip(roles, healths, strict=True):
            pid = owner.services.get(role, 0)
            up = uptime_s(pid) if pid else None
            services.append({"role": role, "port": config.role_port(role),
                             "metrics_port": config.metrics_ports.get(role, 0), "pid": pid, "alive": up is not None,
                             "uptime_s": None if up is None else round(up), "health": health})
        postmaster = postmaster_of((work_dir / "pgdata").resolve()) if (work_dir / "pgdata").exists() else None
        up = uptime_s(postmaster) if postmaster else None
        database = {"kind": "embedded" if postmaster else "external (DATABASE_URL)", "pid": postmaster or 0,
                    "uptime_s": None if up is None else round(up), "health": database_state}
    owner_up = uptime_s(owner.pid) if owner.pid else None
    healthy = not starting and all(item["health"] == "serving" for item in services) \
        and database.get("health") == "serving"
    return {"dir": str(work_dir), "state": "starting" if starting else "running", "healthy": healthy,
            "owner": {"pid": owner.pid, "started_at": owner.started_at,
                      "uptime_s": None if owner_up is None else round(owner_up)},
            "services": services, "database": database}


def stack_status(work_dir: Path, as_json: bool) -> int:
    """Print the running stack's services; exit code 0 when every one is serving, 1 otherwise."""
    owner = running_owner(work_dir)
    if owner is None:
        output.fail(not_running(work_dir))
    document = status_document(work_dir, owner)
    if as_json:
        output.print_json(document)
    else:
        show_status(output.console(), document, owner)
    return 0 if document["healthy"] else 1


def show_status(console: Console, document: dict[str, Any], owner: OwnerInfo) -> None:
    console.print(f"Stack in {document['dir']}: owner pid {owner.pid or '?'} (`clearing-admin stack up`), "
                  f"since {owner.since()}, up {duration(document['owner']['uptime_s'])}", soft_wrap=True)
    if document["state"] == "starting":
        console.print("starting: the services are not up yet")
        return
    table = output.table("Services", "service", "port", "metrics", "pid", "uptime", "health",
                         numeric=("port", "metrics", "pid", "uptime"))
    for item in document["services"]:
        table.add_row(item["role"], str(item["port"]), str(item["metrics_port"] or "—"), str(item["pid"] or "?"),
                      duration(item["uptime_s"]),
                      item["health"] if item["alive"] else f"{item['health']} (process gone)")
    database = document["database"]
    table.add_section()
    table.add_row(f"postgres ({database['kind']})", "", "", str(database["pid"] or "—"), duration(database["uptime_s"]),
                  database["health"])
    console.print(table)
    console.print("every service is serving" if document["healthy"] else "NOT every service is serving")


def stack_down(work_dir: Path, wait_s: float = DOWN_WAIT_S) -> None:
    """SIGTERM the stack's owner (as Ctrl-C in its terminal would), wait until it has stopped everything, report."""
    from services.stack.database import postmaster_of

    owner = running_owner(work_dir)
    if owner is None:
        output.fail(not_running(work_dir))
    if not owner.pid:
        output.fail(f"--dir: the stack in {work_dir} is still starting and has not written its pid yet; try again")
    started = time.monotonic()
    try:
        os.kill(owner.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # it ended on its own meanwhile
    while running_owner(work_dir) is not None:
        if time.monotonic() - started > wait_s:
            output.fail(f"--dir: the stack in {work_dir} (pid {owner.pid}) did not stop within {wait_s:.0f} s; "
                        f"see {work_dir / 'logs'}")
        time.sleep(0.2)
    while uptime_s(owner.pid) is not None and time.monotonic() - started < wait_s:
        time.sleep(0.1)  # the lock goes with the owner's last cleanup; its exit follows
    survivors = sorted(role for role, pid in owner.services.items() if uptime_s(pid) is not None)
    pgdata = work_dir / "pgdata"
    postgres = postmaster_of(pgdata.resolve()) if pgdata.exists() else None
    if survivors or postgres:
        left = [*survivors, *([f"postgres pid {postgres}"] if postgres else [])]
        output.fail(f"--dir: the stack's owner (pid {owner.pid}) exited but left running: {', '.join(left)}")
    stopped_at = datetime.now(UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    print(f"stopped the stack in {work_dir}: owner pid {owner.pid} (up since {owner.since()}), "
          f"{len(owner.services)} services and its Postgres, in {time.monotonic() - started:.1f} s; {stopped_at}")
