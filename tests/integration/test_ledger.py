"""The clearing house ledger is trustworthy by the database itself (SPEC §6): balanced at commit with at
least two non-zero legs, append-only, running balances and month aggregates written by triggers only and
equal to a recomputation, closed months frozen, a committed transaction never extended. Each guard is
tried by breaking it in SQL on a raw connection, as tests/integration/test_treating_ledger.py does.

The month guards need closed months, which the session's clearing house cannot spare (other modules close
the current month when they choose), so they run on a clearing house and two regions of their own
(`private`), where this module settles, cancels, reverses and closes what it likes — among them claims the
funds pay nothing for, which post nothing but still count in their month and its statements."""

from __future__ import annotations

import shutil
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import hospital_pb2
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

from services.clearinghouse import audit
from services.clearinghouse.closing import next_month
from services.common import clock
from services.common.db import apply_migrations, create_pool, drop_databases, ensure_database
from services.stack.config import StackConfig, dsn_for
from services.stack.enrol import enrol_all
from services.stack.wiring import connect_insured_agencies, connect_regions, start_clearing_house, start_region

TREATING = "440100"
INSURED = "430100"
H_GUANGZHOU = "H44010000001"
ADMITTED_ON, SERVED_ON, DISCHARGED_ON = "2026-09-01", "2026-09-03", "2026-09-05"
PRIVATE_MONTH_LAST_DAY, PRIVATE_NEXT_MONTH_FIRST_DAY = "2026-09-30", "2026-10-01"


class Rollback(Exception):
    """Raised to roll back a transaction that did what a test wanted to see allowed."""


@pytest.fixture(scope="module")
async def settled(stack):
    """A batch of discharges so the ledger has something in it."""
    hospital = stack.hospital()
    async for _ in hospital.RunDischarges(hospital_pb2.RunDischargesRequest(
            request_id=str(uuid.uuid4()), count=24, seed=31, concurrency=6, month="2026-04")):
        pass
    return stack


async def test_every_transaction_balances(settled):
    connection = await settled.connect("clearinghouse")
    try:
        unbalanced = await audit.unbalanced_transactions(connection)
        transactions = await connection.fetchval("SELECT count(*) FROM ledger_transactions")
    finally:
        await connection.close()
    assert transactions > 0
    assert unbalanced == []


async def test_running_balances_equal_the_sum_of_postings(settled):
    connection = await settled.connect("clearinghouse")
    try:
        differences = await audit.balance_mismatches(connection)
        accounts = await connection.fetchval("SELECT count(*) FROM ledger_balances")
        overall = await connection.fetchval("SELECT sum(balance_fen) FROM ledger_balances")
    finally:
        await connection.close()
    assert accounts > 0
    assert differences == []
    assert overall == 0  # every transaction balances, so all balances together are zero


async def test_month_aggregates_equal_a_recomputation_from_the_claims_and_the_postings(settled):
    connection = await settled.connect("clearinghouse")
    try:
        mismatches = await audit.aggregate_mismatches(connection)
        line_mismatches = await audit.statement_line_mismatches(connection)
        cells = await connection.fetchval("SELECT count(*) FROM clearing_aggregates")
    finally:
        await connection.close()
    assert cells > 0
    assert mismatches == []
    assert line_mismatches == []  # the statement lines the claims trigger wrote (0014)


# ---------------------------------------------------------------------------------------------
# Breaking it through SQL directly (the session's clearing house)
# ---------------------------------------------------------------------------------------------

async def insert_transaction(connection: asyncpg.Connection, legs: list[tuple[str, int]],
                             month: str = "2099-01", kind: str = "cancel") -> int:
    """A cancel (or `kind`) transaction of some settled claim, clearing in `month`, with `legs` (the month's
    partition made first, in its own transaction, as the services do)."""
    claim = await connection.fetchrow("SELECT settlement_id, insured_region FROM claims WHERE status = 'settled' "
                                      "ORDER BY settlement_id LIMIT 1")
    await ensure_partition(connection, month)
    tx_id = await connection.fetchval(
        "INSERT INTO ledger_transactions (settlement_id, kind, clearing_month, insured_region) "
        "VALUES ($1, $2, $3, $4) RETURNING tx_id", claim["settlement_id"], kind, month, claim["insured_region"])
    await add_legs(connection, tx_id, legs)
    return tx_id


