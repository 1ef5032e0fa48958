"""One harness run: `run(seed, duration_s, faults, concurrency) -> Report`.

1. Start the stack as processes on a fresh embedded Postgres, with every link through a proxy:
   HIS (this process) → treating agency, treating agency → clearing house, clearing house → insured
   agency (StackConfig.dial). Import catalogues, enrol members, fund prepayments (links clean). Every link is
   mutual TLS (the stack's certificates; the HIS dials as each hospital); the proxies forward TCP, so the TLS
   passes through them untouched (plaintext with `insecure`).
2. For `duration_s`: discharge patients concurrently while chaos SIGKILLs and restarts services and
   the proxies cut and delay (when `faults`).
   The HIS resends an unknown settlement, reverses it (冲正), or — for a share — walks away from it.
3. Stop the faults (proxies clean, every service up), let the discharges in flight finish, resolve
   every unknown settlement and cancel the HIS still pursues (settle down).
3a. Dispute a share of the settled cross-region stays (services/faults/disputes.py) while the faults run again,
   then finish the disputes on clean links; every treating agency books its deductions (扣款).
4. Reconcile every day of the run between every pair of neighbours (services/faults/recovery.py):
   what the HIS walked away from, and anything a crash left half-done, is repaired.
5. Check the invariants against every party's database.

A seed fixes the discharges (who, where, which bill, which are cancelled), the chaos schedule and
the proxies' draws; how those meet in time differs from run to run, so two runs of one seed inject
the same kind and amount of trouble, not byte-identical histories.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from services.common.regions import load_regions
from services.faults import recovery
from services.faults.chaos import Chaos
from services.faults.disputes import Disputer, dispute_under_faults
from services.faults.disputes import plan as plan_disputes
from services.faults.driver import Driver, DriverSettings, Reverser
from services.faults.invariants import check_all
from services.faults.journal import Intent, Journal, Outcome
from services.faults.proxy import FaultProxy, FaultRates
from services.faults.report import Report
from services.stack.enrol import enrol_region, fund_prepayments
from services.stack.processes import StackProcesses

MEMBERS_PER_REGION = 40  # few members, so concurrent stays of one member meet at the insured agency
PREPAYMENT_FEN = 50_000_000_00  # 5 million yuan per insured region
DISPUTE_WINDOW_S = 15.0  # the dispute phase's faults last this long at most (the run's duration if shorter)

Reconciler = Callable[[StackProcesses, Journal], Awaitable[int]]


class Links:
    """The proxies of one run, by link name (`his→440100`, `treating→clearinghouse`, `clearinghouse→440100`)."""

    def __init__(self, seed: int, rates: FaultRates, reserved_ports: set[int]) -> None:
        self.seed = seed
        self.rates = rates
        self.reserved_ports = reserved_ports  # chosen for the services, not bound until they start
        self.proxies: dict[str, FaultProxy] = {}

    async def add(self, name: str, target_port: int) -> str:
        proxy = FaultProxy(name, "127.0.0.1", target_port, random.Random(f"proxy:{self.seed}:{name}"), self.rates)
        self.proxies[name] = proxy
        address = await proxy.start()
        while proxy.port in self.reserved_ports:  # the kernel may hand out a port a service is about to bind
            await proxy.close()
            address = await proxy.start()
        return address

    def set_faulty(self, faulty: bool) -> None:
        for proxy in self.proxies.values():
            proxy.faulty = faulty

    async def close(self) -> None:
        for proxy in self.proxies.values():
            await proxy.close()

    def total(self, counter: str) -> int:
        return sum(getattr(proxy.counts, counter) for proxy in self.proxies.values())


async def run(seed: int, duration_s: float, faults: bool = True, concurrency: int = 12, *,
              members_per_region: int = MEMBERS_PER_REGION, rates: FaultRates = FaultRates(),  # noqa: B008
              chaos_gap_s: tuple[float, float] = (2.0, 5.0), settings: DriverSettings | None = None,
              reconciler: Reconciler = recovery.reconcile, reverser: Reverser | None = recovery.reverse,
              work_dir: Path | None = None, keep_work_dir: bool = False,
              on_phase: Callable[[str], None] | None = None, insecure: bool = False) -> Report:
    started = time.monotonic()
    phase = on_phase or (lambda text: None)
    settings = replace(settings or DriverSettings(), concurrency=concurrency)
    work_dir = work_dir or Path(tempfile.mkdtemp(prefix="clearing-faults-"))
    stack = StackProcesses(work_dir=work_dir, seed=seed, members_per_region=members_per_region, insecure=insecure)
    links: Links | None = None
    report = Report(seed=seed, duration_s=duration_s, faults=faults, concurrency=concurrency)
    try:
        phase("starting the stack behind proxies")
        config = await stack.prepare()
        links = Links(seed, rates, {service.port for service in stack.services.values()} | set(config.metrics_ports.values()))
        regions = sorted(config.region_ports)
        dial = {"clearinghouse": await links.add("treating→clearinghouse", config.clearing_house_port)}
        for region in regions:
            dial[f"region:{region}"] = await links.add(f"clearinghouse→{region}", config.region_ports[region])
        his_addresses = {region: await links.add(f"his→{region}", config.region_ports[region]) for region in regions}
        stack.dial_through(dial)
        await stack.launch()
        transport = config.transport()
        phase("importing catalogues, enrolling members, funding prepayments")
        await asyncio.gather(*(enrol_region(config.address(config.region_ports[region]), region, seed,
                                            members_per_region, transport=transport) for region in regions))
        await fund_prepayments(config.address(config.clearing_house_port), regions, seed, PREPAYMENT_FEN,
                               transport=transport)

        journal = Journal()
        chaos = Chaos(stack, "clearinghouse", [f"region:{region}" for region in regions],
                      random.Random(f"chaos:{seed}"), gap_s=chaos_gap_s)
        async with Driver(seed, load_regions(), members_per_region, his_addresses, journal, settings,
                          reverser, transport=transport) as driver:
            phase(f"discharging for {duration_s:g} s" + (" with faults" if faults else ""))
            await discharge_under_faults(driver, chaos, links, duration_s, faults, phase)

        # The operators' dispute calls reach the clearing house through a proxy of their own, cut and delayed too.
        disputer = Disputer(config, transport, plan_disputes(journal, seed),
                            await links.add("operator→clearinghouse", config.clearing_house_port))
        phase(f"disputing {len(disputer.planned)} settlements" + (" with faults" if faults else ""))
        counts = await dispute_under_faults(disputer, chaos, links, min(DISPUTE_WINDOW_S, duration_s), faults, phase)
        report.disputes, report.dispute_retries = counts.planned, counts.retries
        report.disputes_refused = counts.refused
        report.dispute_states = counts.done

        phase("reconciling")
        report.repairs = await reconciler(stack, journal)
        phase("checking invariants")
        report.invariants = await check_all(config, journal)
        fill_counts(report, journal, driver, chaos, links)
    finally:
        phase("stopping the stack")
        if links is not None:
            await links.close()
        stack.stop()
        phase("stopped")
        report.elapsed_s = time.monotonic() - started
        if report.ok and not keep_work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
        else:
            report.work_dir = str(work_dir)
    return report


async def discharge_under_faults(driver: Driver, chaos: Chaos, links: Links, duration_s: float, faults: bool,
                                 phase: Callable[[str], None]) -> None:
    """Discharge for `duration_s` while chaos kills and the proxies cut (when `faults`); then stop the
    faults, let the discharges in flight finish on clean links with every service up, and settle down."""
    stop_discharging, stop_chaos = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(driver.run(stop_discharging))]
    if faults:
        tasks.append(asyncio.create_task(chaos.run(stop_chaos)))
    links.set_faulty(faults)
    try:
        done, _ = await asyncio.wait(tasks, timeout=duration_s, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # neither ends on its own before it is told to: this raises what broke it
        phase("stopping faults and settling down")
        links.set_faulty(False)
        stop_chaos.set()  # the restart under way, if any, is finished first
        stop_discharging.set()
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()  # only matters when something broke
        await asyncio.gather(*tasks, return_exceptions=True)
    await chaos.heal()
    phase(f"settling down: {len(driver.journal.unresolved())} requests of unknown fate to resolve")
    await driver.settle_down()


def fill_counts(report: Report, journal: Journal, driver: Driver, chaos: Chaos, links: Links) -> None:
    entries = list(journal.entries.values())
    report.discharges = driver.counts.discharges
    report.abandoned = driver.counts.abandoned
    report.visits = driver.counts.visits
    report.attempted = len(entries)
    report.succeeded = journal.count(Outcome.SUCCEEDED)
    report.failed = journal.count(Outcome.FAILED)
    report.cancelled = journal.count(Outcome.CANCELLED)
    report.reversed = journal.count(Outcome.REVERSED)
    report.unknown = journal.count(Outcome.UNKNOWN)
    report.walked_away = sum(1 for entry in entries if entry.intent is Intent.ABANDON)  # before or after repair
    report.resolved_after_unknown = sum(1 for entry in entries if entry.resolved_after_unknown)
    report.local = sum(1 for entry in entries if entry.local)
    report.kills = chaos.counts.kills
    report.kills_by_role = dict(chaos.counts.by_role)
    report.cuts = links.total("cuts")
    report.delays = links.total("delays")
    report.stalls = links.total("stalls")
    report.refused_connections = links.total("refused")
    report.codes = dict(journal.codes)
