"""Month partitions at the clearing house (issue 11 item 6, migration 0014, docs/architecture.md): claims by
settlement day, the ledger, the request log and the statement lines by month.

* Every primary and unique key of a partitioned table holds the insured region and the partition key.
* A row lands in its month's partition; a journal's legs in its journal's; the balance trigger still checks
  each journal at commit.
* A claim settled just before midnight on a month's last day and retried after it keeps one row, in its
  settlement day's partition, and a cancel of it is filed under that month, whenever it comes.
* The statement, year-total and reconciliation queries and a journal's balance check read one partition
  (EXPLAIN).
* An open month is never detached (`clearing-admin month detach` exits 2); a closed, cleared one is.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import date
from pathlib import Path

import asyncpg
import grpc
import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import treating_agency_pb2 as ta

from clearing.reconcile import DayKey
from services.clearinghouse import audit, partitions, store
from services.common.db import apply_migrations, create_pool, drop_databases, ensure_database
from services.stack.config import dsn_for
from conftest import clearing_admin

MIGRATIONS = Path(__file__).parents[2] / "services" / "clearinghouse" / "migrations"
TABLES = ("claims", "ledger_transactions", "ledger_postings", "requests", "statement_lines")
KEYS = {"claims": "settlement_day", "ledger_transactions": "clearing_month", "ledger_postings": "clearing_month",
        "requests": "month", "statement_lines": "month"}
TREATING, INSURED = "440100", "430100"
H_GUANGZHOU = "H44010000001"


@pytest.fixture
async def fresh(database):
    """A clearing-house database of its own with every migration applied; yields a pool."""
    name = f"ch_parts_{uuid.uuid4().hex[:8]}"
    await ensure_database(database.base_dsn, name)
    pool = await create_pool(dsn_for(database.base_dsn, name))
    try:
        await apply_migrations(pool, MIGRATIONS)
        yield pool
    finally:
        await pool.close()
        await drop_databases(database.base_dsn, name)


async def insert_claim(conn: asyncpg.Connection, settlement_day: str, insured: str = INSURED) -> uuid.UUID:
    settlement_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO claims (settlement_id, treating_region, insured_region, member_id, hospital_code, status, "
        "catalogue_rule, request, routed, discharged_on, settlement_day) VALUES ($1, $2, $3, 'M1', $4, 'pending', "
        "'treating', '', '', $5, $5)", settlement_id, TREATING, insured, H_GUANGZHOU, date.fromisoformat(settlement_day))
    return settlement_id


async def settle(conn: asyncpg.Connection, settlement_id: uuid.UUID, month: str, fund_pay_fen: int = 500) -> None:
    """What the posting path does, in SQL: the claim settled in `month` and its four legs (one transaction)."""
    async with conn.transaction():
        await conn.execute(
            "UPDATE claims SET status = 'settled', response = '', total_fen = $3 + 100, fund_pay_fen = $3, "
            "psn_pay_fen = 100, hifp_fen = $3, hifmi_fen = 0, maf_fen = 0, settled_at = now(), clearing_month = $2 "
            "WHERE settlement_id = $1", settlement_id, month, fund_pay_fen)
        tx_id = await conn.fetchval(
            "INSERT INTO ledger_transactions (settlement_id, kind, clearing_month, insured_region) "
            "VALUES ($1, 'settlement', $2, $3) RETURNING tx_id", settlement_id, month, INSURED)
        await insert_legs(conn, tx_id, month, [(f"treating/{TREATING}/receivable/{INSURED}", fund_pay_fen),
                                               (f"insured/{INSURED}/payable/{TREATING}", -fund_pay_fen)])


async def insert_legs(conn: asyncpg.Connection, tx_id: int, month: str, legs: list[tuple[str, int]]) -> None:
    await conn.executemany(
        "INSERT INTO ledger_postings (tx_id, insured_region, clearing_month, account, amount_fen) "
        "VALUES ($1, $2, $3, $4, $5)", [(tx_id, INSURED, month, account, amount) for account, amount in legs])


async def partition_of(conn: asyncpg.Connection, table: str, column: str, value: object) -> list[str]:
    return [row[0] for row in await conn.fetch(
        f"SELECT DISTINCT tableoid::regclass::text FROM {table} WHERE {column} = $1", value)]


def scanned(plan: str, table: str) -> set[str]:
    """The partitions of `table` a plan reads."""
    return set(re.findall(rf"\b({table}_p\d{{4}}_\d{{2}})\b", plan))


async def explain(conn: asyncpg.Connection, sql: str, *args: object) -> str:
    """The plan Postgres runs `sql` with, a generic one included: asyncpg prepares its statements, so a query is
    planned without its parameters' values after a few runs; partitions are then pruned at executor start and
    the pruned ones do not appear in EXPLAIN ANALYZE's plan."""
    await conn.execute("SET plan_cache_mode = force_generic_plan")
    try:
        rows = await conn.fetch(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {sql}", *args)
    finally:
        await conn.execute("RESET plan_cache_mode")
    return "\n".join(row[0] for row in rows)


# ---------------------------------------------------------------------------------------------
# Keys and partitions
# ---------------------------------------------------------------------------------------------

async def test_every_key_of_a_partitioned_table_holds_the_insured_region_and_its_month(fresh):
    async with fresh.acquire() as conn:
        kinds = dict(await conn.fetch("SELECT relname::text, relkind::text FROM pg_class WHERE relname = ANY($1)",
                                      list(TABLES)))
        keys = await conn.fetch(
            "SELECT c.conrelid::regclass::text AS table_name, c.conname, "
            "array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, n) JOIN pg_attribute a "
            "      ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.n) AS columns "
            "FROM pg_constraint c WHERE c.contype IN ('p', 'u') AND c.conrelid = ANY($1::regclass[])", list(TABLES))
        unique_indexes = await conn.fetch(
            "SELECT i.indrelid::regclass::text AS table_name, array(SELECT a.attname::text "
            "FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n) AS columns FROM pg_index i "
            "WHERE i.indisunique AND i.indrelid = ANY($1::regclass[])", list(TABLES))
        month = await conn.fetchval("SELECT to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')")
        made = {(row["parent"], row["month"]) for row in await conn.fetch("SELECT * FROM month_partitions()")}
    assert kinds == dict.fromkeys(TABLES, "p"), "every one is a partitioned table"
    assert {row["table_name"] for row in keys} == set(TABLES)
    for row in [*keys, *unique_indexes]:
        assert row["columns"][0] == "insured_region", row  # Citus: the distribution column leads every key
        assert KEYS[row["table_name"]] in row["columns"], row
    # This month's and the next one's partitions are there before anything is written.
    next_month = partitions.next_month(month)
    assert {(table, wanted) for table in TABLES for wanted in (month, next_month)} <= made


async def test_rows_land_in_their_months_partition_and_each_journal_is_checked_in_its_own(fresh):
    async with fresh.acquire() as conn:
        await conn.execute("SELECT ensure_month_partition(m) FROM unnest(array['2026-06', '2026-07']) m")
        june = await insert_claim(conn, "2026-06-30")
        july = await insert_claim(conn, "2026-07-01")
        await settle(conn, june, "2026-07")  # pending over midnight: settled, and so booked, in July
        await settle(conn, july, "2026-07")
        assert await partition_of(conn, "claims", "settlement_id", june) == ["claims_p2026_06"]
        assert await partition_of(conn, "claims", "settlement_id", july) == ["claims_p2026_07"]
        assert await partition_of(conn, "ledger_transactions", "settlement_id", june) == ["ledger_transactions_p2026_07"]
        tx_id = await conn.fetchval("SELECT tx_id FROM ledger_transactions WHERE settlement_id = $1", june)
        assert await partition_of(conn, "ledger_postings", "tx_id", tx_id) == ["ledger_postings_p2026_07"]
        assert await partition_of(conn, "statement_lines", "settlement_id", june) == ["statement_lines_p2026_07"]
        # Two journals committed together, one of them unbalanced: refused at commit, naming it.
        with pytest.raises(asyncpg.CheckViolationError, match=r"ledger transaction (\d+) is unbalanced by 1 fen") as raised:
            async with conn.transaction():
                good = await conn.fetchval("INSERT INTO ledger_transactions (kind, clearing_month, insured_region) "
                                           "VALUES ('topup', '2026-06', $1) RETURNING tx_id", INSURED)
                await insert_legs(conn, good, "2026-06", [("x/a", 5), ("x/b", -5)])
                bad = await conn.fetchval("INSERT INTO ledger_transactions (kind, clearing_month, insured_region) "
                                          "VALUES ('topup', '2026-07', $1) RETURNING tx_id", INSURED)
                await insert_legs(conn, bad, "2026-07", [("x/a", 5), ("x/b", -4)])
        assert raised.match(f"ledger transaction {bad} ")
        # A leg outside its journal's partition has no journal there: refused as a foreign key would.
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="no such transaction"):
            async with conn.transaction():
                tx = await conn.fetchval("INSERT INTO ledger_transactions (kind, clearing_month, insured_region) "
                                         "VALUES ('topup', '2026-07', $1) RETURNING tx_id", INSURED)
                await insert_legs(conn, tx, "2026-06", [("x/a", 5), ("x/b", -5)])
        # A month without partitions takes no row; a partition is never truncated.
        with pytest.raises(asyncpg.CheckViolationError, match="no partition"):
            await insert_claim(conn, "2031-01-15")
        for name in ("ledger_postings_p2026_07", "claims_p2026_06", "statement_lines_p2026_07"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="TRUNCATE"):
                await conn.execute(f"TRUNCATE {name}")
        assert await conn.fetchval("SELECT count(*) FROM ledger_postings") == 4


