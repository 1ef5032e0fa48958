"""Benchmark of the pure core (issue 11, item 5): the offline quote, classification + adjudication, of
bills of about 50 lines, on one core.

`python -m services.bench_core [bills [size_pct]]` prints one line; `bench_core()` also returns the figures. The
bills come from the demo generator scaled to about 50 lines (`generate_bill(size_pct=…)`), classified
with the treating region's parsed catalogue and adjudicated with the insured region's policy, as
`clearing-admin quote` does. Bills, catalogue and policy are built before the clock starts.

The machine is shared, so every figure is CPU time, not wall time: time the core spends on other processes
does not count against the core. The rate is the best of `PASSES` passes over the same bills, with the
median pass as the typical figure; p50 and p99 are per bill, from one more pass.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from clearing.bill import Bill, bill_from_dict
from clearing.catalogue import Catalogue, parse_catalogue_csv
from clearing.member import Member, Ytd
from clearing.policy import FilingStatus, Policy, Scheme
from clearing.quote import quote
from services.common.regions import load_policy_book, load_regions
from services.datagen.bills import CatalogueIndex, generate_bill
from services.datagen.catalogue import generate_catalogue_rows
from services.stack.enrol import catalogue_csv_text

SEED = 2026
TREATING_REGION, INSURED_REGION = "440100", "430100"
ADMITTED_ON = "2026-03-02"
SIZE_PCT = 190  # 1.9 × the demo's variable line counts: about 50 lines a bill instead of about 32
PASSES = 5


def generated_bills(count: int, size_pct: int) -> list[Bill]:
    """`count` generated stays at the treating region's first hospital (`size_pct` 190: about 50 lines each)."""
    index = CatalogueIndex(generate_catalogue_rows(TREATING_REGION, SEED))
    hospital = load_regions()[TREATING_REGION].hospitals[0]
    return [bill_from_dict(generate_bill(seed, index, TREATING_REGION, hospital.code, hospital.level, ADMITTED_ON,
                                         size_pct=size_pct))
            for seed in range(count)]


def bench_core(bills: int = 2000, size_pct: int = SIZE_PCT) -> dict[str, float]:
    """Time `quote` over `bills` bills of about 50 lines (`size_pct=100`: the demo's, about 32); print the
    line and return the figures."""
    assert bills > 0
    catalogue = parse_catalogue_csv(catalogue_csv_text(TREATING_REGION, SEED), TREATING_REGION)
    stays = generated_bills(bills, size_pct)
    member = Member(INSURED_REGION, "M1", Scheme.EMPLOYEE, False, False, None, FilingStatus.RESIDENT)
    book = load_policy_book(INSURED_REGION)
    cases = [(bill, book.on(bill.discharged_on)) for bill in stays]
    pass_rates = [bills / cpu_seconds(lambda: quote_all(cases, catalogue, member)) for _ in range(PASSES)]
    timings_ns = sorted(quote_times_ns(cases, catalogue, member))
    figures = {
        "bills_per_s_per_core": max(pass_rates),
        "lines_per_bill": sum(len(bill.lines) for bill in stays) / bills,
        "p50_us": timings_ns[len(timings_ns) // 2] / 1000,
        "p99_us": timings_ns[len(timings_ns) * 99 // 100] / 1000,
    }
    print(f"core quote (classify + adjudicate, {figures['lines_per_bill']:.0f}-line bills on average): "
          f"{figures['bills_per_s_per_core']:,.0f} bills/s on one core, "
          f"{figures['bills_per_s_per_core'] * figures['lines_per_bill']:,.0f} lines/s, "
          f"p50 {figures['p50_us']:.0f} µs, p99 {figures['p99_us']:.0f} µs "
          f"(CPU time; best of {PASSES} passes over {bills:,} bills, median pass "
          f"{statistics.median(pass_rates):,.0f} bills/s)", flush=True)
    return figures


def quote_all(cases: list[tuple[Bill, Policy]], catalogue: Catalogue, member: Member) -> None:
    for bill, policy in cases:
        quote(bill, catalogue, member, policy, Ytd())


def cpu_seconds(run: Callable[[], None]) -> float:
    started_s = time.process_time()
    run()
    return time.process_time() - started_s


def quote_times_ns(cases: list[tuple[Bill, Policy]], catalogue: Catalogue, member: Member) -> list[int]:
    """CPU time of each quote, in its own pass: reading the CPU clock costs about a microsecond, which the
    throughput passes should not pay."""
    timings_ns = []
    for bill, policy in cases:
        started_ns = time.thread_time_ns()
        quote(bill, catalogue, member, policy, Ytd())
        timings_ns.append(time.thread_time_ns() - started_ns)
    return timings_ns


if __name__ == "__main__":
    bench_core(*(int(argument) for argument in sys.argv[1:3]))
