"""The insured agency's 0007 migration over a database written before it: settlements recorded before get their
order of recording from their time (then id), their cancels and reversals come after every recording in the order
they happened, and a settlement or undo recorded from then on draws the next number (policy what-if, SPEC §12.5)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import asyncpg

from services.common.db import apply_migrations, create_pool, drop_databases, ensure_database
from services.stack.config import dsn_for

MIGRATIONS = Path(__file__).parents[2] / "services" / "insured" / "migrations"
MIGRATION = "0007_recording_order.sql"
KEY = {"member_key": bytes(range(32))}

INSERT = ("INSERT INTO settlements (settlement_id, member_id, year, treating_region, status, total_fen, fund_pay_fen, "
          "psn_pay_fen, hifp_fen, hifmi_fen, maf_fen, delta, request, response, settled_at, discharged_on, "
          "settlement_day, cancel_request_id, cancelled_at, reversed_at) VALUES ($1, 'M1', 2026, '440100', $2, 100, "
          "60, 40, 60, 0, 0, '{}', '', '', $3::text::timestamptz, '2026-03-06', '2026-03-06', $4, "
          "$5::text::timestamptz, $6::text::timestamptz)")


async def test_rows_of_before_are_numbered_in_the_order_they_happened(database, tmp_path):
    name = f"order_insured_{uuid.uuid4().hex[:8]}"
    await ensure_database(database.base_dsn, name)
    pool = await create_pool(dsn_for(database.base_dsn, name))
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    try:
        earlier = [path for path in sorted(MIGRATIONS.iterdir()) if path.suffix in (".sql", ".py")
                   and path.name < MIGRATION]
        for path in earlier:
            shutil.copy(path, tmp_path / path.name)
        assert await apply_migrations(pool, tmp_path, KEY) == [path.name for path in earlier]
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute("INSERT INTO members (member_id, id_hash, id_number_masked, scheme, retired, "
                                     "poverty) VALUES ('M1', 'h', '4301**********1234', 'employee', false, false)")
            # Recorded at 10:00 (second), 09:00 (first, cancelled at 11:00), 10:30 (third, reversed at 10:45).
            await connection.execute(INSERT, second, "settled", "2026-03-06 10:00:00+08", None, None, None)
            await connection.execute(INSERT, first, "cancelled", "2026-03-06 09:00:00+08", uuid.uuid4(),
                                     "2026-03-06 11:00:00+08", None)
            await connection.execute(INSERT, third, "reversed", "2026-03-06 10:30:00+08", None, None,
                                     "2026-03-06 10:45:00+08")
        shutil.copy(MIGRATIONS / MIGRATION, tmp_path / MIGRATION)  # this one alone (later ones have tests of their own)
        assert await apply_migrations(pool, tmp_path, KEY) == [MIGRATION]
        async with pool.acquire() as connection:
            rows = {row["settlement_id"]: (row["sequence"], row["undone_sequence"]) for row in await connection.fetch(
                "SELECT settlement_id, sequence, undone_sequence FROM settlements")}
            assert rows == {first: (1, 5), second: (2, None), third: (3, 4)}
            fourth = uuid.uuid4()
            await connection.execute(INSERT, fourth, "settled", "2026-03-07 09:00:00+08", None, None, None)
            assert await connection.fetchval("SELECT sequence FROM settlements WHERE settlement_id = $1", fourth) > 5
            # A settled row has no undo number, an undone one must have one.
            try:
                await connection.execute("UPDATE settlements SET status = 'reversed' WHERE settlement_id = $1", fourth)
            except asyncpg.CheckViolationError:
                pass
            else:
                raise AssertionError("a reversed row without its undo number was accepted")
    finally:
        await pool.close()
        await drop_databases(database.base_dsn, name)