async def test_making_a_months_partitions_twice_at_once_makes_them_once(fresh):
    async def make() -> int:
        async with fresh.acquire() as conn, conn.transaction():
            return await conn.fetchval("SELECT ensure_month_partition('2027-03')")

    made = await asyncio.gather(*(make() for _ in range(3)))
    assert sorted(made) == [0, 0, len(TABLES)]


async def test_the_services_make_a_months_partitions_without_deadlocking_a_request_in_flight(fresh):
    """A close in flight has read the request log (a lock on `requests`) and is about to post (a lock on the
    ledger) when a new month's partitions are made: made one by one, each in its own transaction, they wait for
    the close instead of holding the ledger's lock while waiting for the log's — the deadlock one transaction
    making all of them would meet. Then the month is remembered: no more queries for it."""
    made = partitions.MonthPartitions(fresh)
    async with fresh.acquire() as conn:
        await conn.execute("SELECT ensure_month_partition('2027-04')")
        async with conn.transaction():
            await conn.fetch("SELECT * FROM requests WHERE request_id = $1", uuid.uuid4())  # as replay() does
            making = asyncio.create_task(made.ensure("2027-05"))
            await asyncio.sleep(1.0)  # it makes what it can and waits for `requests`
            tx_id = await asyncio.wait_for(conn.fetchval(
                "INSERT INTO ledger_transactions (kind, clearing_month, insured_region) VALUES ('topup', '2027-04', $1) "
                "RETURNING tx_id", INSURED), timeout=10)
            await insert_legs(conn, tx_id, "2027-04", [("x/a", 5), ("x/b", -5)])
        await asyncio.wait_for(making, timeout=10)
        made_now = {row["parent"] for row in await conn.fetch(
            "SELECT parent FROM month_partitions() WHERE month IN ('2027-05', '2027-06')")}
    assert made_now == set(TABLES) and made.ready == {"2027-05", "2027-06"}
    await fresh.close()  # remembered: asking again needs no connection at all
    await made.ensure("2027-05")


