"""The treating agency's own ledger (SPEC §6 "the hospital's receivable at its treating agency"): each
settled stay owes its hospital the funds' share, against the insured region (cross-region) or the
region's own fund (local); a cancel posts the mirror. Trustworthy by the database itself, like the
clearing house's (tests/integration/test_ledger.py), and in agreement with the payout lists (拨付)."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from clearinghouse.v1 import hospital_pb2
from clearinghouse.v1 import treating_agency_pb2 as ta

from services.common.db import apply_migrations, create_pool, drop_databases, ensure_database
from services.stack.config import dsn_for

TREATING = "440100"
INSURED = "430100"
H_GUANGZHOU = "H44010000001"
REGIONS = ("211100", "230400", "430100", "440100", "460100", "530100", "610924")
MIGRATIONS = Path(__file__).parents[2] / "services" / "treating" / "migrations"


@dataclass
class Scenario:
    cross_region: str  # settled, funds pay
    cross_region_cancelled: str
    local: str  # settled, same-region member
    local_cancelled: str
    unpaid: str  # settled, the funds pay nothing (under the deductible)
    fund_pay: dict[str, int]


@pytest.fixture(scope="module")
async def scenario(stack, kit) -> Scenario:
    """A generated batch of discharges in every region, plus hand-made stays at one hospital."""
    async for _ in stack.hospital().RunDischarges(hospital_pb2.RunDischargesRequest(
            request_id=str(uuid.uuid4()), count=20, seed=71, concurrency=5, month="2026-09")):
        pass
    code = kit.plain_codes(TREATING)[3]
    big = [kit.bill_line("1", code, "10", 500_000, "2026-09-03")]  # 50,000 yuan: well above the deductible
    small = [kit.bill_line("1", code, "1", 1_000, "2026-09-03")]  # 10 yuan: under any deductible
    ids = {}
    for name, region, lines in (("cross_region", INSURED, big), ("cross_region_cancelled", INSURED, big),
                                ("local", TREATING, big), ("local_cancelled", TREATING, big),
                                ("unpaid", INSURED, small)):
        member = await kit.new_member(region)
        settlement = await kit.discharge(H_GUANGZHOU, member, lines, "2026-09-01", "2026-09-05")
        ids[name] = (settlement.settlement_id, settlement.adjudication.split.fund_pay_fen)
    for name in ("cross_region_cancelled", "local_cancelled"):
        await kit.treating(TREATING).Cancel(ta.CancelRequest(request_id=kit.rid(), settlement_id=ids[name][0],
                                                             reason="test"))
    return Scenario(**{name: value[0] for name, value in ids.items()},
                    fund_pay={value[0]: value[1] for value in ids.values()})


async def test_a_settled_stay_owes_its_hospital_against_the_insured_region_or_the_local_fund(kit, scenario):
    party = f"treating_{TREATING}"
    receivable = f"hospital/{H_GUANGZHOU}/receivable"
    cross = scenario.fund_pay[scenario.cross_region]
    local = scenario.fund_pay[scenario.local]
    assert cross > 0 and local > 0
    assert await kit.ledger(scenario.cross_region, party) == {
        "settlement": {receivable: cross, f"insured/{INSURED}/payable/{TREATING}": -cross}}
    assert await kit.ledger(scenario.local, party) == {
        "settlement": {receivable: local, f"fund/{TREATING}/payable": -local}}
    for settlement_id in (scenario.cross_region_cancelled, scenario.local_cancelled):
        posted = await kit.ledger(settlement_id, party)
        assert posted["cancel"] == {account: -amount for account, amount in posted["settlement"].items()}
    assert scenario.fund_pay[scenario.unpaid] == 0
    assert await kit.ledger(scenario.unpaid, party) == {}  # nothing owed, nothing posted


def undo_or_not(kind: str) -> str:
    """A cancel and a reversal both undo the settlement: when they race (test_cancel_races), one party may have
    recorded the undo as a cancel and the other as a reversal; the postings must still be the same."""
    return "undo" if kind in ("cancel", "reversal") else kind


async def test_the_counter_leg_is_the_clearing_houses_obligation_of_the_same_settlement(kit, scenario):
    """`insured/{I}/payable/{T}` names the same position in both ledgers, posting by posting."""
    for region in REGIONS:
        rows = await (await kit.db(f"treating_{region}")).fetch(
            "SELECT t.settlement_id, t.kind, p.account, p.amount_fen FROM ledger_postings p "
            "JOIN ledger_transactions t USING (tx_id) WHERE p.account LIKE 'insured/%'")
        at_agency = {(row["settlement_id"], undo_or_not(row["kind"]), row["account"]): row["amount_fen"]
                     for row in rows}
        rows = await (await kit.db("clearinghouse")).fetch(
            "SELECT t.settlement_id, t.kind, p.account, p.amount_fen FROM ledger_postings p "
            "JOIN ledger_transactions t USING (tx_id) WHERE t.settlement_id = ANY($1::uuid[])",
            list({key[0] for key in at_agency}))
        at_clearing_house = {(row["settlement_id"], undo_or_not(row["kind"]), row["account"]): row["amount_fen"]
                             for row in rows}
        assert at_agency.items() <= at_clearing_house.items(), region
        assert region != TREATING or at_agency


async def test_running_balances_equal_the_sum_of_postings(kit, scenario):
    for region in REGIONS:
        connection = await kit.db(f"treating_{region}")
        differences = await connection.fetch(
            "SELECT coalesce(b.account, p.account) AS account, b.balance_fen, p.total FROM ledger_balances b "
            "FULL JOIN (SELECT account, sum(amount_fen)::bigint AS total FROM ledger_postings GROUP BY account) p "
            "USING (account) WHERE b.balance_fen IS DISTINCT FROM p.total")
        assert differences == [], region
        assert await connection.fetchval("SELECT coalesce(sum(balance_fen), 0) FROM ledger_balances") == 0
        assert await connection.fetchval("SELECT count(*) FROM ledger_balances") > 0, region


async def test_the_payout_lists_of_every_month_add_up_to_each_hospitals_receivable(kit, scenario):
    for region in REGIONS:
        connection = await kit.db(f"treating_{region}")
        months = [row["month"] for row in await connection.fetch(
            "SELECT DISTINCT m AS month FROM settlements, unnest(array[payout_month, undo_payout_month]) AS m "
            "WHERE m IS NOT NULL")]
        assert months, region
        paid: dict[str, int] = {}
        for month in months:  # each call also checks the month against the ledger, and all months (asserts)
            answer = await kit.treating(region).ListPayouts(ta.ListPayoutsRequest(month=month))
            for payout in answer.payouts:
                paid[payout.hospital_code] = paid.get(payout.hospital_code, 0) + payout.fund_pay_fen
        balances = {row["account"]: row["balance_fen"] for row in await connection.fetch(
            "SELECT account, balance_fen FROM ledger_balances WHERE account LIKE 'hospital/%'")}
        assert {f"hospital/{code}/receivable": fen for code, fen in paid.items() if fen} == \
            {account: fen for account, fen in balances.items() if fen}, region
        # The other side: every fen owed to the hospitals is owed by an insured region or the local fund.
        counter = await connection.fetchval("SELECT coalesce(sum(balance_fen), 0) FROM ledger_balances "
                                            "WHERE account LIKE 'insured/%/payable/%' OR account LIKE 'fund/%/payable'")
        assert counter == -sum(paid.values()), region


# ---------------------------------------------------------------------------------------------
# Breaking it through SQL directly
# ---------------------------------------------------------------------------------------------

async def insert_transaction(connection: asyncpg.Connection, legs: list[tuple[str, int]]) -> None:
    settlement_id = await connection.fetchval("SELECT settlement_id FROM settlements WHERE status = 'settled' "
                                              "AND NOT EXISTS (SELECT 1 FROM ledger_transactions t "
                                              "WHERE t.settlement_id = settlements.settlement_id AND kind = 'cancel') "
                                              "LIMIT 1")
    tx_id = await connection.fetchval("INSERT INTO ledger_transactions (settlement_id, kind, payout_month) "
                                      "VALUES ($1, 'cancel', '2099-01') RETURNING tx_id", settlement_id)
    for account, amount in legs:
        await connection.execute("INSERT INTO ledger_postings (tx_id, account, amount_fen) VALUES ($1, $2, $3)",
                                 tx_id, account, amount)


@pytest.mark.parametrize(("legs", "error", "message"), [
    ([("x/a", 100), ("x/b", -99)], asyncpg.CheckViolationError, "unbalanced"),
    ([("x/a", 100)], asyncpg.CheckViolationError, "unbalanced"),
    ([], asyncpg.CheckViolationError, "at least two"),
    ([("x/a", 0), ("x/b", 0)], asyncpg.CheckViolationError, "amount_fen"),
], ids=["unbalanced", "one-leg", "no-postings", "zero-amounts"])
async def test_a_malformed_transaction_is_refused(stack, scenario, legs, error, message):
    connection = await stack.connect(f"treating_{TREATING}")
    try:
        before = await connection.fetchval("SELECT count(*) FROM ledger_transactions")
        with pytest.raises(error, match=message):
            async with connection.transaction():
                await insert_transaction(connection, legs)
        assert await connection.fetchval("SELECT count(*) FROM ledger_transactions") == before
        assert await connection.fetchval("SELECT balance_fen FROM ledger_balances WHERE account = 'x/a'") is None
    finally:
        await connection.close()


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_postings SET amount_fen = amount_fen + 1",
    "DELETE FROM ledger_postings",
    "TRUNCATE ledger_postings CASCADE",
    "UPDATE ledger_transactions SET payout_month = '2000-01'",
    "DELETE FROM ledger_transactions",
    "UPDATE ledger_balances SET balance_fen = 0",
    "DELETE FROM ledger_balances",
    "INSERT INTO ledger_balances (account, balance_fen) VALUES ('hospital/H44010099999/receivable', 1)",
])
async def test_the_ledger_is_append_only_and_its_balances_follow_the_postings_only(stack, scenario, statement):
    connection = await stack.connect(f"treating_{TREATING}")
    try:
        postings = await connection.fetchval("SELECT sum(abs(amount_fen)) FROM ledger_postings")
        balances = await connection.fetchval("SELECT sum(abs(balance_fen)) FROM ledger_balances")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await connection.execute(statement)
        assert await connection.fetchval("SELECT sum(abs(amount_fen)) FROM ledger_postings") == postings
        assert await connection.fetchval("SELECT sum(abs(balance_fen)) FROM ledger_balances") == balances
    finally:
        await connection.close()


async def test_the_migration_posts_the_settlements_recorded_before_it(database, tmp_path):
    """0003 backfills the ledger from existing settlements exactly as the posting path would."""
    name = f"ta_backfill_{uuid.uuid4().hex[:8]}"
    await ensure_database(database.base_dsn, name)
    pool = await create_pool(dsn_for(database.base_dsn, name))
    try:
        for path in sorted(MIGRATIONS.glob("*.sql"))[:2]:
            shutil.copy(path, tmp_path / path.name)
        assert await apply_migrations(pool, tmp_path) == ["0001_init.sql", "0002_requests.sql"]
        async with pool.acquire() as connection:
            rows = [  # (insured region, local, status, fund_pay, settled_at, cancelled_at)
                (INSURED, False, "settled", 70_000, "2026-03-31 16:30:00+00", None),  # 2026-04 in Shanghai
                (TREATING, True, "cancelled", 5_000, "2026-03-10 02:00:00+00", "2026-04-02 02:00:00+00"),
                (INSURED, False, "settled", 0, "2026-03-10 02:00:00+00", None),
                (INSURED, False, "failed", None, None, None),
            ]
            for insured, local, status, fund_pay, settled_at, cancelled_at in rows:
                encounter = uuid.uuid4()  # one live settlement per encounter
                await connection.execute(
                    "INSERT INTO encounters (encounter_id, request_id, request, hospital_code, hospital_level, "
                    "insured_region, member_id, id_number, name, admitted_on, emergency, diagnoses) "
                    "VALUES ($1, $2, '', $3, 3, $4, 'M1', '430100197001011234', '测试', '2026-03-01', false, "
                    "'{J18.9}')", encounter, uuid.uuid4(), H_GUANGZHOU, insured)
                await connection.execute(
                    "INSERT INTO settlements (settlement_id, request_id, encounter_id, hospital_code, insured_region, "
                    "local, status, request, claim, response, total_fen, fund_pay_fen, psn_pay_fen, settled_at, "
                    "cancelled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, '', '', '', $8 + 100, $8, 100, "
                    "$9::text::timestamptz, $10::text::timestamptz)",
                    uuid.uuid4(), uuid.uuid4(), encounter, H_GUANGZHOU, insured, local, status, fund_pay,
                    settled_at, cancelled_at)
        applied = await apply_migrations(pool, MIGRATIONS)
        migrations = [*MIGRATIONS.glob("[0-9]*.sql"), *MIGRATIONS.glob("[0-9]*.py")]  # SQL and Python ones
        assert applied[0] == "0003_ledger.sql" and len(applied) == len(migrations) - 2
        async with pool.acquire() as connection:
            transactions = await connection.fetch(
                "SELECT t.kind, t.payout_month, s.fund_pay_fen, "
                "jsonb_object_agg(p.account, p.amount_fen ORDER BY p.account) AS legs FROM ledger_transactions t "
                "JOIN settlements s USING (settlement_id) JOIN ledger_postings p USING (tx_id) "
                "GROUP BY t.tx_id, s.fund_pay_fen ORDER BY t.tx_id")
            balances = dict(await connection.fetch("SELECT account, balance_fen FROM ledger_balances"))
            payout_months = [tuple(row) for row in await connection.fetch(
                "SELECT status, fund_pay_fen, payout_month, undo_payout_month FROM settlements ORDER BY created_at, "
                "status, fund_pay_fen")]
    finally:
        await pool.close()
        await drop_databases(database.base_dsn, name)
    receivable = f"hospital/{H_GUANGZHOU}/receivable"
    assert [(row["kind"], row["payout_month"], row["legs"]) for row in transactions] == [
        ("settlement", "2026-03", {f"fund/{TREATING}/payable": -5_000, receivable: 5_000}),
        ("settlement", "2026-04", {f"insured/{INSURED}/payable/{TREATING}": -70_000, receivable: 70_000}),
        ("cancel", "2026-04", {f"fund/{TREATING}/payable": 5_000, receivable: -5_000}),
    ]  # in commit order, each in the payout month of its commit time
    assert balances == {receivable: 70_000, f"insured/{INSURED}/payable/{TREATING}": -70_000,
                        f"fund/{TREATING}/payable": 0}
    # 0008 gives each settlement the payout months its lists had (the month of settled_at, of the cancel).
    assert sorted(payout_months, key=str) == sorted([
        ("settled", 70_000, "2026-04", None), ("cancelled", 5_000, "2026-03", "2026-04"),
        ("settled", 0, "2026-03", None), ("failed", None, None, None)], key=str)
