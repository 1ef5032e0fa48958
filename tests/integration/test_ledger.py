"""The clearing house ledger is trustworthy by the database itself (SPEC §6): balanced at commit,
append-only, running balances equal to the postings, month aggregates equal to a recomputation."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from clearinghouse.v1 import hospital_pb2

from services.clearinghouse import audit


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


async def test_month_aggregates_equal_a_recomputation_from_the_postings(settled):
    connection = await settled.connect("clearinghouse")
    try:
        mismatches = await audit.aggregate_mismatches(connection)
        cells = await connection.fetchval("SELECT count(*) FROM clearing_aggregates")
    finally:
        await connection.close()
    assert cells > 0
    assert mismatches == []


async def test_an_unbalanced_transaction_is_refused_at_commit(settled):
    connection = await settled.connect("clearinghouse")
    try:
        settlement_id = await connection.fetchval("SELECT settlement_id FROM claims WHERE status = 'settled' LIMIT 1")
        before = await connection.fetchval("SELECT count(*) FROM ledger_postings")
        with pytest.raises(asyncpg.CheckViolationError, match="unbalanced"):
            async with connection.transaction():
                tx_id = await connection.fetchval(
                    "INSERT INTO ledger_transactions (settlement_id, kind, clearing_month) "
                    "VALUES ($1, 'cancel', '2099-01') RETURNING tx_id", settlement_id)
                await connection.execute(
                    "INSERT INTO ledger_postings (tx_id, account, amount_fen) VALUES ($1, 'x/a', 100), ($1, 'x/b', -99)",
                    tx_id)
        after = await connection.fetchval("SELECT count(*) FROM ledger_postings")
        balance = await connection.fetchval("SELECT balance_fen FROM ledger_balances WHERE account = 'x/a'")
    finally:
        await connection.close()
    assert after == before
    assert balance is None  # the running balance rolled back with the refused transaction


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
