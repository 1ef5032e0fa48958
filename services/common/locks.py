"""Serialising every transition of one settlement id across concurrent requests at a party.

Settle and Reverse (冲正) of one id may arrive together: each takes this transaction-scoped
advisory lock on the id before it reads or writes anything about it, so a reversal either sees
the settlement's pending row or leaves its own record for the settlement to find.
"""

from __future__ import annotations

import asyncpg


async def lock_settlement_key(conn: asyncpg.Connection, key: str) -> None:
    """Hold an advisory lock on `key` (a request or settlement id) until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)


async def lock_settlement_keys(conn: asyncpg.Connection, keys: list[str]) -> None:
    """`lock_settlement_key` on each of `keys`, in one statement, in sorted order: two batches sharing ids
    take them in the same order, so they queue instead of deadlocking."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(key, 0)) "
                       "FROM (SELECT DISTINCT unnest($1::text[]) AS key ORDER BY 1) AS keys", keys)
