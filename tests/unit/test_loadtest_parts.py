"""The load harness's pure parts: percentiles, /proc parsing on samples, the knobs, the report row, long bills."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from services.common.regions import load_regions
from services.datagen.bills import CatalogueIndex
from services.datagen.catalogue import generate_catalogue_rows
from services.loadtest import procstat, report
from services.loadtest.bills import long_bill, make_templates
from services.loadtest.fleet import merge
from services.loadtest.run import bench_month
from services.loadtest.settings import Settings, SettingsError, parse_settings
from services.loadtest.stats import percentile, summary_ms

# A real line of /proc/<pid>/stat, its command name made awkward: spaces and a ')' inside the parentheses.
STAT_SAMPLE = ("4242 (python -m a) b) S 4200 4242 4242 0 -1 4194560 35000 0 12 0 1500 320 7 3 20 0 9 0 123456 "
               "812000000 20000 18446744073709551615 1 1 0 0 0 0 0 16781312 16386 0 0 0 17 1 0 0 0 0 0")
STATUS_SAMPLE = """Name:\tpython
Umask:\t0022
State:\tS (sleeping)
Pid:\t4242
PPid:\t4200
VmPeak:\t  812000 kB
VmHWM:\t  117056 kB
VmRSS:\t   98000 kB
Threads:\t9
"""


def test_nearest_rank_percentiles():
    values = list(range(1, 101))  # 1 … 100
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 50) == 7.0
    assert percentile([1, 2, 3, 4], 50) == 2  # an observed value, never 2.5
    assert percentile([1, 2, 3, 4], 51) == 3


def test_summary_is_ordered_and_says_nothing_of_an_empty_sample():
    summary = summary_ms([5.0, 1.0, 9.0, 3.0, 200.0])
    assert summary["count"] == 5
    assert summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"] <= summary["max_ms"] == 200.0
    assert summary["p50_ms"] == 5.0
    assert summary_ms([]) == {"count": 0}


def test_stat_line_is_read_from_the_last_parenthesis():
    stat = procstat.parse_stat(STAT_SAMPLE)
    assert (stat.pid, stat.ppid) == (4242, 4200)
    assert (stat.utime, stat.stime, stat.cutime, stat.cstime) == (1500, 320, 7, 3)
    assert stat.own_ticks == 1820 and stat.with_children_ticks == 1830


def test_status_values_in_kb():
    assert procstat.parse_status_kb(STATUS_SAMPLE, "VmHWM") == 117056
    assert procstat.parse_status_kb(STATUS_SAMPLE, "VmRSS") == 98000
    assert procstat.parse_status_kb(STATUS_SAMPLE, "VmSwap") is None


def fake_proc(root: Path, processes: dict[int, tuple[int, int, int, int]]) -> Path:
    """A /proc of processes pid → (ppid, utime, cutime, VmHWM kB)."""
    for pid, (ppid, utime, cutime, hwm_kb) in processes.items():
        (root / str(pid)).mkdir()
        (root / str(pid) / "stat").write_text(
            f"{pid} (postgres) S {ppid} 1 1 0 -1 0 0 0 0 0 {utime} 0 {cutime} 0 20 0 1 0 1 1 1")
        (root / str(pid) / "status").write_text(f"Name:\tpostgres\nVmHWM:\t{hwm_kb} kB\n")
    (root / "self").mkdir()  # not a pid: skipped
    return root


def test_a_tree_counts_its_live_children_and_the_exited_ones_through_the_parent(tmp_path):
    proc = fake_proc(tmp_path, {10: (1, 100, 50, 30_000), 11: (10, 200, 0, 150_000), 12: (10, 300, 0, 140_000),
                                20: (1, 999, 0, 900_000)})
    assert sorted(procstat.children_of(10, proc)) == [11, 12]
    assert procstat.tree_cpu_ticks(10, proc) == 100 + 50 + 200 + 300
    assert procstat.tree_peak_rss_kb(10, proc) == 150_000  # the largest, never a sum (shared buffers)
    postgres = procstat.Watched("postgres", 10, tree=True)
    service = procstat.Watched("clearinghouse", 20)
    before = procstat.cpu_snapshot([postgres, service], proc)
    shutil.rmtree(proc / "12")  # backend 12 exits, its time moves into the postmaster's cutime
    (proc / "10" / "stat").write_text("10 (postgres) S 1 1 1 0 -1 0 0 0 0 0 100 0 360 0 20 0 1 0 1 1 1")
    after = procstat.cpu_snapshot([postgres, service, procstat.Watched("gone", 99)], proc)
    used = procstat.cpu_seconds_between(before, after)
    assert used["postgres"] == pytest.approx(10 / procstat.CLOCK_TICKS_PER_S)  # 300 + 50 → 360 in cutime
    assert used["clearinghouse"] == 0
    assert used["gone"] is None


def test_this_process_is_readable():
    import os

    assert procstat.read_stat(os.getpid()).own_ticks >= 0
    assert procstat.peak_rss_kb(os.getpid()) > 0
    assert procstat.read_stat(2**22 + 1) is None


def test_knobs_flags_over_environment_over_defaults():
    settings = parse_settings(["--rate-per-s", "50", "--json", "/tmp/x.json"],
                              {"BENCH_RATE": "10", "BENCH_CLIENTS": "16", "BENCH_DURATION_S": " ", "BENCH_INSECURE": "1"})
    assert settings.rate_per_s == 50 and settings.clients == 16 and settings.duration_s == Settings().duration_s
    assert settings.json_path == Path("/tmp/x.json") and settings.insecure
    assert parse_settings([], {}) == Settings()


@pytest.mark.parametrize(("argv", "environ", "named"), [
    ([], {"BENCH_RATE": "fast"}, "BENCH_RATE: 'fast' is not a number"),
    ([], {"BENCH_CLIENTS": "2.5"}, "BENCH_CLIENTS: '2.5' is not a whole number"),
    (["--clients", "0"], {}, "--clients: '0' is out of range"),
    ([], {"BENCH_DURATION_S": "-1"}, "BENCH_DURATION_S: '-1' is out of range"),
    ([], {"BENCH_INSECURE": "yes"}, "BENCH_INSECURE: 'yes' is not 0 or 1"),
])
def test_a_bad_knob_is_named(argv, environ, named):
    with pytest.raises(SettingsError) as raised:
        parse_settings(argv, environ)
    assert named in str(raised.value)


def test_the_command_exits_2_with_a_message_for_a_bad_knob(monkeypatch, capsys):
    from services.loadtest.__main__ import main

    monkeypatch.setattr("sys.argv", ["loadtest"])
    monkeypatch.setenv("BENCH_RATE", "lots")
    with pytest.raises(SystemExit) as raised:
        main()
    assert raised.value.code == 2
    assert "error: BENCH_RATE: 'lots' is not a number" in capsys.readouterr().err


def test_the_month_has_begun_long_enough_ago_for_every_discharge():
    assert bench_month(date(2026, 11, 30)) == date(2026, 10, 1)
    assert bench_month(date(2026, 3, 1)) == date(2026, 1, 1)  # 15 nights after the 14th is still before today
    for day in (date(2026, 3, 1), date(2026, 12, 31), date(2027, 1, 10)):
        assert (day - bench_month(day)).days >= 14 + 15


def test_long_bills_have_the_lines_asked_for_within_the_stay():
    index = CatalogueIndex(generate_catalogue_rows("440100", 2026))
    for seed in range(20):
        bill = long_bill(seed, index, "440100", "H44010000001", 3, date(2026, 10, 3), 60)
        lines = bill["lines"]
        assert len(lines) == 60
        assert [line["line_id"] for line in lines] == [str(n) for n in range(1, 61)]
        assert all(bill["admitted_on"] <= line["service_date"] <= bill["discharged_on"] for line in lines)
        assert lines == sorted(lines, key=lambda line: line["service_date"])


def test_templates_average_fifty_lines_and_are_mostly_cross_region():
    templates = make_templates(2026, 120, load_regions(), 30, date(2026, 10, 1), 50)
    mean = sum(t.line_count for t in templates) / len(templates)
    assert 45 <= mean <= 55
    cross = sum(not t.local for t in templates) / len(templates)
    assert 0.7 <= cross <= 0.9
    for template in templates:
        assert not template.admit.request_id and all(not upload.request_id for upload in template.uploads)
        assert all(len(upload.lines) <= 25 for upload in template.uploads)
    again = make_templates(2026, 3, load_regions(), 30, date(2026, 10, 1), 50)
    assert [t.admit for t in again] == [t.admit for t in templates[:3]]  # a seed gives the same discharges


def tally(**counts) -> dict:
    base = {"settled": 0, "refused": {}, "failed": {}, "errors": {}, "settle_ms": [], "discharge_ms": [],
            "step_ms": {}, "lines": 0, "cross_region": 0, "offered": 0, "late_starts": 0, "dropped": 0,
            "in_flight_max": 0, "unfinished": 0, "offered_done": 0}
    return {**base, **counts}


def test_generators_tallies_merge():
    merged = merge([tally(settled=3, settle_ms=[1.0, 2.0, 3.0], refused={"settle:FAILED_PRECONDITION": 1},
                          errors={"settle:FAILED_PRECONDITION": ["x"]}, step_ms={"admit": [1.0]}, offered=5),
                    tally(settled=2, settle_ms=[4.0, 5.0], refused={"settle:FAILED_PRECONDITION": 2}, offered=4,
                          step_ms={"admit": [2.0]})])
    assert merged["settled"] == 5 and merged["offered"] == 9
    assert sorted(merged["settle_ms"]) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert merged["refused"] == {"settle:FAILED_PRECONDITION": 3}
    assert merged["step_ms"] == {"admit": [1.0, 2.0]}


def phase(settled: int, wall_s: float, cpu: dict, offered: int = 0) -> dict:
    return report.phase_summary(tally(settled=settled, settle_ms=[10.0 + i for i in range(settled)],
                                      discharge_ms=[50.0] * settled, lines=50 * settled, cross_region=settled,
                                      offered=offered, offered_done=min(offered, settled)), wall_s, cpu,
                                [name for name in cpu if name != "loadgen:0"])


def test_a_phase_divides_cpu_by_settlements_and_counts_what_fell_behind():
    summary = phase(100, 10.0, {"clearinghouse": 1.0, "region:440100": 2.0, "postgres": 1.5, "loadgen:0": 0.5}, 120)
    assert summary["settlements_per_s"] == 10.0
    assert summary["cpu_ms_per_settlement"] == {"clearinghouse": 10.0, "region:440100": 20.0, "postgres": 15.0,
                                                "loadgen:0": 5.0}
    assert summary["cpu_ms_per_settlement_total"] == 45.0  # the generators are not the stack's
    assert summary["offered_per_s"] == 12.0 and summary["behind"] == 20
    assert summary["latency"]["p50_ms"] <= summary["latency"]["p99_ms"] <= summary["latency"]["max_ms"]
    assert summary["lines_per_bill"] == 50.0 and summary["cross_region_pct"] == 100.0


def sample_report() -> dict:
    cpu = {"clearinghouse": 1.0, "region:440100": 2.0, "postgres": 1.0, "loadgen:0": 0.5}
    return report.build_report(
        settings={"rate_per_s": 200}, rate=phase(100, 10.0, cpu, 110), saturation=phase(150, 10.0, cpu),
        floor_empty=phase(600, 10.0, cpu), floor_rows=phase(300, 10.0, cpu),
        core={"bills_per_s_per_core": 1800.4, "source": "test"},
        rss_mb={"clearinghouse": 117.2, "region:440100": 84.0, "postgres": 400.0, "loadgen:0": 500.0},
        commit="0123456789abcdef0123-dirty",
        machine_info={"cores": 2, "cpu_model": "AMD EPYC", "memory_mb": 24105, "python": "3.11.7"},
        elapsed_s=200.0, started_at=datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC))


def test_the_report_has_the_issues_keys():
    result = sample_report()
    assert result["stack"]["settlements_per_s"] == 15.0
    assert result["stack"]["p50_ms"] <= result["stack"]["p99_ms"]
    assert result["stack"]["cpu_ms_per_settlement"] == pytest.approx(4000 / 150, abs=0.001)
    assert result["floor"]["settlements_per_s"] == 30.0 and result["floor"]["empty_settlements_per_s"] == 60.0
    assert result["ratio"]["settlements_per_s"] == 0.5
    assert result["core"]["bills_per_s_per_core"] == 1800.4
    assert result["rss_mb"]["clearinghouse"] == 117.2 and result["commit"].endswith("-dirty")


def test_the_markdown_row_and_a_new_file_with_its_header(tmp_path):
    result = sample_report()
    row = report.markdown_row(result)
    assert row == ("| 2026-11-30 01:02 | `0123456789ab-dirty` | 2× AMD EPYC, 24 GB, Python 3.11.7 | 15.0 | "
                   f"{result['stack']['p50_ms']:.1f} / {result['stack']['p99_ms']:.1f} (11/s) | 26.7 | 30.0 | 0.50 | "
                   "117 | 1,800 |\n")  # max RSS: the services only, not Postgres nor the generators
    path = tmp_path / "docs" / "benchmarks.md"
    report.append_markdown(path, result)
    report.append_markdown(path, result)
    text = path.read_text()
    assert text.startswith("# Benchmarks") and text.count(row) == 2
    header = next(line for line in text.splitlines() if line.startswith("| date"))
    assert header.count("|") == row.count("|")


def test_machine_description_from_proc_texts():
    assert report.cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n") == "AMD EPYC 7B13"
    assert report.memory_mb("MemTotal:       24683912 kB\nMemFree: 1 kB\n") == 24105
    assert report.memory_mb("") is None


def test_database_work_is_summed_by_party_kind_per_settlement():
    from services.loadtest import dbstat

    def counters(commits: int, inserted: int) -> dict[str, int]:
        return {**dict.fromkeys(dbstat.COUNTERS.values(), 0), "commits": commits, "rows_inserted": inserted}

    before = {"treating_440100": counters(10, 100), "treating_430100": counters(5, 50), "clearinghouse": counters(1, 1)}
    after = {"treating_440100": counters(30, 400), "treating_430100": counters(25, 350), "clearinghouse": counters(9, 57),
             "insured_440100": counters(3, 3)}  # not there before: left out
    work = dbstat.per_settlement(before, after, 8)
    assert work["treating"]["commits"] == 5.0 and work["treating"]["rows_inserted"] == 75.0
    assert work["clearinghouse"] == {**dict.fromkeys(dbstat.COUNTERS.values(), 0.0), "commits": 1.0,
                                     "rows_inserted": 7.0}
    assert "insured" not in work
    assert dbstat.per_settlement(before, after, 0) == {}
