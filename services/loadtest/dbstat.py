"""What each party's database did per settlement: commits and rows, from Postgres's own counters
(`pg_stat_database`), read when a window opens and when it closes.

Approximate: a backend hands its counts to the shared statistics about once a second while busy (later when it
goes idle), so a 20 s window can miss or gain a second's worth at either end; and `commits` counts asyncpg's
reset of a connection given back to its pool as one more (about one per pool acquisition, in the stack and in
the floor alike). Good enough to see how many transactions and rows a settlement costs each party, and to compare
the stack with its floor.
"""

from __future__ import annotations

from typing import Any

import asyncpg

COUNTERS = {"xact_commit": "commits", "xact_rollback": "rollbacks", "tup_inserted": "rows_inserted",
            "tup_updated": "rows_updated", "tup_deleted": "rows_deleted", "tup_fetched": "rows_fetched",
            "tup_returned": "rows_scanned"}


async def snapshot(base_dsn: str, databases: dict[str, str]) -> dict[str, dict[str, int]]:
    """party → counter → value, for `databases` (party → database name)."""
    connection = await asyncpg.connect(base_dsn)
    try:
        rows = await connection.fetch(
            f"SELECT datname, {', '.join(COUNTERS)} FROM pg_stat_database WHERE datname = ANY($1::text[])",
            list(databases.values()))
    finally:
        await connection.close()
    by_name = {row["datname"]: row for row in rows}
    return {party: {label: int(by_name[name][column]) for column, label in COUNTERS.items()}
            for party, name in databases.items() if name in by_name}


def kind_of(party: str) -> str:
    """`treating_440100` → `treating`: the regions of one kind are summed."""
    return party.split("_", 1)[0]


def per_settlement(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]],
                   settled: int) -> dict[str, dict[str, float]]:
    """Party kind (treating, insured, clearinghouse, his) → counter → per settlement, summed over its regions."""
    if not settled:
        return {}
    sums: dict[str, dict[str, int]] = {}
    for party, counters in after.items():
        if party not in before:
            continue
        kind = sums.setdefault(kind_of(party), dict.fromkeys(COUNTERS.values(), 0))
        for label, value in counters.items():
            kind[label] += value - before[party][label]
    return {kind: {label: round(value / settled, 2) for label, value in counters.items()}
            for kind, counters in sorted(sums.items())}


def describe(work: dict[str, Any]) -> str:
    """One line: commits and rows written per settlement by party kind."""
    return "; ".join(f"{kind} {counters['commits']:g} commits, {counters['rows_inserted']:g} inserted, "
                     f"{counters['rows_updated']:g} updated, {counters['rows_fetched']:g} fetched"
                     for kind, counters in work.items())
