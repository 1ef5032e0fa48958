"""`clearing-admin simulate`: run the fault harness (services/faults) and print its report.

Exit code 0 when every invariant holds, 1 when one fails (each failing invariant is listed with its
offending ids; the run's directory with every service's log is kept and named).
"""

from __future__ import annotations

import asyncio
import sys
import time

from rich.console import Console

from services.cli import output
from services.faults.report import Report

EXIT_INVARIANT_FAILED = 1


def simulate(seed: int, faults: bool, duration_s: float, concurrency: int, members: int, keep: bool,
             as_json: bool, insecure: bool = False) -> None:
    from services.cli.demo import exit_on_sigterm
    from services.faults.harness import run

    exit_on_sigterm()  # a SIGTERM unwinds the run, so its services and Postgres are stopped
    width = None if sys.stdout.isatty() else 110
    console = Console(width=width, highlight=False, markup=False, emoji=False)
    progress = Console(width=width, highlight=False, markup=False, emoji=False, stderr=as_json)
    started = time.monotonic()

    def phase(text: str) -> None:
        progress.print(f"[{time.monotonic() - started:6.1f} s] {text}")

    report = asyncio.run(run(seed, duration_s, faults, concurrency, members_per_region=members, keep_work_dir=keep,
                             on_phase=phase, insecure=insecure))
    if as_json:
        output.print_json(report.as_json())
    else:
        show_report(console, report)
    raise SystemExit(exit_code(report))


def exit_code(report: Report) -> int:
    return 0 if report.ok else EXIT_INVARIANT_FAILED


def show_report(console: Console, report: Report) -> None:
    counts = output.table("Fault harness run", "figure", "value")
    for label, value in report.counts():
        counts.add_row(label, value)
    console.print(counts)
    checks = output.table("Invariants", "invariant", "rule", "checked", "failed", "result", numeric=("checked", "failed"))
    for check in report.invariants:
        checks.add_row(check.name, check.rule, str(check.checked), str(check.failed), "ok" if check.ok else "FAILED")
    console.print(checks)
    for check in report.failing():
        console.print(f"{check.name} FAILED for {check.failed}:")
        for failure in check.failures:
            console.print(f"  {failure}")
        if check.failed > len(check.failures):
            console.print(f"  … and {check.failed - len(check.failures)} more")
    if report.work_dir:
        console.print(f"run directory kept (service logs in logs/): {report.work_dir}")
    console.print("every invariant holds" if report.ok else "INVARIANT FAILED")
