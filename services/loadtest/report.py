"""The harness's results: `var/bench/latest.json`, a row of `docs/benchmarks.md`, and the tables it prints.

The JSON nests the dotted names of the issue: `stack.settlements_per_s` is `{"stack": {"settlements_per_s": …}}`.
Its headline figures, and where they come from:

* `stack.settlements_per_s` — settlements per second at saturation (closed loop);
* `stack.p50_ms`, `stack.p95_ms`, `stack.p99_ms`, `stack.max_ms` — Settle as the HIS sees it, at the fixed offered
  rate (`stack.rate.offered_per_s`);
* `stack.cpu_ms_per_settlement` — CPU of every stack process and Postgres per settlement, at saturation
  (`stack.saturation.cpu_ms_per_settlement` has each process; the load generators are not counted);
* `floor.settlements_per_s` — the floor with rows written (`floor.rows`), at saturation; `floor.empty` the floor
  with empty handlers; `ratio` the stack over each floor (throughput: the share of the floor reached; CPU: how
  many times the floor's CPU per settlement the stack spends);
* `core.bills_per_s_per_core` — the pure core's quote (classify + adjudicate) per CPU second;
* `rss_mb` — each process's peak resident set (VmHWM) over the whole run, in MB;
* `commit` — `git rev-parse HEAD`, `-dirty` when the work tree has changes.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from services.loadtest import dbstat
from services.loadtest.stats import summary_ms

BENCHMARKS_TABLE = "docs/benchmarks.md"
MARKDOWN_HEADER = """# Benchmarks

One row per `make bench` run (`services/loadtest`, `services/bench.py`): the stack as real processes over mutual
TLS, driven by HIS clients that discharge ~50-line bills (80 % cross-region) straight at the treating agencies.
Numbers from a shared 2-core machine are noisy; compare rows of one machine. The whole result of the last run
is in `var/bench/latest.json` (not committed): both phases, every process, the floor, Postgres's commits and rows
per settlement, each step's latency.

How to run: `make bench` (3–5 minutes on 2 cores, the 1 M month close included). Every knob is an environment
variable or a flag of `python -m services.loadtest` (`--help`): `BENCH_DURATION_S` (12), `BENCH_WARMUP_S` (4),
`BENCH_RATE` (200), `BENCH_IN_FLIGHT_MAX` (160), `BENCH_CLIENTS` (48), `BENCH_DRIVERS` (2), `BENCH_MEMBERS` (100),
`BENCH_LINES` (50), `BENCH_FLOOR_DURATION_S` (6), `BENCH_CORE_BILLS` (2000), `BENCH_JSON`, `BENCH_MARKDOWN`,
`BENCH_INSECURE=1` (plaintext, to see what TLS costs). Commit the row with the change it measures.

What the harness decides (the details are in `services/loadtest/__init__.py`):
* **Fixed rate** (open loop): discharges start on a schedule at `BENCH_RATE` per second whatever the stack
  answers, after `BENCH_WARMUP_S` of the same, with at most `BENCH_IN_FLIGHT_MAX` in flight (a start beyond is
  dropped and counted as behind: without a cap a slow stack drowns in retries and settles almost nothing);
  **saturation** (closed loop): `BENCH_CLIENTS` clients discharge back to back. Each is measured for
  `BENCH_DURATION_S`. A discharge is Admit, UploadCharges in batches of 25 lines and Settle; it counts when its
  Settle ends in the window.
* **Latency** is Settle's, as the HIS sees it (retries included), in ms; percentiles are nearest-rank.
* **CPU** is utime + stime from `/proc` over the window, of every stack process and of Postgres (postmaster and
  backends), per settlement; the load generators' own CPU is reported apart and not counted.
* **The floor** is measured in the same run, on the same database server, after the stack is stopped: the same
  processes, hops and TLS with handlers that only make the downstream calls (*empty*), and the same again writing
  the rows a discharge writes at each party in one raw asyncpg transaction per party per call (*rows*,
  `services/loadtest/floor_rows.py`), both at saturation.

Columns: **date** (UTC) · **commit** (`-dirty`: uncommitted changes other than this file) · **machine** (cores ×
CPU model, memory, Python) · **settl./s** at saturation · **p50 / p99 ms** of Settle at the fixed rate (its offered
rate in brackets) · **CPU ms/settl.** of the stack and Postgres at saturation · **floor/s**: the floor with rows at
saturation · **ratio**: settl./s over floor/s · **max RSS MB**: the largest peak resident set of a stack process
(Postgres and the generators excluded) · **core bills/s**: the pure core's quotes per CPU second.

| date | commit | machine | settl./s | p50 / p99 ms (at rate) | CPU ms/settl. | floor/s | ratio | max RSS MB | core bills/s |
|---|---|---|---|---|---|---|---|---|---|
"""


def git_commit(repository: Path) -> str:
    """HEAD's hash, with `-dirty` when tracked files differ from it — except the benchmarks table itself, which
    every run appends to (so a run after a run is not dirty for that); `unknown` outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repository, capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                  f":!{BENCHMARKS_TABLE}"], cwd=repository, capture_output=True, text=True,
                                 check=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if changed else head


def cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "model name":
            return value.strip()
    return platform.processor() or "unknown CPU"


def memory_mb(meminfo: str) -> int | None:
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return None


def machine() -> dict[str, Any]:
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    return {"cores": os.cpu_count(), "cpu_model": cpu_model(read("/proc/cpuinfo")),
            "memory_mb": memory_mb(read("/proc/meminfo")), "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}", "executable": sys.executable}


def describe_machine(item: dict[str, Any]) -> str:
    memory = f", {item['memory_mb'] / 1024:.0f} GB" if item.get("memory_mb") else ""
    return f"{item['cores']}× {item['cpu_model']}{memory}, Python {item['python']}"


def phase_summary(tally: dict[str, Any], wall_s: float, cpu_s: dict[str, float | None],
                  stack_names: list[str], cpu_window_s: float | None = None) -> dict[str, Any]:
    """One measured window of `wall_s`: rates, Settle latency, what went wrong, CPU per settlement per process
    (`cpu_window_s`: how long the CPU was measured over, when not exactly the window)."""
    settled = tally["settled"]
    per_settlement = {name: None if used is None else round(used * 1000 / settled, 3) if settled else None
                      for name, used in cpu_s.items()}
    stack_cpu = [cpu_s[name] for name in stack_names if cpu_s.get(name) is not None]
    result: dict[str, Any] = {
        "window_s": round(wall_s, 3),
        "settlements_per_s": round(settled / wall_s, 2),
        "settled": settled,
        "refused": tally["refused"],
        "failed": tally["failed"],
        "errors": tally["errors"],
        "latency": summary_ms(tally["settle_ms"]),
        "discharge_latency": summary_ms(tally["discharge_ms"]),
        "step_latency": {step: summary_ms(values) for step, values in tally["step_ms"].items()},
        "lines_per_bill": round(tally["lines"] / settled, 1) if settled else None,
        "cross_region_pct": round(100 * tally["cross_region"] / settled, 1) if settled else None,
        "in_flight_max": tally["in_flight_max"],
        "unfinished": tally["unfinished"],
        "cpu_s": {name: None if used is None else round(used, 3) for name, used in cpu_s.items()},
        "cpu_ms_per_settlement": per_settlement,
        "cpu_ms_per_settlement_total": round(sum(stack_cpu) * 1000 / settled, 3) if settled and stack_cpu else None,
        "cores_busy": round(sum(stack_cpu) / (cpu_window_s or wall_s), 2) if stack_cpu else None,
    }
    if tally["offered"]:
        result.update(offered=tally["offered"], offered_per_s=round(tally["offered"] / wall_s, 2),
                      behind=tally["offered"] - tally["offered_done"], late_starts=tally["late_starts"],
                      dropped=tally["dropped"])
    return result


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 3) if numerator and denominator else None


def build_report(*, settings: dict[str, Any], rate: dict[str, Any], saturation: dict[str, Any],
                 floor_empty: dict[str, Any], floor_rows: dict[str, Any], core: dict[str, Any],
                 rss_mb: dict[str, float | None], commit: str, machine_info: dict[str, Any],
                 elapsed_s: float, started_at: datetime) -> dict[str, Any]:
    latency = rate["latency"]
    stack = {
        "settlements_per_s": saturation["settlements_per_s"],
        "p50_ms": latency.get("p50_ms"), "p95_ms": latency.get("p95_ms"), "p99_ms": latency.get("p99_ms"),
        "max_ms": latency.get("max_ms"),
        "cpu_ms_per_settlement": saturation["cpu_ms_per_settlement_total"],
        "rate": rate, "saturation": saturation,
    }
    floor = {"settlements_per_s": floor_rows["settlements_per_s"],
             "cpu_ms_per_settlement": floor_rows["cpu_ms_per_settlement_total"],
             "empty_settlements_per_s": floor_empty["settlements_per_s"],
             "empty_cpu_ms_per_settlement": floor_empty["cpu_ms_per_settlement_total"],
             "rows": floor_rows, "empty": floor_empty}
    return {
        "stack": stack,
        "floor": floor,
        "ratio": {"settlements_per_s": ratio(stack["settlements_per_s"], floor["settlements_per_s"]),
                  "settlements_per_s_vs_empty": ratio(stack["settlements_per_s"], floor["empty_settlements_per_s"]),
                  "cpu_ms_per_settlement": ratio(stack["cpu_ms_per_settlement"], floor["cpu_ms_per_settlement"]),
                  "cpu_ms_per_settlement_vs_empty": ratio(stack["cpu_ms_per_settlement"],
                                                          floor["empty_cpu_ms_per_settlement"])},
        "core": core,
        "rss_mb": rss_mb,
        "commit": commit,
        "machine": machine_info,
        "date": started_at.astimezone(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed_s, 1),
        "settings": settings,
    }


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    temporary.replace(path)  # a reader never sees half a file


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def setup_note(report: dict[str, Any]) -> str:
    """What the run changed from the production setup, for the commit cell: processes per role, plaintext."""
    settings = report.get("settings", {})
    notes = []
    if settings.get("workers", 1) > 1:
        notes.append(f"{settings['workers']} processes per party")
    if settings.get("insecure"):
        notes.append("plaintext")
    return f" ({', '.join(notes)})" if notes else ""


