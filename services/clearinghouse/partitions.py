"""Month partitions of the clearing house (migration 0014, docs/architecture.md "Month partitions and sharding").

claims (by settlement day), ledger_transactions, ledger_postings and requests (by month) have one partition per
month. A row of a month without its partition is refused by Postgres, so a month's partitions are made before
anything is written into it: `MonthPartitions.ensure` runs `ensure_month_partition` for the months a request
will write — in a short transaction of its own, since making a partition locks its parent table until the
transaction ends — and remembers the months it made (with the month after the latest: the partitions of a month are
there before its first day). A month a request only learns inside its transaction (the first open month after a
closed one) is ensured there, on that connection, and remembered only once that transaction is known to have
committed it — `ensure` again after it — never on a rollback's word.

Archiving (归档) a closed, cleared month: `detach_month` (and `clearing-admin month detach MONTH`).
"""

from __future__ import annotations

from datetime import date

import asyncpg

from clearing.dates import next_month
from clearing.errors import PreconditionFailed


def month_of_day(day: date) -> str:
    return day.strftime("%Y-%m")


class MonthPartitions:
    """The months whose partitions this process knows exist (one per database pool)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.ready: set[str] = set()

    async def ensure(self, *months: str) -> None:
        """Make the partitions of `months`, and of the month after the latest of them (the current month's
        next: it exists before its first day), each in a transaction of its own: one that holds one parent's
        lock and waits for nothing else can be in no deadlock."""
        missing = sorted({month for month in months if month not in self.ready})
        if not missing:
            return
        # (The month after 9999-12 has no YYYY-MM: a claim of the last month there is gets none ahead.)
        wanted = sorted({month for month in (*missing, next_month(max(months))) if len(month) == 7} - self.ready)
        async with self.pool.acquire() as conn:
            for month in wanted:
                for parent in [row[0] for row in await conn.fetch("SELECT missing_month_partitions($1)", month)]:
                    await conn.execute("SELECT ensure_month_partition_of($1, $2)", parent, month)
        self.ready.update(wanted)

    async def ensure_within(self, conn: asyncpg.Connection, month: str) -> None:
        """The partitions of `month` for a write inside `conn`'s transaction: nothing to do when known, else made
        in that transaction (its parent tables stay locked until it ends: the rare case, a month not foreseen)."""
        if month not in self.ready:
            await conn.execute("SELECT ensure_month_partition($1)", month)


async def detachable_refusal(conn: asyncpg.Connection, month: str) -> str | None:
    """Why `month`'s partitions cannot be detached, or None: the month must be closed and cleared (every region's
    clearing posted), no later month may be open with claims of its settlement days still pending, and nothing of
    it may still clear in an open month."""
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM month_partitions() WHERE month = $1)", month):
        return f"month {month} has no partitions (archived already, or never written)"
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM month_closings WHERE month = $1)", month):
        return f"month {month} is open: only a closed month is detached"
    uncleared = await conn.fetchval(
        "SELECT count(*) FROM month_closings c, LATERAL (SELECT count(*) AS n FROM month_clearings m "
        "WHERE m.month = c.month) m WHERE c.month = $1 AND m.n = 0 AND EXISTS (SELECT 1 FROM clearing_aggregates a "
        "WHERE a.clearing_month = c.month AND (a.settlements > 0 OR a.cancels > 0))", month)
    if uncleared:
        return f"month {month} is closed but not cleared: its transfers are awaited"
    first, after = date.fromisoformat(f"{month}-01"), date.fromisoformat(f"{next_month(month)}-01")
    # A claim of the month's settlement days that is pending, or clears (or is undone) in a month still open, is
    # still in use: its partition stays.
    open_claims = await conn.fetchval(
        "SELECT count(*) FROM claims c WHERE c.settlement_day >= $1 AND c.settlement_day < $2 AND "
        "(c.status = 'pending' OR EXISTS (SELECT 1 FROM unnest(array[c.clearing_month, c.undo_month]) AS m(month) "
        "WHERE m.month IS NOT NULL AND NOT EXISTS (SELECT 1 FROM month_closings k WHERE k.month = m.month)))",
        first, after)
    if open_claims:
        return f"month {month} still has {open_claims} claims pending or clearing in an open month"
    return None


async def detach_month(conn: asyncpg.Connection, month: str) -> list[str]:
    """Archive `month`: in one transaction, under the close lock (no post or close meanwhile), check it may go
    (`detachable_refusal`: `PreconditionFailed` otherwise), keep what its rows add up to and detach its partitions;
    returns their names. They stay in the database as plain tables, to be dumped (pg_dump -t) and dropped."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE clearing_aggregates IN SHARE ROW EXCLUSIVE MODE")
        refusal = await detachable_refusal(conn, month)
        if refusal is not None:
            raise PreconditionFailed("month", refusal)
        return [row[0] for row in await conn.fetch("SELECT archive_month($1)", month)]