# ---------------------------------------------------------------------------------------------
# Pruning: a month's statement, a day's reconciliation, a journal's balance read one partition
# ---------------------------------------------------------------------------------------------

async def test_statement_reconciliation_and_balance_queries_read_one_partition(fresh):
    months = ("2026-05", "2026-06", "2026-07")
    async with fresh.acquire() as conn:
        await conn.execute("SELECT ensure_month_partition(m) FROM unnest($1::text[]) m", list(months))
        for month in months:
            await settle(conn, await insert_claim(conn, f"{month}-15"), month)
        await conn.execute("ANALYZE")
        statement = await explain(conn, store.STATEMENT_ENTRIES_SQL, "2026-06", INSURED)
        day = await explain(conn, store.DAY_LINES_SQL.format(day_column=store.DAY_COLUMNS[DayKey.SETTLEMENT]),
                            date(2026, 6, 15), None, INSURED)
        tx_id = await conn.fetchval("SELECT tx_id FROM ledger_transactions WHERE clearing_month = '2026-06'")
        balance = await explain(conn, "SELECT coalesce(sum(amount_fen), 0), count(*) FROM ledger_postings "
                                "WHERE insured_region = $1 AND clearing_month = $2 AND tx_id = $3", INSURED, "2026-06",
                                tx_id)
        recomputed = await explain(conn, "SELECT split_part(account, '/', 4), sum(amount_fen) FROM ledger_postings "
                                   "WHERE clearing_month = $1 AND account LIKE 'treating/%/receivable/%' GROUP BY 1",
                                   "2026-06")
        totals = await explain(conn, f"SELECT count(*) FROM ({store.statement_entries_sql('= ANY($1::text[])')}) e",
                               ["2026-06", "2026-07"], INSURED)
    assert scanned(statement, "statement_lines") == {"statement_lines_p2026_06"}, statement
    assert scanned(day, "claims") == {"claims_p2026_06"}, day
    assert scanned(balance, "ledger_postings") == {"ledger_postings_p2026_06"}, balance
    assert scanned(recomputed, "ledger_postings") == {"ledger_postings_p2026_06"}, recomputed
    assert scanned(totals, "statement_lines") == {"statement_lines_p2026_06", "statement_lines_p2026_07"}, totals


