"""One run of the load harness, start to finish (see services/loadtest/__init__.py for what it decides).

Order: the core line (before anything else runs); the database; the stack's processes, catalogues, members and
prepayments, while the load generators build their discharges; warm-up and the fixed-rate window in one open-loop
run; the saturation window; the stack stopped; the floor, empty then with rows, each at saturation; the report.
Every process it starts is stopped in a `finally`, whatever happens.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Awaitable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console

from services.common.clock import shanghai_today
from services.common.regions import load_regions
from services.common.smart_audit import write_warning_libraries
from services.loadtest import dbstat, procstat, report
from services.loadtest.core import core_line
from services.loadtest.fleet import Fleet
from services.loadtest.floor import FloorStack
from services.loadtest.settings import RAMP_S, REPOSITORY, Settings
from services.stack.database import Database
from services.stack.enrol import enrol_all, fund_prepayments
from services.stack.processes import StackProcesses

PREPAYMENT_FEN = 10**12  # bottomless, as in the tests: the bench measures settling, not running out
# Stays are admitted in the first two weeks of a month and last at most 15 nights: a month that began at least
# this long ago has every discharge in the past (the agencies refuse a future one).
MONTH_AGE_DAYS = 45


def bench_month(today: date) -> date:
    """The first day of the month the discharges are admitted in."""
    return (today - timedelta(days=MONTH_AGE_DAYS)).replace(day=1)


async def postmaster_pid(base_dsn: str) -> int | None:
    """The pid of the local Postgres server behind `base_dsn` (a backend's parent); None for a remote server."""
    connection = await asyncpg.connect(base_dsn)
    try:  # read while the backend lives
        stat = procstat.read_stat(await connection.fetchval("SELECT pg_backend_pid()"))
    finally:
        await connection.close()
    if stat is None:  # no such local process: the server is elsewhere
        return None
    try:
        name = (procstat.PROC / str(stat.ppid) / "comm").read_text().strip()
    except OSError:
        return None
    return stat.ppid if name.startswith("postgres") else None


async def sleep_until(instant: float) -> None:
    await asyncio.sleep(max(0.0, instant - time.monotonic()))


async def measured(phase: Awaitable[dict[str, Any]], watched: list[procstat.Watched], measure_from: float,
                   measure_to: float, stack_names: list[str], base_dsn: str,
                   databases: dict[str, str]) -> dict[str, Any]:
    """Run a phase; take the CPU of every watched process and the counters of every database (party → name) when
    its window opens and when it closes."""
    task = asyncio.ensure_future(phase)
    await sleep_until(measure_from)
    before, opened = procstat.cpu_snapshot(watched), time.monotonic()
    db_before = await dbstat.snapshot(base_dsn, databases)
    await sleep_until(measure_to)
    after, closed = procstat.cpu_snapshot(watched), time.monotonic()
    db_after = await dbstat.snapshot(base_dsn, databases)
    tally = await task
    # Counts are of the nominal window, CPU of the snapshots' (this loop may wake late on a busy machine).
    summary = report.phase_summary(tally, measure_to - measure_from, procstat.cpu_seconds_between(before, after),
                                   stack_names, cpu_window_s=closed - opened)
    summary["snapshot_lag_ms"] = round(max(opened - measure_from, closed - measure_to) * 1000, 1)
    summary["db_per_settlement"] = dbstat.per_settlement(db_before, db_after, tally["settled"])
    return summary


def peak_rss_mb(watched: list[procstat.Watched]) -> dict[str, float | None]:
    return {item.name: None if (kb := item.peak_rss_kb()) is None else round(kb / 1024, 1) for item in watched}


async def run_stack(settings: Settings, stack: StackProcesses, fleet: Fleet, postgres: int | None, console: Console,
                    meanwhile: Awaitable[None]) -> tuple[dict[str, Any], dict[str, Any], dict[str, float | None]]:
    """Start and seed the prepared stack (and run `meanwhile` alongside), then its two phases; returns them and every
    process's peak RSS."""
    started = time.monotonic()
    assert stack.config is not None
    config = stack.config
    month = bench_month(shanghai_today())
    templates = asyncio.ensure_future(fleet.init(settings.seed, settings.templates, settings.members_per_region,
                                                 month.isoformat(), settings.lines_mean, config.certs_dir))
    try:
        await stack.launch()
        transport = config.transport()
        regions = {region: config.address(port) for region, port in config.region_ports.items()}
        await asyncio.gather(enrol_all(regions, settings.seed, settings.members_per_region, transport=transport),
                             meanwhile)
        await fund_prepayments(config.address(config.clearing_house_port), sorted(regions), settings.seed,
                               PREPAYMENT_FEN, transport=transport)
    finally:
        count = await templates  # never left running, even when the stack failed to start
    console.print(f"stack up and seeded in {time.monotonic() - started:.1f} s ({settings.members_per_region} members "
                  f"per region); {count} discharges ready (admitted in {month:%Y-%m})")
    await fleet.connect(regions)
    watched = [procstat.Watched(role, service.process.pid) for role, service in stack.services.items()
               if service.process is not None]
    stack_names = [item.name for item in watched]
    if postgres is not None:
        watched.append(procstat.Watched("postgres", postgres, tree=True))
        stack_names.append("postgres")
    watched += [procstat.Watched(f"loadgen:{index}", pid) for index, pid in enumerate(fleet.pids)]
    start_at, measure_from, measure_to = fleet.window(settings.warmup_s, settings.duration_s)
    console.print(f"fixed rate {settings.rate_per_s:g}/s: {settings.warmup_s:g} s warm-up, {settings.duration_s:g} s "
                  "measured")
    databases = {party: config.database(party) for party in config.parties()}
    rate = await measured(fleet.open_loop(settings.rate_per_s, settings.in_flight_max, start_at, measure_from,
                                          measure_to), watched, measure_from, measure_to, stack_names,
                          config.base_dsn, databases)
    start_at, measure_from, measure_to = fleet.window(RAMP_S, settings.duration_s)
    console.print(f"saturation, {settings.clients} clients: {settings.duration_s:g} s measured")
    saturation = await measured(fleet.closed_loop(settings.clients, start_at, measure_from, measure_to), watched,
                                measure_from, measure_to, stack_names, config.base_dsn, databases)
    return rate, saturation, peak_rss_mb(watched)


async def run_floor(settings: Settings, floor: FloorStack, fleet: Fleet, postgres: int | None,
                    console: Console) -> dict[str, dict[str, Any]]:
    """Both floor modes in one set of floor processes, each at saturation; returns them by mode."""
    try:
        started = time.monotonic()
        addresses = await floor.start()
        await fleet.connect(addresses)
        watched = [procstat.Watched(f"floor:{role}", process.pid) for role, process in floor.processes.items()]
        if postgres is not None:
            watched.append(procstat.Watched("postgres", postgres, tree=True))
        names = [item.name for item in watched]
        watched += [procstat.Watched(f"loadgen:{index}", pid) for index, pid in enumerate(fleet.pids)]
        console.print(f"floor up in {time.monotonic() - started:.1f} s")
        results = {}
        for mode in ("empty", "rows"):
            await floor.set_mode(mode)
            console.print(f"floor ({mode}), {settings.clients} clients: {settings.floor_warmup_s:g} s warm-up, "
                          f"{settings.floor_duration_s:g} s measured")
            start_at, measure_from, measure_to = fleet.window(settings.floor_warmup_s, settings.floor_duration_s)
            results[mode] = await measured(fleet.closed_loop(settings.clients, start_at, measure_from, measure_to),
                                           watched, measure_from, measure_to, names, floor.base_dsn, floor.databases)
        rss_mb = peak_rss_mb(watched)
        for result in results.values():
            result["rss_mb"] = rss_mb
        return results
    finally:
        floor.stop()
        await floor.drop_databases()


async def drop_stack_databases(stack: StackProcesses, base_dsn: str) -> None:
    if stack.config is None:
        return
    connection = await asyncpg.connect(base_dsn)
    try:
        for party in stack.config.parties():
            await connection.execute(f'DROP DATABASE IF EXISTS "{stack.config.database(party)}" WITH (FORCE)')
    finally:
        await connection.close()


def stack_workers(count: int) -> dict[str, int]:
    """`count` processes for the clearing house and every region (the HIS simulator is not in the measured path)."""
    if count == 1:
        return {}
    return {"clearinghouse": count, **{f"region:{region}": count for region in load_regions()}}


async def run(settings: Settings, database: Database | None = None, console: Console | None = None,
              work_dir: Path | None = None) -> dict[str, Any]:
    """The whole harness; writes `settings.json_path`, appends to `settings.markdown_path`, returns the report.
    `database`: a running server to borrow (the test session's); by default one of its own in `work_dir`."""
    if console is None:
        console = Console()
        if not console.is_terminal:  # a log file: wide enough for the tables
            console = Console(width=150)
    started_at, started = datetime.now(UTC), time.monotonic()
    core = core_line(settings.core_bills)  # first: nothing of ours is running yet
    console.print(f"core line in {time.monotonic() - started:.1f} s")
    own_work_dir = work_dir is None
    work_dir = work_dir or Path(tempfile.mkdtemp(prefix="clearing-loadtest-"))
    owned = Database(work_dir / "pgdata") if database is None else None
    database = database or owned
    assert database is not None
    fleet = Fleet(settings.drivers, work_dir / "logs" / "loadgen.log")
    stack = StackProcesses(work_dir=work_dir / "stack", seed=settings.seed,
                           members_per_region=settings.members_per_region, database=database,
                           insecure=settings.insecure, workers=stack_workers(settings.workers),
                           # Ready-made discharges are replayed, so members' stays overlap by construction: smart
                           # audit runs every rule and records its findings, and refuses none.
                           audit_rules_dir=str(write_warning_libraries(work_dir / "audit_rules")))
    finished = False
    try:
        postgres = await postmaster_pid(database.base_dsn)
        await fleet.start()
        config = await stack.prepare()
        floor = FloorStack(work_dir / "floor", config.certs_dir, database.base_dsn, config.database_prefix)
        try:  # the floor's databases are made while the stack is seeded, before anything is measured
            rate, saturation, rss_mb = await run_stack(settings, stack, fleet, postgres, console,
                                                       floor.create_databases())
        finally:
            stopping = time.monotonic()
            stack.stop()  # the database is borrowed by the stack: it stays up for the floor
            console.print(f"stack stopped in {time.monotonic() - stopping:.1f} s")
        floors = await run_floor(settings, floor, fleet, postgres, console)
        finished = True
    finally:
        await fleet.stop()
        stack.stop()
        if owned is not None:
            owned.stop()
        else:
            await drop_stack_databases(stack, database.base_dsn)
        if own_work_dir and finished:
            shutil.rmtree(work_dir, ignore_errors=True)
        elif not finished:
            console.print(f"the run failed; its logs are in {work_dir}")
    result = report.build_report(
        settings=settings.to_json(), rate=rate, saturation=saturation, floor_empty=floors["empty"],
        floor_rows=floors["rows"], core=core, rss_mb=rss_mb, commit=report.git_commit(REPOSITORY),
        machine_info=report.machine(), elapsed_s=time.monotonic() - started, started_at=started_at)
    report.write_json(settings.json_path, result)
    row = report.append_markdown(settings.markdown_path, result)
    report.print_report(console, result)
    console.print(f"wrote {settings.json_path}; appended to {settings.markdown_path}:\n{row.rstrip()}")
    return result