def markdown_row(report: dict[str, Any]) -> str:
    stack, floor = report["stack"], report["floor"]
    service_rss = [mb for name, mb in report["rss_mb"].items()
                   if mb is not None and name != "postgres" and not name.startswith("loadgen")]
    cells = [
        report["date"][:16].replace("T", " "),
        f"`{report['commit'][:12]}{'-dirty' if report['commit'].endswith('-dirty') else ''}`" + setup_note(report),
        describe_machine(report["machine"]),
        fmt(stack["settlements_per_s"]),
        f"{fmt(stack['p50_ms'])} / {fmt(stack['p99_ms'])} ({fmt(stack['rate'].get('offered_per_s'), 0)}/s)",
        fmt(stack["cpu_ms_per_settlement"]),
        fmt(floor["settlements_per_s"]),
        fmt(report["ratio"]["settlements_per_s"], 2),
        fmt(max(service_rss) if service_rss else None, 0),
        fmt(report["core"].get("bills_per_s_per_core"), 0),
    ]
    return "| " + " | ".join(cells) + " |\n"


def append_markdown(path: Path, report: dict[str, Any]) -> str:
    """Append the run's row to `path`, creating the file with its header when missing; returns the row."""
    row = markdown_row(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(MARKDOWN_HEADER, encoding="utf-8")
    with path.open("a", encoding="utf-8") as table:
        table.write(row)
    return row


def print_report(console: Console, report: dict[str, Any]) -> None:
    stack, floor = report["stack"], report["floor"]
    phases = Table(title=f"load harness — {describe_machine(report['machine'])} — {report['commit'][:12]}")
    for column in ("phase", "offered/s", "settled/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "refused", "failed",
                   "CPU ms/settl.", "cores busy"):
        phases.add_column(column, justify="left" if column == "phase" else "right")
    for name, phase in (("stack, fixed rate", stack["rate"]), ("stack, saturation", stack["saturation"]),
                        ("floor empty, saturation", floor["empty"]), ("floor rows, saturation", floor["rows"])):
        latency = phase["latency"]
        phases.add_row(name, fmt(phase.get("offered_per_s")), fmt(phase["settlements_per_s"]),
                       fmt(latency.get("p50_ms")), fmt(latency.get("p95_ms")), fmt(latency.get("p99_ms")),
                       fmt(latency.get("max_ms")), str(sum(phase["refused"].values())),
                       str(sum(phase["failed"].values())), fmt(phase["cpu_ms_per_settlement_total"]),
                       fmt(phase["cores_busy"], 2))
    console.print(phases)
    processes = Table(title="per process: CPU ms per settlement (fixed rate / saturation), peak RSS")
    for column in ("process", "CPU ms/settl. rate", "CPU ms/settl. saturation", "peak RSS MB"):
        processes.add_column(column, justify="left" if column == "process" else "right")
    for name, rss in report["rss_mb"].items():
        processes.add_row(name, fmt(stack["rate"]["cpu_ms_per_settlement"].get(name), 2),
                          fmt(stack["saturation"]["cpu_ms_per_settlement"].get(name), 2), fmt(rss, 0))
    console.print(processes)
    rate = stack["rate"]
    console.print(
        f"fixed rate: offered {fmt(rate.get('offered_per_s'))}/s, settled {fmt(rate['settlements_per_s'])}/s, "
        f"behind {rate.get('behind', 0)} (offered in the window, not finished by its end; dropped at the in-flight "
        f"cap {rate.get('dropped', 0)}), "
        f"late starts {rate.get('late_starts', 0)}; "
        f"bills {fmt(stack['saturation']['lines_per_bill'])} lines, "
        f"{fmt(stack['saturation']['cross_region_pct'])} % cross-region")
    console.print(
        f"ratio to the floor: throughput {fmt(report['ratio']['settlements_per_s'], 3)} of the floor with rows "
        f"({fmt(report['ratio']['settlements_per_s_vs_empty'], 3)} of the empty one); CPU per settlement "
        f"{fmt(report['ratio']['cpu_ms_per_settlement'], 1)}× the floor with rows "
        f"({fmt(report['ratio']['cpu_ms_per_settlement_vs_empty'], 1)}× the empty one)")
    for name, phase in (("stack at saturation", stack["saturation"]), ("floor rows", floor["rows"])):
        if phase.get("db_per_settlement"):
            console.print(f"database work per settlement, {name}: {dbstat.describe(phase['db_per_settlement'])}")
    console.print(f"core: {fmt(report['core'].get('bills_per_s_per_core'), 0)} bills/s per core "
                  f"({report['core'].get('source', '')})")
    for name, phase in (("fixed rate", stack["rate"]), ("saturation", stack["saturation"])):
        for key, samples in phase["errors"].items():
            console.print(f"{name}: {key} ×{phase['refused'].get(key) or phase['failed'].get(key)}: {samples[0]}")