async def ensure_partition(connection: asyncpg.Connection, month: str) -> None:
    """The month's partitions (the services make them ahead, in a transaction of their own; a test may make
    them inside its transaction: it is the only writer)."""
    await connection.execute("SELECT ensure_month_partition($1)", month)


async def add_legs(connection: asyncpg.Connection, tx_id: int, legs: list[tuple[str, int]]) -> None:
    """Postings on transaction `tx_id`, in its insured region and month (its partition)."""
    if legs:
        await connection.execute(
            "INSERT INTO ledger_postings (tx_id, insured_region, clearing_month, account, amount_fen) "
            "SELECT t.tx_id, t.insured_region, t.clearing_month, leg.account, leg.amount_fen "
            "FROM ledger_transactions t, unnest($2::text[], $3::bigint[]) AS leg (account, amount_fen) "
            "WHERE t.tx_id = $1", tx_id, [account for account, _ in legs], [amount for _, amount in legs])


async def ledger_footprint(connection: asyncpg.Connection) -> tuple:
    """What a refused statement must leave as it was: the ledger, its balances, the aggregates, the closings."""
    return tuple(await connection.fetchrow("""
        SELECT (SELECT count(*) FROM ledger_transactions) AS transactions,
               (SELECT count(*) FROM ledger_postings) AS postings,
               (SELECT sum(abs(amount_fen)) FROM ledger_postings) AS posted,
               (SELECT count(*) FROM ledger_balances) AS accounts,
               (SELECT sum(abs(balance_fen)) FROM ledger_balances) AS balances,
               (SELECT array_agg(a ORDER BY a.clearing_month, a.insured_region, a.treating_region)::text
                FROM clearing_aggregates a) AS aggregates,
               (SELECT array_agg(c ORDER BY c.month)::text FROM month_closings c) AS closings,
               (SELECT array_agg((c.settlement_id, c.status, c.fund_pay_fen, c.clearing_month, c.undo_month)
                                 ORDER BY c.settlement_id)::text FROM claims c) AS claims"""))


async def test_an_unbalanced_transaction_is_refused_at_commit(settled):
    connection = await settled.connect("clearinghouse")
    try:
        before = await connection.fetchval("SELECT count(*) FROM ledger_postings")
        with pytest.raises(asyncpg.CheckViolationError, match="unbalanced"):
            async with connection.transaction():
                await insert_transaction(connection, [("x/a", 100), ("x/b", -99)])
        after = await connection.fetchval("SELECT count(*) FROM ledger_postings")
        balance = await connection.fetchval("SELECT balance_fen FROM ledger_balances WHERE account = 'x/a'")
    finally:
        await connection.close()
    assert after == before
    assert balance is None  # the running balance rolled back with the refused transaction


@pytest.mark.parametrize(("legs", "message"), [
    ([], "has 0 postings: at least two are needed"),
    ([("x/a", 0), ("x/b", 0)], "ledger_postings_amount_nonzero"),
    ([("x/a", 0)], "ledger_postings_amount_nonzero"),
    ([("x/a", 100), ("x/b", -100), ("x/c", 0)], "ledger_postings_amount_nonzero"),
], ids=["no-postings", "zero-amounts", "one-zero-leg", "balanced-with-a-zero-leg"])
async def test_a_transaction_without_two_non_zero_legs_is_refused(settled, legs, message):
    connection = await settled.connect("clearinghouse")
    try:
        before = await ledger_footprint(connection)
        with pytest.raises(asyncpg.CheckViolationError, match=message):
            async with connection.transaction():
                await insert_transaction(connection, legs)
        assert await ledger_footprint(connection) == before
    finally:
        await connection.close()


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_postings SET amount_fen = amount_fen + 1",
    "DELETE FROM ledger_postings",
    "UPDATE ledger_transactions SET clearing_month = '2000-01'",
    "DELETE FROM ledger_transactions",
])
async def test_the_ledger_is_append_only(settled, statement):
    connection = await settled.connect("clearinghouse")
    try:
        total = await connection.fetchval("SELECT sum(amount_fen) FROM ledger_postings WHERE amount_fen > 0")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await connection.execute(statement)
        assert await connection.fetchval("SELECT sum(amount_fen) FROM ledger_postings WHERE amount_fen > 0") == total
    finally:
        await connection.close()


