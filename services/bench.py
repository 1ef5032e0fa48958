"""`make bench`: speed figures, printed and recorded (speed targets live here, not in timed tests).

Runs the load harness (`services/loadtest`: the pure core's quote speed, then the whole stack as processes over
mutual TLS under a fixed offered rate and at saturation, and its floor; writes `var/bench/latest.json` and a row of
`docs/benchmarks.md`; `BENCH_INSECURE=1` runs it over plaintext, to see what TLS costs), then the month close over
generated settlements (`services/bench_close.py`: 1 M by default; `BENCH_CLOSE_SIZES=1000000,10000000` adds the
10 M close, whose data generation alone takes about 8 minutes), then the policy what-if's replay
(`services/bench_whatif.py`). Flags and BENCH_* variables: `python -m
services.loadtest --help`. This module also keeps the core line's measurement, `bench_core`, until
`services/bench_core.py` replaces it (services/loadtest/core.py).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time

from clearing.bill import bill_from_dict
from clearing.member import Member, Ytd
from clearing.policy import FilingStatus, Scheme
from clearing.quote import quote
from services.common.regions import load_policy_book, load_regions
from services.datagen.bills import CatalogueIndex, generate_bill
from services.datagen.catalogue import generate_catalogue_rows
from services.stack.enrol import catalogue_csv_text
from clearing.catalogue import parse_catalogue_csv

SEED = 2026
BILLS = 2_000


def bench_core(bills: int = BILLS) -> dict[str, float]:
    """The pure core's quote (classify + adjudicate) of `bills` generated bills, printed and returned.
    `bills_per_s_per_core` divides by this process's CPU time, not the wall clock: the loop runs on one core, and on
    a shared machine the wall clock also counts the time others had the core."""
    treating, insured = "440100", "430100"
    text = catalogue_csv_text(treating, SEED)
    started = time.perf_counter()
    catalogue = parse_catalogue_csv(text, treating)
    parse_s = time.perf_counter() - started
    print(f"catalogue parse: {len(catalogue.rows)} rows in {parse_s * 1000:.0f} ms")
    index = CatalogueIndex(generate_catalogue_rows(treating, SEED))
    hospital = load_regions()[treating].hospitals[0]
    generated = [bill_from_dict(generate_bill(seed, index, treating, hospital.code, hospital.level, "2026-03-02"))
                 for seed in range(bills)]
    member = Member(insured, "M1", Scheme.EMPLOYEE, False, False, None, FilingStatus.RESIDENT)
    book = load_policy_book(insured)
    timings = []
    started, cpu_started = time.perf_counter(), time.process_time()
    for bill in generated:
        one = time.perf_counter()
        quote(bill, catalogue, member, book.on(bill.discharged_on), Ytd())
        timings.append(time.perf_counter() - one)
    total_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    lines = sum(len(bill.lines) for bill in generated)
    timings.sort()
    result = {"bills": bills, "bills_per_s": bills / total_s, "bills_per_s_per_core": bills / max(cpu_s, 1e-9),
              "lines_per_s": lines / total_s, "p50_us": statistics.median(timings) * 1e6,
              "p99_us": timings[min(bills - 1, int(bills * 0.99))] * 1e6, "catalogue_parse_ms": parse_s * 1000}
    print(f"core quote (classify + adjudicate): {result['bills_per_s']:,.0f} bills/s "
          f"({result['bills_per_s_per_core']:,.0f} per CPU second), {result['lines_per_s']:,.0f} lines/s, "
          f"p50 {result['p50_us']:.0f} µs, p99 {result['p99_us']:.0f} µs", flush=True)
    return result


def main() -> None:
    from services.bench_close import bench_close, sizes_from_environment
    from services.loadtest.run import run
    from services.loadtest.settings import SettingsError, parse_settings

    try:  # every knob is read first: a bad one fails before any bench runs
        sizes = sizes_from_environment()
        settings = parse_settings(sys.argv[1:], os.environ)
    except (SettingsError, SystemExit) as error:
        print(error if str(error).startswith("error:") else f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    asyncio.run(run(settings))  # the core line, the stack under load, its floor
    asyncio.run(bench_close(sizes))
    from services.bench_whatif import bench_whatif

    bench_whatif()  # the policy what-if's replay, one core (target ≥ 10,000 settlements/s)


if __name__ == "__main__":
    main()
