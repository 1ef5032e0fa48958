"""`make bench`: speed figures, printed (speed targets live here, not in timed tests).

Measures the pure core (catalogue parse, bill classification + adjudication) and the whole stack
in-process on the embedded Postgres (discharges per second through every party, over mutual TLS as in
production; `BENCH_INSECURE=1` runs the same over plaintext, to see what TLS costs), then the month close
over generated settlements (`services/bench_close.py`: 1 M by default; `BENCH_CLOSE_SIZES=1000000,10000000`
adds the 10 M close, whose data generation alone takes about 8 minutes).
"""

from __future__ import annotations

import asyncio
import os
import statistics
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


def bench_core() -> None:
    treating, insured = "440100", "430100"
    text = catalogue_csv_text(treating, SEED)
    started = time.perf_counter()
    catalogue = parse_catalogue_csv(text, treating)
    parse_s = time.perf_counter() - started
    print(f"catalogue parse: {len(catalogue.rows)} rows in {parse_s * 1000:.0f} ms")
    index = CatalogueIndex(generate_catalogue_rows(treating, SEED))
    hospital = load_regions()[treating].hospitals[0]
    bills = [bill_from_dict(generate_bill(seed, index, treating, hospital.code, hospital.level, "2026-03-02"))
             for seed in range(BILLS)]
    member = Member(insured, "M1", Scheme.EMPLOYEE, False, False, None, FilingStatus.RESIDENT)
    book = load_policy_book(insured)
    timings = []
    started = time.perf_counter()
    for bill in bills:
        one = time.perf_counter()
        quote(bill, catalogue, member, book.on(bill.discharged_on), Ytd())
        timings.append(time.perf_counter() - one)
    total_s = time.perf_counter() - started
    lines = sum(len(bill.lines) for bill in bills)
    print(f"core quote (classify + adjudicate): {BILLS / total_s:,.0f} bills/s, {lines / total_s:,.0f} lines/s, "
          f"p50 {statistics.median(timings) * 1e6:.0f} µs, p99 {sorted(timings)[int(BILLS * 0.99)] * 1e6:.0f} µs")


async def bench_stack(count: int = 500, insecure: bool = False) -> float:
    import tempfile
    import uuid
    from pathlib import Path

    from clearinghouse.v1 import hospital_pb2, hospital_pb2_grpc

    from services.stack.config import operator_identity
    from services.stack.enrol import enrol_all
    from services.stack.processes import StackProcesses

    stack = StackProcesses(work_dir=Path(tempfile.mkdtemp(prefix="clearing-bench-")), seed=SEED, members_per_region=100,
                           insecure=insecure)
    try:
        config = await stack.start()
        transport = config.transport()
        await enrol_all({r: config.address(p) for r, p in config.region_ports.items()}, SEED, 100, transport=transport)
        async with transport.channel(config.address(config.his_port), operator_identity()) as channel:
            started = time.perf_counter()
            async for update in hospital_pb2_grpc.HospitalServiceStub(channel).RunDischarges(
                    hospital_pb2.RunDischargesRequest(request_id=str(uuid.uuid4()), count=count, seed=5,
                                                      concurrency=24, month="2026-03")):
                last = update
            elapsed_s = time.perf_counter() - started
        print(f"stack (9 processes, 2 cores, {'plaintext: --insecure' if insecure else 'mutual TLS'}): {count} "
              f"discharges (admit + charges + settle through every party) in {elapsed_s:.1f} s = "
              f"{count / elapsed_s:.1f} discharges/s, {last.failed} refused by agreement", flush=True)
        return count / elapsed_s
    finally:
        stack.stop()


def main() -> None:
    from services.bench_close import bench_close, sizes_from_environment

    sizes = sizes_from_environment()  # read first: a bad BENCH_CLOSE_SIZES fails before any bench runs
    bench_core()
    asyncio.run(bench_stack(insecure=os.environ.get("BENCH_INSECURE", "") not in ("", "0")))
    asyncio.run(bench_close(sizes))


if __name__ == "__main__":
    main()