BALANCES = "ledger_balances is written only by its trigger"
AGGREGATES = "clearing_aggregates is written only by its trigger"


@pytest.mark.parametrize(("statement", "message"), [
    ("TRUNCATE ledger_postings", "append-only: TRUNCATE on ledger_postings"),
    ("TRUNCATE ledger_transactions CASCADE", "append-only: TRUNCATE on ledger_transactions"),
    ("TRUNCATE claims CASCADE", "obligations: TRUNCATE on claims refused"),
    ("TRUNCATE ledger_balances", f"{BALANCES}: a direct TRUNCATE"),
    ("UPDATE ledger_balances SET balance_fen = 0", f"{BALANCES}: a direct UPDATE"),
    ("DELETE FROM ledger_balances", f"{BALANCES}: a direct DELETE"),
    ("INSERT INTO ledger_balances (account, balance_fen) VALUES ('insured/430100/prepayment/x', 1)",
     f"{BALANCES}: a direct INSERT"),
    ("UPDATE clearing_aggregates SET fund_pay_fen = fund_pay_fen + 1", f"{AGGREGATES}: a direct UPDATE"),
    ("UPDATE clearing_aggregates SET settlements = settlements + 1", f"{AGGREGATES}: a direct UPDATE"),
    ("DELETE FROM clearing_aggregates", f"{AGGREGATES}: a direct DELETE"),
    ("INSERT INTO clearing_aggregates (clearing_month, insured_region, treating_region, settlements, cancels, "
     "fund_pay_fen) VALUES ('2099-02', '430100', '440100', 1, 0, 100)", f"{AGGREGATES}: a direct INSERT"),
    ("SELECT clearing_aggregates_add('2099-02', '430100', '440100', 1, 0, 100)", f"{AGGREGATES}: a direct INSERT"),
    ("TRUNCATE clearing_aggregates", f"{AGGREGATES}: a direct TRUNCATE"),
    ("TRUNCATE month_closings CASCADE", "never reopened or edited: TRUNCATE on month_closings"),
])
async def test_balances_and_aggregates_follow_their_sources_only_and_nothing_is_truncated(settled, statement, message):
    connection = await settled.connect("clearinghouse")
    try:
        before = await ledger_footprint(connection)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match=message):
            await connection.execute(statement)
        assert await ledger_footprint(connection) == before
    finally:
        await connection.close()


async def test_a_committed_transaction_takes_no_new_postings(settled):
    """A balanced pair of legs added later to a settlement's transaction would pass the balance check; the
    database refuses it because the transaction was committed by an earlier database transaction."""
    connection = await settled.connect("clearinghouse")
    try:
        tx_id = await connection.fetchval("SELECT max(tx_id) FROM ledger_transactions WHERE kind = 'settlement'")
        before = await ledger_footprint(connection)
        with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError, match=f"{tx_id} was committed earlier"):
            async with connection.transaction():
                await add_legs(connection, tx_id, [("x/a", 100), ("x/b", -100)])
        assert await ledger_footprint(connection) == before
        # Its own transaction may add legs, also when the transaction row was written in a savepoint.
        with pytest.raises(Rollback):
            async with connection.transaction():
                async with connection.transaction():  # a savepoint
                    fresh = await insert_transaction(connection, [])
                await add_legs(connection, fresh, [("x/a", 100), ("x/b", -100)])
                raise Rollback
        assert await ledger_footprint(connection) == before
    finally:
        await connection.close()