# ---------------------------------------------------------------------------------------------
# A claim settled near midnight, retried after it
# ---------------------------------------------------------------------------------------------

async def test_a_claim_settled_before_midnight_and_retried_after_it_keeps_one_key(own_kit, timeline):
    """The last evening of June: the claim settles, its answer is lost; the retry comes after midnight, in
    July. One row, in June's partition (its settlement day's), the same answer; a cancel of it in July is filed
    in the request log under June too, so its retry finds the same key."""
    kit = own_kit
    timeline.at("2026-06-30", hour=23)
    member = await kit.new_member(INSURED)
    lines = [kit.bill_line("1", kit.plain_codes(TREATING)[0], "2", 60000, "2026-06-28")]
    encounter_id = await kit.open_encounter(H_GUANGZHOU, member, lines, "2026-06-28")
    request = ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on="2026-06-30")
    first = await kit.treating(TREATING).Settle(request)
    settlement_id = first.settlement.settlement_id
    conn = await kit.db("clearinghouse")
    claim = await conn.fetchrow("SELECT request FROM claims WHERE settlement_id = $1", uuid.UUID(settlement_id))
    settle_request = ch.SettleClaimRequest.FromString(bytes(claim["request"]))
    timeline.at("2026-07-01", hour=1)  # (an hour on: the offset is whole seconds, midnight itself could be June)
    again = await kit.clearing().SettleClaim(settle_request)
    assert again.settlement.SerializeToString() == (await kit.clearing().SettleClaim(settle_request)).settlement.SerializeToString()
    rows = await conn.fetch("SELECT tableoid::regclass::text AS partition, settlement_day, clearing_month FROM claims "
                            "WHERE settlement_id = $1", uuid.UUID(settlement_id))
    assert [tuple(row) for row in rows] == [("claims_p2026_06", date(2026, 6, 30), "2026-06")]
    cancel = ta.CancelRequest(request_id=kit.rid(), settlement_id=settlement_id, reason="billed twice")
    cancelled = await kit.treating(TREATING).Cancel(cancel)
    cancel_id = str(await conn.fetchval("SELECT cancel_request_id FROM claims WHERE settlement_id = $1",
                                        uuid.UUID(settlement_id)))
    assert cancelled.settlement.settlement_id == settlement_id
    logged = await conn.fetchrow("SELECT request, response FROM requests WHERE request_id = $1", uuid.UUID(cancel_id))
    timeline.at("2026-08-01", hour=1)  # the treating agency's retry of its CancelClaim, a month later
    retried = await kit.clearing().CancelClaim(ch.CancelClaimRequest.FromString(bytes(logged["request"])))
    assert retried.SerializeToString() == bytes(logged["response"])
    logged = await conn.fetch("SELECT tableoid::regclass::text, insured_region, month FROM requests "
                              "WHERE request_id = $1", uuid.UUID(cancel_id))
    assert [tuple(row) for row in logged] == [("requests_p2026_06", INSURED, "2026-06")]
    lines = [tuple(row) for row in await conn.fetch(
        "SELECT tableoid::regclass::text, kind FROM statement_lines WHERE settlement_id = $1 ORDER BY month",
        uuid.UUID(settlement_id))]
    assert lines == [("statement_lines_p2026_06", "settlement"), ("statement_lines_p2026_07", "cancel")]
    assert await audit.statement_line_mismatches(conn) == []
    undo = await conn.fetchval("SELECT undo_month FROM claims WHERE settlement_id = $1", uuid.UUID(settlement_id))
    assert undo == "2026-07"  # the cancel itself clears in the month it was committed in


