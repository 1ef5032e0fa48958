"""The load harness of `make bench`, a few seconds a phase on the test session's database: it runs the stack as
processes, settles under both phases, runs its floor, and writes every figure — whether they are fast is the
bench's business, not this test's."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from services.loadtest.run import run
from services.loadtest.settings import Settings

pytestmark = pytest.mark.e2e
STACK_PROCESSES = {"clearinghouse", "his", "region:211100", "region:230400", "region:430100", "region:440100",
                   "region:460100", "region:530100", "region:610924"}


def check_latency(phase: dict) -> None:
    latency = phase["latency"]
    assert latency["count"] == phase["settled"] > 0
    assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"] <= latency["max_ms"]


async def test_a_short_run_settles_measures_every_process_and_its_floor_and_writes_the_report(database, tmp_path):
    settings = Settings(duration_s=2.5, warmup_s=1, rate_per_s=10, clients=4, drivers=2, members_per_region=5,
                        templates=12, floor_duration_s=2, floor_warmup_s=0.5, core_bills=10,
                        json_path=tmp_path / "latest.json", markdown_path=tmp_path / "benchmarks.md")
    console = Console(record=True, width=150)
    returned = await run(settings, database=database, console=console)

    result = json.loads(settings.json_path.read_text())
    assert result == json.loads(json.dumps(returned))
    stack, floor = result["stack"], result["floor"]
    for key in ("settlements_per_s", "p50_ms", "p99_ms", "cpu_ms_per_settlement"):
        assert stack[key] > 0, key
    assert stack["p50_ms"] <= stack["p99_ms"] <= stack["max_ms"]
    assert floor["settlements_per_s"] > 0 and floor["empty_settlements_per_s"] > 0
    assert result["core"]["bills_per_s_per_core"] > 0
    assert result["ratio"]["settlements_per_s"] > 0
    assert len(result["commit"].removesuffix("-dirty")) == 40
    assert result["machine"]["cores"] >= 1 and result["machine"]["cpu_model"]

    for phase in (stack["rate"], stack["saturation"], floor["empty"], floor["rows"]):
        check_latency(phase)
        assert phase["failed"] == {}, phase["errors"]  # refusals by an agreement are allowed, nothing else
    assert stack["rate"]["offered"] > 0 and 9 <= stack["rate"]["offered_per_s"] <= 11  # ±1 start at an edge
    assert {"behind", "dropped", "late_starts"} <= set(stack["rate"])  # their values are the machine's business
    assert 35 <= stack["saturation"]["lines_per_bill"] <= 65
    # Every process has CPU and a peak RSS; the stack's own processes and Postgres make up the total.
    processes = set(result["rss_mb"])
    assert STACK_PROCESSES <= processes and {"loadgen:0", "loadgen:1"} <= processes
    assert all(megabytes > 0 for megabytes in result["rss_mb"].values())
    for phase in (stack["rate"], stack["saturation"]):
        assert set(phase["cpu_ms_per_settlement"]) == processes
        assert all(ms is not None and ms >= 0 for ms in phase["cpu_ms_per_settlement"].values())
        assert phase["cpu_ms_per_settlement"]["region:440100"] > 0
    assert set(floor["rows"]["cpu_ms_per_settlement"]) >= {f"floor:{name}" for name in STACK_PROCESSES - {"his"}}

    rows = settings.markdown_path.read_text().splitlines()
    assert rows[0] == "# Benchmarks" and rows[-1].startswith(f"| {result['date'][:10]} ")
    assert rows[-1].count("|") == 11
    text = console.export_text()
    assert "stack, saturation" in text and "floor rows, saturation" in text