async def test_month_closings_are_inserted_only_under_the_close_lock(settled):
    connection = await settled.connect("clearinghouse")
    try:
        before = await ledger_footprint(connection)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="only by the close path"):
            await connection.execute("INSERT INTO month_closings (month, response) VALUES ('2099-07', '')")
        assert await ledger_footprint(connection) == before
        with pytest.raises(Rollback):  # what the close path does is allowed
            async with connection.transaction():
                await connection.execute("LOCK TABLE clearing_aggregates IN SHARE ROW EXCLUSIVE MODE")
                await connection.execute("INSERT INTO month_closings (month, response) VALUES ('2099-07', '')")
                raise Rollback
        assert await ledger_footprint(connection) == before
    finally:
        await connection.close()


# ---------------------------------------------------------------------------------------------
# A clearing house of its own: claims the funds pay nothing for, closed months
# ---------------------------------------------------------------------------------------------

@dataclass
class Private:
    stack: Any  # a Stack (tests/conftest.py) of its own: a clearing house, TREATING and INSURED
    kit: Any  # a Kit (tests/integration/conftest.py) over it
    month: str  # the month everything below settled in, closed
    closing: ch.MonthClosing
    fund_pay: dict[str, int]  # settlement id → fund_pay_fen
    unpaid: str  # settled, the funds pay nothing (under the deductible)
    unpaid_cancelled: str
    unpaid_reversed: str
    paid: str  # settled, the funds pay


@pytest.fixture(scope="module")
async def private(stack, kit, database):
    """Four stays of INSURED members at a TREATING hospital through a clearing house of their own — three the
    funds pay nothing for (one left settled, one cancelled, one reversed) and one they pay for — then their
    month closed."""
    config = StackConfig(base_dsn=database.base_dsn, database_prefix=f"g{uuid.uuid4().hex[:8]}",
                         region_ports={TREATING: 0, INSURED: 0}, seed=kit.seed, members_per_region=0)
    parties = ["clearinghouse", *(f"{role}_{region}" for region in (TREATING, INSURED)
                                  for role in ("treating", "insured"))]
    for party in parties:
        await ensure_database(database.base_dsn, config.database(party))
    clearing_house = await start_clearing_house(config.dsn("clearinghouse"), {}, transport=stack.transport)
    regions = {region: await start_region(region, config.dsn(f"treating_{region}"), config.dsn(f"insured_{region}"),
                                          f"127.0.0.1:{clearing_house.port}", transport=stack.transport)
               for region in (TREATING, INSURED)}
    own = type(stack)(config, clearing_house, regions, None, [], stack.transport)
    own_kit = type(kit)(own)
    saved_offset = clock.offset()
    try:
        # Settled on the last evening of PRIVATE_MONTH, closed on the first of the next (the services' clock moved:
        # only a month that is over can be closed), then the clock is put back.
        clock.set_offset(clock.offset_to(clock.shanghai_instant(date.fromisoformat(PRIVATE_MONTH_LAST_DAY), 20)))
        addresses = {region: own.address(region) for region in regions}
        connect_regions(clearing_house, addresses)
        for region in regions.values():
            connect_insured_agencies(region, addresses)
        await enrol_all(addresses, kit.seed, 0,
                        transport=stack.transport)  # the catalogues (published to this clearing house too)
        code = kit.plain_codes(TREATING)[3]
        small = [kit.bill_line("1", code, "1", 1_000, SERVED_ON)]  # 10 yuan: under any deductible
        big = [kit.bill_line("1", code, "10", 500_000, SERVED_ON)]  # 50,000 yuan: well above it
        treating = own_kit.treating(TREATING)
        ids, fund_pay = {}, {}
        for name, lines in (("unpaid", small), ("unpaid_cancelled", small), ("unpaid_reversed", small),
                            ("paid", big)):
            member = await own_kit.new_member(INSURED)
            encounter_id = await own_kit.open_encounter(H_GUANGZHOU, member, lines, ADMITTED_ON)
            settle = ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on=DISCHARGED_ON)
            settlement = (await treating.Settle(settle)).settlement
            assert settlement.status == types_pb2.SETTLEMENT_STATUS_SETTLED and not settlement.local
            ids[name], fund_pay[settlement.settlement_id] = settlement.settlement_id, \
                settlement.adjudication.split.fund_pay_fen
            if name == "unpaid_cancelled":
                await treating.Cancel(ta.CancelRequest(request_id=kit.rid(), settlement_id=settlement.settlement_id,
                                                       reason="duplicate bill"))
            elif name == "unpaid_reversed":
                answer = await treating.Reverse(ta.ReverseRequest(request_id=kit.rid(),
                                                                  original_request_id=settle.request_id, reason="test"))
                assert answer.outcome == types_pb2.REVERSAL_OUTCOME_REVERSED
        months = {row["clearing_month"] for row in await (await own_kit.db("clearinghouse")).fetch(
            "SELECT clearing_month FROM claims")}
        assert len(months) == 1, months
        month = months.pop()
        clock.set_offset(clock.offset_to(clock.shanghai_instant(date.fromisoformat(PRIVATE_NEXT_MONTH_FIRST_DAY), 10)))
        closing = (await own.clearing().CloseMonth(ch.CloseMonthRequest(request_id=kit.rid(), month=month))).closing
        clock.set_offset(saved_offset)
        yield Private(own, own_kit, month, closing, fund_pay, **ids)
    finally:
        clock.set_offset(saved_offset)
        await own_kit.close()
        for channel in own.channels:
            await channel.close()
        for item in regions.values():
            await item.stop(None)
        await clearing_house.stop(None)
        admin = await asyncpg.connect(database.base_dsn)
        try:
            for party in parties:
                await admin.execute(f'DROP DATABASE IF EXISTS "{config.database(party)}" WITH (FORCE)')
        finally:
            await admin.close()