# ---------------------------------------------------------------------------------------------
# Detaching an old month
# ---------------------------------------------------------------------------------------------

async def test_an_open_month_is_never_detached(fresh):
    async with fresh.acquire() as conn:
        await conn.execute("SELECT ensure_month_partition('2026-02')")
        await settle(conn, await insert_claim(conn, "2026-02-10"), "2026-02")
        async with conn.transaction():
            refusal = await partitions.detachable_refusal(conn, "2026-02")
        assert refusal == "month 2026-02 is open: only a closed month is detached"
        assert {row["parent"] for row in await conn.fetch(
            "SELECT parent FROM month_partitions() WHERE month = '2026-02'")} == set(TABLES)


async def test_a_closed_cleared_month_is_archived_and_the_ledger_still_adds_up(fresh):
    async with fresh.acquire() as conn:
        await conn.execute("SELECT ensure_month_partition(m) FROM unnest(array['2026-02', '2026-03']) m")
        await settle(conn, await insert_claim(conn, "2026-02-10"), "2026-02", 700)
        late = await insert_claim(conn, "2026-02-28")
        await settle(conn, late, "2026-03", 300)  # settled after midnight: clears in March, kept in February's rows
        async with conn.transaction():
            await conn.execute("LOCK TABLE clearing_aggregates IN SHARE ROW EXCLUSIVE MODE")
            await conn.execute("INSERT INTO month_closings (month, response) VALUES ('2026-02', '')")
        with pytest.raises(partitions.PreconditionFailed, match="closed but not cleared"):
            await partitions.detach_month(conn, "2026-02")
        await conn.execute("INSERT INTO month_clearings (month, region, net_fen, cleared_at) "
                           "VALUES ('2026-02', $1, 0, now())", INSURED)
        # A claim of February's days still clears in March, which is open: February stays.
        with pytest.raises(partitions.PreconditionFailed, match="1 claims pending or clearing in an open month"):
            await partitions.detach_month(conn, "2026-02")
        async with conn.transaction():
            await conn.execute("LOCK TABLE clearing_aggregates IN SHARE ROW EXCLUSIVE MODE")
            await conn.execute("INSERT INTO month_closings (month, response) VALUES ('2026-03', '')")
        detached = await partitions.detach_month(conn, "2026-02")
        left = await conn.fetchval("SELECT count(*) FROM month_partitions() WHERE month = '2026-02'")
        claims = await conn.fetchval("SELECT count(*) FROM claims")
        kept = await conn.fetchval("SELECT count(*) FROM claims_p2026_02")  # a plain table now, to dump and drop
        mismatches = [await audit.balance_mismatches(conn), await audit.aggregate_mismatches(conn),
                      await audit.unbalanced_transactions(conn), await audit.statement_line_mismatches(conn)]
        with pytest.raises(partitions.PreconditionFailed, match="no partitions"):
            await partitions.detach_month(conn, "2026-02")
    assert detached == [f"{table}_p2026_02" for table in sorted(TABLES)]
    assert (left, claims, kept) == (0, 0, 2)
    assert mismatches == [[], [], [], []]

    # Archived for good: no partition of February is made again, by a late claim or anything else — dumped and
    # dropped or not.
    months = partitions.MonthPartitions(fresh)
    with pytest.raises(partitions.PreconditionFailed, match="month 2026-02 is archived") as refused:
        await months.ensure("2026-02", field="claim.settlement_day")
    assert refused.value.subject == "claim.settlement_day"
    async with fresh.acquire() as conn:
        await conn.execute("DROP TABLE " + ", ".join(detached))
        with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError, match="archived"):
            await conn.execute("SELECT ensure_month_partition('2026-02')")
        assert await conn.fetchval("SELECT count(*) FROM month_partitions() WHERE month = '2026-02'") == 0
        assert await conn.fetchval("SELECT array_agg(month) FROM archived_months") == ["2026-02"]


