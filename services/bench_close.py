"""Benchmark of the month close at volume (issue 4): 1 M settlements in one month by default, 10 M on request.

`BENCH_CLOSE_SIZES=1000000,10000000 make bench` (or `python -m services.bench_close 1000000 10000000`)
also runs the 10 M close; generating that ledger alone takes about 8 minutes on 2 cores, so it is opt-in.

The ledger of N settlements (4 postings each, as the real posting path writes) is generated in
SQL; the per-pair aggregates are built from it exactly as the posting path leaves them; then
CloseMonth runs through the real clearing-house servicer over gRPC, and the recomputation check
(aggregates vs postings) runs as the tests run it. Every figure is printed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from clearinghouse.v1 import clearing_house_pb2 as ch, clearing_house_pb2_grpc

from services.common.db import ensure_database
from services.security import certs
from services.stack.config import dsn_for, operator_identity
from services.stack.database import Database
from services.stack.wiring import Transport, start_clearing_house

DEFAULT_SIZES = (1_000_000,)
SIZES_VARIABLE = "BENCH_CLOSE_SIZES"
REGIONS = ("211100", "230400", "430100", "440100", "460100", "530100", "610924")
MONTH = "2026-03"
GENERATE_SQL = """
WITH regions AS (SELECT array['211100','230400','430100','440100','460100','530100','610924'] AS r)
INSERT INTO ledger_postings (tx_id, insured_region, clearing_month, account, amount_fen)
SELECT g, i, $2, account, amount FROM generate_series(1, $1::bigint) AS g, regions,
LATERAL (SELECT r[1 + (g % 7)::int] AS i, r[1 + ((g % 7 + 1 + (g / 7) % 6) % 7)::int] AS t,
                (50000 + (g * 7919) % 1500000)::bigint AS f) AS pick,
LATERAL (VALUES ('treating/' || t || '/receivable/' || i, f), ('insured/' || i || '/payable/' || t, -f),
                ('insured/' || i || '/prepayment_drawn', f), ('insured/' || i || '/prepayment', -f)) AS legs(account, amount)
"""
AGGREGATE_SQL = """
INSERT INTO clearing_aggregates (clearing_month, insured_region, treating_region, settlements, cancels, fund_pay_fen)
SELECT $1, split_part(account, '/', 4), split_part(account, '/', 2), count(*), 0, sum(amount_fen)
FROM ledger_postings WHERE clearing_month = $1 AND account LIKE 'treating/%/receivable/%' GROUP BY 2, 3
"""
CHECK_SQL = """
SELECT count(*) FROM (
    SELECT split_part(p.account, '/', 4) AS insured_region, split_part(p.account, '/', 2) AS treating_region,
           count(*)::int AS settlements, sum(p.amount_fen)::bigint AS fund_pay_fen
    FROM ledger_postings p WHERE p.clearing_month = $1 AND p.account LIKE 'treating/%/receivable/%' GROUP BY 1, 2) r
FULL JOIN (SELECT * FROM clearing_aggregates WHERE clearing_month = $1) a USING (insured_region, treating_region)
WHERE (r.settlements, r.fund_pay_fen) IS DISTINCT FROM (a.settlements, a.fund_pay_fen)
"""


async def bench_one(base_dsn: str, settlements: int) -> None:
    database = f"bench_close_{settlements}_{uuid.uuid4().hex[:6]}"
    await ensure_database(base_dsn, database)
    dsn = dsn_for(base_dsn, database)
    certs_dir = Path(tempfile.mkdtemp(prefix="clearing-bench-certs-"))
    certs.init(certs_dir, [], [], [operator_identity().subject])  # the clearing house and the operator
    transport = Transport.tls(certs_dir)
    running = await start_clearing_house(dsn, {}, transport=transport)  # applies the migrations
    connection = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        # Bulk load: the posting triggers (balance, append-only, guards) are the posting path's, and the
        # aggregates are written by the claims trigger only (migration 0008); a bulk generator bypasses
        # them all (superuser) and builds the same aggregates in one statement.
        await connection.execute("SELECT ensure_month_partition($1)", MONTH)  # the month's partitions (0014)
        await connection.execute("SET session_replication_role = replica")
        await connection.execute(
            "INSERT INTO ledger_transactions (tx_id, settlement_id, kind, clearing_month, insured_region) "
            "SELECT g, md5(g::text)::uuid, 'settlement', $2, "
            "(array['211100','230400','430100','440100','460100','530100','610924'])[1 + (g % 7)::int] "
            "FROM generate_series(1, $1::bigint) g", settlements, MONTH)
        await connection.execute(GENERATE_SQL, settlements, MONTH)
        generated_s = time.perf_counter() - started
        rows = await connection.fetchval("SELECT count(*) FROM ledger_postings WHERE account LIKE 'treating/%'")
        started = time.perf_counter()
        await connection.execute(AGGREGATE_SQL, MONTH)
        aggregate_s = time.perf_counter() - started
        await connection.execute("SET session_replication_role = origin")
        async with transport.channel(f"127.0.0.1:{running.port}", operator_identity()) as channel:
            stub = clearing_house_pb2_grpc.ClearingHouseServiceStub(channel)
            started = time.perf_counter()
            closing = (await stub.CloseMonth(ch.CloseMonthRequest(request_id=str(uuid.uuid4()), month=MONTH),
                                             timeout=600)).closing
            close_s = time.perf_counter() - started
        started = time.perf_counter()
        mismatches = await connection.fetchval(CHECK_SQL, MONTH)
        check_s = time.perf_counter() - started
        assert mismatches == 0
        assert sum(cell.settlements for cell in closing.cells) == rows
        print(f"close of {rows:,} settlements: CloseMonth {close_s * 1000:.0f} ms over {len(closing.cells)} cells "
              f"(net {closing.net_total_fen:,} of gross {closing.gross_total_fen:,} fen, "
              f"{closing.liquidity_saved_bp / 100:.2f} % saved); aggregates built in one pass {aggregate_s:.1f} s; "
              f"recomputation check {check_s:.1f} s; generating the ledger {generated_s:.1f} s", flush=True)
    finally:
        await connection.close()
        await running.stop(None)
        shutil.rmtree(certs_dir, ignore_errors=True)
        admin = await asyncpg.connect(base_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await admin.close()


def parse_sizes(text: str, source: str) -> tuple[int, ...]:
    """Settlement counts from `1000000,10000000` (commas or spaces, `_` allowed); empty = the default."""
    parts = [part for part in text.replace(",", " ").split() if part]
    try:
        sizes = tuple(int(part) for part in parts)
    except ValueError:
        raise SystemExit(f"error: {source}: {text!r} is not a list of settlement counts like 1000000,10000000") from None
    if any(size <= 0 for size in sizes):
        raise SystemExit(f"error: {source}: settlement counts must be positive")
    return sizes or DEFAULT_SIZES


def sizes_from_environment() -> tuple[int, ...]:
    return parse_sizes(os.environ.get(SIZES_VARIABLE, ""), SIZES_VARIABLE)


async def bench_close(sizes: tuple[int, ...] = DEFAULT_SIZES) -> None:
    database = Database(Path(tempfile.mkdtemp(prefix="clearing-bench-pg-")))
    try:
        for settlements in sizes:
            await bench_one(database.base_dsn, settlements)
    finally:
        database.stop()


if __name__ == "__main__":
    import sys

    asyncio.run(bench_close(parse_sizes(" ".join(sys.argv[1:]), "arguments") if sys.argv[1:] else sizes_from_environment()))