async def statement(private: Private, region: str) -> tuple[ch.StatementSummary, list[ch.StatementEntry]]:
    items = [item async for item in private.stack.clearing().StreamStatement(
        ch.StreamStatementRequest(region=region, month=private.month))]
    return items[0].summary, [item.entry for item in items[1:]]


async def test_a_claim_the_funds_pay_nothing_for_posts_nothing_but_counts_in_its_month_and_statement(private):
    unpaid = (private.unpaid, private.unpaid_cancelled, private.unpaid_reversed)
    paid_fen = private.fund_pay[private.paid]
    assert [private.fund_pay[settlement_id] for settlement_id in unpaid] == [0, 0, 0] and paid_fen > 0
    connection = await private.kit.db("clearinghouse")
    states = dict(await connection.fetch("SELECT settlement_id::text, status FROM claims"))
    assert states == {private.unpaid: "settled", private.unpaid_cancelled: "cancelled",
                      private.unpaid_reversed: "reversed", private.paid: "settled"}
    # Nothing posted for them: no transaction at all, not even one of zeros (their cancel and reversal neither).
    for settlement_id in unpaid:
        assert await private.kit.ledger(settlement_id) == {}
    assert sorted((await private.kit.ledger(private.paid))["settlement"].values()) == [-paid_fen] * 2 + [paid_fen] * 2
    # Still four settlements of the month, two of them undone, in its aggregate, its close and its statements.
    cells = [tuple(row) for row in await connection.fetch(
        "SELECT clearing_month, insured_region, treating_region, settlements, cancels, fund_pay_fen "
        "FROM clearing_aggregates")]
    assert cells == [(private.month, INSURED, TREATING, 4, 2, paid_fen)]
    assert [(c.insured_region, c.treating_region, c.settlements, c.cancels, c.amount_fen)
            for c in private.closing.cells] == [(INSURED, TREATING, 4, 2, paid_fen)]
    expected = Counter([("settlement", settlement_id) for settlement_id in (*unpaid, private.paid)]
                       + [("cancel", private.unpaid_cancelled), ("reversal", private.unpaid_reversed)])
    for region, side in ((INSURED, "entries_as_insured"), (TREATING, "entries_as_treating")):
        summary, entries = await statement(private, region)
        assert Counter((entry.kind, entry.settlement_id) for entry in entries) == expected, region
        assert getattr(summary, side) == 6
        assert (summary.owed_by_fen, summary.owed_to_fen) == ((paid_fen, 0) if region == INSURED else (0, paid_fen))
        for entry in entries:
            assert entry.fund_pay_fen == private.fund_pay[entry.settlement_id]
            assert entry.fund_pay_fen + entry.psn_pay_fen == entry.total_fen > 0
    year = await private.stack.clearing().GetYearSummary(ch.GetYearSummaryRequest(region=INSURED,
                                                                                  year=private.month[:4]))
    assert (year.totals.closed_months, year.totals.entries_as_insured, year.totals.owed_by_fen) == (1, 6, paid_fen)
    assert await audit.aggregate_mismatches(connection) == []
    assert await audit.statement_line_mismatches(connection) == []
    assert await audit.unbalanced_transactions(connection) == []
    assert await audit.balance_mismatches(connection) == []


