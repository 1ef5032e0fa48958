"""Serialising every transition of one settlement id across concurrent requests at a party.

Settle and Reverse (冲正) of one id may arrive together: each takes this transaction-scoped
advisory lock on the id before it reads or writes anything about it, so a reversal either sees
the settlement's pending row or leaves its own record for the settlement to find.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg


async def lock_settlement_key(conn: asyncpg.Connection, key: str) -> None:
    """Hold an advisory lock on `key` (a request or settlement id) until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)


async def lock_settlement_keys(conn: asyncpg.Connection, keys: list[str]) -> None:
    """`lock_settlement_key` on each of `keys`, in one statement, in sorted order: two batches sharing ids
    take them in the same order, so they queue instead of deadlocking."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(key, 0)) "
                       "FROM (SELECT DISTINCT unnest($1::text[]) AS key ORDER BY 1) AS keys", keys)


@contextlib.asynccontextmanager
async def holding_settlement_key(conn: asyncpg.Connection, key: str) -> AsyncIterator[None]:
    """Hold the same advisory lock as `lock_settlement_key` on the connection's session, across transactions and
    the awaits between them (a downstream call), until the block ends — for a transition whose check must stay true
    while it waits for another party."""
    await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", key)
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)


def undo_key(settlement_id: str) -> str:
    """The lock a cancel holds across its downstream call and every dispute step takes: a dispute never moves while
    the settlement is being undone (a reversal, 冲正, does not wait for it: it takes the settlement's own key)."""
    return f"{settlement_id}/undo"


async def lock_disputed_settlement(conn: asyncpg.Connection, settlement_id: str) -> None:
    """A dispute step's locks, before it reads anything: the settlement's key, then its undo key."""
    await lock_settlement_key(conn, settlement_id)
    await lock_settlement_key(conn, undo_key(settlement_id))