@pytest.mark.parametrize(("day", "why"), [("2026-07-20", "is after today"), ("2026-06-27", "is before the discharge")])
async def test_a_claim_whose_settlement_day_cannot_be_is_refused_before_any_partition_is_made(own_kit, timeline, day,
                                                                                              why):
    """The settlement day decides the partition a claim is filed in: a day after today or before the discharge is
    INVALID_ARGUMENT naming it, and no partition is made for its month."""
    kit = own_kit
    timeline.at("2026-06-30", hour=12)
    member = await kit.new_member(INSURED)
    lines = [kit.bill_line("1", kit.plain_codes(TREATING)[0], "2", 60000, "2026-06-28")]
    encounter_id = await kit.open_encounter(H_GUANGZHOU, member, lines, "2026-06-28")
    settled = await kit.treating(TREATING).Settle(
        ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on="2026-06-28"))
    conn = await kit.db("clearinghouse")
    claim = await conn.fetchrow("SELECT request FROM claims WHERE settlement_id = $1",
                                uuid.UUID(settled.settlement.settlement_id))
    request = ch.SettleClaimRequest.FromString(bytes(claim["request"]))
    request.request_id = request.claim.settlement_id = kit.rid()
    request.claim.settlement_day = day
    before = await conn.fetchval("SELECT count(*) FROM month_partitions()")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await kit.clearing().SettleClaim(request)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "claim.settlement_day" in refused.value.details() and why in refused.value.details()
    assert await conn.fetchval("SELECT count(*) FROM month_partitions()") == before
    assert await conn.fetchval("SELECT count(*) FROM claims WHERE settlement_id = $1",
                               uuid.UUID(request.request_id)) == 0






async def test_clearing_admin_month_detach_refuses_an_open_month_with_exit_2(stack, stack_file):
    connection = await stack.connect("clearinghouse")
    try:
        month = await connection.fetchval("SELECT to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')")
    finally:
        await connection.close()
    code, out, err = await clearing_admin("month", "detach", month, "--config", str(stack_file))
    assert (code, out) == (2, "")
    assert err == f"error: month: month {month} is open: only a closed month is detached\n"
    code, out, err = await clearing_admin("month", "detach", "2026-13", "--config", str(stack_file))
    assert code == 2 and err.startswith("error: month: ") and err.count("\n") == 1
    connection = await stack.connect("clearinghouse")
    try:
        assert await connection.fetchval("SELECT count(*) FROM month_partitions() WHERE month = $1", month) == len(TABLES)
    finally:
        await connection.close()