async def test_a_posting_into_a_closed_month_is_refused(private):
    connection = await private.stack.connect("clearinghouse")
    try:
        before = await ledger_footprint(connection)
        with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError, match=f"month {private.month} is closed"):
            async with connection.transaction():
                await insert_transaction(connection, [("x/a", 100), ("x/b", -100)], private.month)
        assert await ledger_footprint(connection) == before
        # The first open month takes it; and so does a month this very transaction closes (the close path).
        later = next_month(private.month)
        with pytest.raises(Rollback):
            async with connection.transaction():
                await insert_transaction(connection, [("x/a", 100), ("x/b", -100)], later)
                await connection.execute("LOCK TABLE clearing_aggregates IN SHARE ROW EXCLUSIVE MODE")
                await connection.execute("INSERT INTO month_closings (month, response) VALUES ($1, '')",
                                         next_month(later))
                await insert_transaction(connection, [("x/c", 100), ("x/d", -100)], next_month(later), "reversal")
                raise Rollback
        assert await ledger_footprint(connection) == before
    finally:
        await connection.close()


async def test_a_closed_months_aggregates_do_not_move(private):
    """A cancel booked into the closed month (by SQL: the services book it into the first open month) would
    move the month's frozen cell; the database refuses it. Into an open month, the claim moves that month's
    cell — the aggregates follow the claims."""
    connection = await private.stack.connect("clearinghouse")
    cancel = ("UPDATE claims SET status = 'cancelled', cancelled_at = now(), undo_month = $2 "
              "WHERE settlement_id = $1::text::uuid")
    try:
        before = await ledger_footprint(connection)
        with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError,
                           match=f"month {private.month} is closed: its clearing aggregates are frozen"):
            await connection.execute(cancel, private.paid, private.month)
        assert await ledger_footprint(connection) == before
        later = next_month(private.month)
        with pytest.raises(Rollback):
            async with connection.transaction():
                await connection.execute(cancel, private.paid, later)
                cell = await connection.fetchrow("SELECT settlements, cancels, fund_pay_fen FROM clearing_aggregates "
                                                 "WHERE clearing_month = $1", later)
                assert tuple(cell) == (0, 1, -private.fund_pay[private.paid])
                raise Rollback
        assert await ledger_footprint(connection) == before
    finally:
        await connection.close()


