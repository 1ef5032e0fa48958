"""The settlement-day migrations over databases written before them: every party's rows get the day (Asia/
Shanghai) they were recorded on — for the treating agency the day its pending row was made, which is what
the settlement day names — the column is required from then on, and reconciliation's query has its index."""

from __future__ import annotations

import shutil
import uuid
from datetime import date
from pathlib import Path

import pytest

from services.common.db import apply_migrations, create_pool, drop_databases, ensure_database
from services.stack.config import dsn_for

SERVICES = Path(__file__).parents[2] / "services"
# 17:30 UTC is 01:30 the next day in Shanghai: the day is Shanghai's, not the server's.
RECORDED_AT = "2026-03-10 17:30:00+00"
SHANGHAI_DAY = date(2026, 3, 11)

ENCOUNTER, REQUEST = uuid.uuid4(), uuid.uuid4()
ROW, AT = "the row's id", "when it was recorded"  # placeholders in the arguments below
# Per party: the statements that write one row as the code of before did, with their arguments.
TREATING_ROWS = [
    ("INSERT INTO encounters (encounter_id, request_id, request, hospital_code, hospital_level, insured_region, "
     "member_id, id_number, name, admitted_on, emergency, diagnoses) VALUES ($1, $2, '', 'H44010000001', 3, "
     "'610924', 'M1', '610924197001011234', '测试', '2026-03-01', false, '{J18.9}')", (ENCOUNTER, REQUEST)),
    ("INSERT INTO settlements (settlement_id, request_id, encounter_id, hospital_code, insured_region, local, status, "
     "request, claim, created_at, discharged_on) VALUES ($1, $3, $4, 'H44010000001', '610924', false, 'pending', '', "
     "'', $2::text::timestamptz, '2026-03-06')", (ROW, AT, REQUEST, ENCOUNTER)),
]
CLEARING_ROWS = [
    ("INSERT INTO claims (settlement_id, treating_region, insured_region, member_id, hospital_code, status, "
     "catalogue_rule, request, routed, created_at, discharged_on) VALUES ($1, '440100', '610924', 'M1', "
     "'H44010000001', 'pending', 'treating', '', '', $2::text::timestamptz, '2026-03-06')", (ROW, AT)),
]
INSURED_ROWS = [
    ("INSERT INTO members (member_id, id_number, name, scheme, retired, poverty) "
     "VALUES ('M1', '610924197001011234', '测试', 'employee', false, false)", ()),
    ("INSERT INTO settlements (settlement_id, member_id, year, treating_region, status, total_fen, fund_pay_fen, "
     "psn_pay_fen, hifp_fen, hifmi_fen, maf_fen, delta, request, response, settled_at, discharged_on) "
     "VALUES ($1, 'M1', 2026, '440100', 'settled', 100, 60, 40, 60, 0, 0, '{}', '', '', $2::text::timestamptz, "
     "'2026-03-06')", (ROW, AT)),
]
HIS_ROWS = [
    ("INSERT INTO discharges (request_id, run_request_id, treating_region, insured_region, hospital_code, member_id, "
     "month, status, created_at, discharged_on) VALUES ($1, $3, '440100', '610924', 'H44010000001', 'M1', '2026-03', "
     "'unknown', $2::text::timestamptz, '2026-03-06')", (ROW, AT, REQUEST)),
]


@pytest.mark.parametrize(("party", "migration", "rows", "table", "key"), [
    ("treating", "0010_settlement_day.sql", TREATING_ROWS, "settlements", "settlement_id"),
    ("clearinghouse", "0011_settlement_day.sql", CLEARING_ROWS, "claims", "settlement_id"),
    ("insured", "0004_settlement_day.sql", INSURED_ROWS, "settlements", "settlement_id"),
    ("his", "0004_settlement_day.sql", HIS_ROWS, "discharges", "request_id"),
])
async def test_rows_of_before_get_the_shanghai_day_they_were_recorded_on(database, tmp_path, party, migration, rows,
                                                                         table, key):
    directory = SERVICES / party / "migrations"
    name = f"day_{party}_{uuid.uuid4().hex[:8]}"
    await ensure_database(database.base_dsn, name)
    pool = await create_pool(dsn_for(database.base_dsn, name))
    row_id = uuid.uuid4()
    try:
        earlier = [path for path in sorted(directory.glob("*.sql")) if path.name < migration]
        for path in earlier:
            shutil.copy(path, tmp_path / path.name)
        assert await apply_migrations(pool, tmp_path) == [path.name for path in earlier]
        async with pool.acquire() as connection, connection.transaction():
            for statement, arguments in rows:
                await connection.execute(statement, *({ROW: row_id, AT: RECORDED_AT}.get(item, item)
                                                      for item in arguments))
        # (The insured agency's later 0005 hashes the member's ID number: it needs a member key.)
        assert (await apply_migrations(pool, directory, {"member_key": bytes(range(32))}))[0] == migration
        async with pool.acquire() as connection:
            day = await connection.fetchval(f"SELECT settlement_day FROM {table} WHERE {key} = $1", row_id)
            required = await connection.fetchval(
                "SELECT attnotnull FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'settlement_day'", table)
            indexed = await connection.fetchval(
                "SELECT count(*) FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%(settlement_day%'", table)
    finally:
        await pool.close()
        await drop_databases(database.base_dsn, name)
    assert day == SHANGHAI_DAY
    assert required, "every row has a settlement day from now on"
    assert indexed == 1