@pytest.mark.parametrize(("statement", "claim", "message"), [
    ("UPDATE claims SET fund_pay_fen = fund_pay_fen + 1, psn_pay_fen = psn_pay_fen - 1 WHERE settlement_id = $1",
     "paid", "is settled: its obligation and statement line are fixed"),
    ("UPDATE claims SET hifp_fen = hifp_fen + 1, maf_fen = maf_fen - 1 WHERE settlement_id = $1",
     "paid", "is settled: its obligation and statement line are fixed"),
    ("UPDATE claims SET clearing_month = '2099-08' WHERE settlement_id = $1",
     "unpaid", "is settled: its obligation and statement line are fixed"),
    ("UPDATE claims SET status = 'failed' WHERE settlement_id = $1",
     "unpaid", "is settled: its obligation and statement line are fixed"),
    ("DELETE FROM claims WHERE settlement_id = $1",  # nothing posted, so no foreign key holds it
     "unpaid", "is settled: its obligation and statement line are fixed"),
    ("UPDATE claims SET status = 'settled', cancel_request_id = NULL, cancelled_at = NULL, undo_month = NULL "
     "WHERE settlement_id = $1", "unpaid_cancelled", "is cancelled: its cancel or reversal is fixed"),
    ("UPDATE claims SET undo_month = '2099-09' WHERE settlement_id = $1",
     "unpaid_reversed", "is reversed: its cancel or reversal is fixed"),
])
async def test_a_settled_claims_obligation_is_fixed(private, statement, claim, message):
    connection = await private.stack.connect("clearinghouse")
    try:
        before = await ledger_footprint(connection)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match=message):
            await connection.execute(statement.replace("$1", "$1::text::uuid"), getattr(private, claim))
        assert await ledger_footprint(connection) == before
    finally:
        await connection.close()


@pytest.mark.parametrize(("statement", "message"), [
    ("UPDATE month_closings SET response = ''", "never reopened or edited: UPDATE on month_closings"),
    ("UPDATE month_closings SET month = '2099-10'", "never reopened or edited: UPDATE on month_closings"),
    ("DELETE FROM month_closings", "never reopened or edited: DELETE on month_closings"),
    ("TRUNCATE month_closings CASCADE", "never reopened or edited: TRUNCATE on month_closings"),
    ("INSERT INTO month_closings (month, response) VALUES ('2099-11', '')", "only by the close path"),
])
async def test_a_closed_month_is_never_reopened_or_edited(private, statement, message):
    connection = await private.stack.connect("clearinghouse")
    try:
        before = await ledger_footprint(connection)
        assert private.month in before[6]
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match=message):
            await connection.execute(statement)
        assert await ledger_footprint(connection) == before
    finally:
        await connection.close()
    again = await private.stack.clearing().GetMonthClosing(ch.GetMonthClosingRequest(month=private.month))
    assert again.closing.SerializeToString() == private.closing.SerializeToString()


# ---------------------------------------------------------------------------------------------
# The migration over a ledger written before it
# ---------------------------------------------------------------------------------------------

MIGRATIONS = Path(__file__).parents[2] / "services" / "clearinghouse" / "migrations"
LEGACY_SQL = """
INSERT INTO claims (settlement_id, treating_region, insured_region, member_id, hospital_code, status, catalogue_rule,
                    request, response, total_fen, fund_pay_fen, psn_pay_fen, hifp_fen, hifmi_fen, maf_fen, settled_at,
                    clearing_month, cancelled_at)
VALUES ($1, '440100', '430100', 'M1', 'H44010000001', 'settled', 'treating', '', '', 800, 500, 300, 500, 0, 0,
        '2026-03-10', '2026-03', NULL),
       ($2, '440100', '430100', 'M2', 'H44010000001', 'cancelled', 'treating', '', '', 900, 700, 200, 700, 0, 0,
        '2026-03-11', '2026-03', '2026-04-02'),
       ($3, '440100', '430100', 'M3', 'H44010000001', 'settled', 'treating', '', '', 100, 0, 100, 0, 0, 0,
        '2026-03-12', '2026-03', NULL);
INSERT INTO ledger_transactions (settlement_id, kind, clearing_month)
VALUES ($1, 'settlement', '2026-03'), ($2, 'settlement', '2026-03'), ($3, 'settlement', '2026-03'),
       ($2, 'cancel', '2026-04');
INSERT INTO ledger_postings (tx_id, account, amount_fen)
SELECT t.tx_id, leg.account, CASE t.kind WHEN 'cancel' THEN -1 ELSE 1 END * leg.sign * c.fund_pay_fen
FROM ledger_transactions t JOIN claims c USING (settlement_id),
LATERAL (VALUES ('treating/440100/receivable/430100', 1), ('insured/430100/payable/440100', -1),
                ('insured/430100/prepayment_drawn', 1), ('insured/430100/prepayment', -1)) AS leg(account, sign);
INSERT INTO clearing_aggregates (clearing_month, insured_region, treating_region, settlements, cancels, fund_pay_fen)
VALUES ('2026-03', '430100', '440100', 3, 0, 1200), ('2026-04', '430100', '440100', 0, 1, -700);
INSERT INTO month_closings (month, response) VALUES ('2026-03', '');
"""


async def test_the_migration_takes_over_a_ledger_written_before_it(database, tmp_path):
    """0008 over the ledger the old posting path wrote — a claim the funds paid nothing for posted four zero
    legs — records the month of each cancel on its claim, keeps the zero legs (append-only) by leaving the
    CHECK unvalidated, and from then on guards everything."""
    name = f"ch_guards_{uuid.uuid4().hex[:8]}"
    await ensure_database(database.base_dsn, name)
    pool = await create_pool(dsn_for(database.base_dsn, name))
    ids = [uuid.uuid4() for _ in range(3)]
    try:
        earlier = sorted(MIGRATIONS.glob("*.sql"))[:7]
        for path in earlier:
            shutil.copy(path, tmp_path / path.name)
        assert await apply_migrations(pool, tmp_path) == [path.name for path in earlier]
        async with pool.acquire() as connection, connection.transaction():
            for statement in filter(str.strip, LEGACY_SQL.split(";\n")):
                await connection.execute(statement, *(ids if "$1" in statement else ()))
        assert (await apply_migrations(pool, MIGRATIONS))[0] == "0008_ledger_guards.sql"
        async with pool.acquire() as connection:
            undo_months = dict(await connection.fetch("SELECT settlement_id, undo_month FROM claims"))
            validated = await connection.fetchval("SELECT convalidated FROM pg_constraint "
                                                  "WHERE conname = 'ledger_postings_amount_nonzero'")
            mismatches = await audit.aggregate_mismatches(connection)
            line_mismatches = await audit.statement_line_mismatches(connection)  # 0014's lines of the claims of before
            lines = await connection.fetchval("SELECT count(*) FROM statement_lines")
            with pytest.raises(asyncpg.CheckViolationError, match="ledger_postings_amount_nonzero"):
                async with connection.transaction():
                    await insert_transaction(connection, [("x/a", 0), ("x/b", 0)], "2026-05")
            with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError, match="month 2026-03 is closed"):
                async with connection.transaction():
                    await insert_transaction(connection, [("x/a", 1), ("x/b", -1)], "2026-03")
            legacy = await connection.fetchval("SELECT max(tx_id) FROM ledger_transactions")  # the 2026-04 cancel
            with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError, match="committed earlier"):
                await add_legs(connection, legacy, [("x/a", 1), ("x/b", -1)])
    finally:
        await pool.close()
        await drop_databases(database.base_dsn, name)
    assert undo_months == {ids[0]: None, ids[1]: "2026-04", ids[2]: None}
    assert validated is False  # the zero legs stay; new ones are refused all the same
    assert mismatches == []  # the old aggregates are exactly what the claims trigger would have made
    assert (line_mismatches, lines) == ([], 4)  # three settlements, one cancel
