"""Personal data (SPEC §9; docs/security.md "Personal data"): ID numbers and names stay at the treating agency.

After a demo-sized run on a stack of this module's own (its members enrolled, more registered here, 200
discharges through the HIS simulator's RunDischarges), no table of the clearing house or of any insured agency
holds an enrolled member's ID number or name — in text, jsonb, arrays, or bytea read as UTF-8 and as the
protobuf it stores — and no party's log line holds one unmasked. The insured agency keeps a keyed hash
(HMAC-SHA256 under its region's secret key) and the masked number; Admit has it check the patient, so an ID
number that is not the member's is refused and writes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
import structlog
from clearinghouse.v1 import hospital_pb2 as hp
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import types_pb2

from services.common.db import apply_migrations, create_pool, ensure_database
from services.datagen.identity import make_id_number, make_name
from services.datagen.population import generate_members
from services.insured.keys import KEY_DIR_ENV
from services.stack.config import dsn_for

DISCHARGES = 200
RUN_MONTH = "2026-03"
ADMITTED_ON = "2026-03-02"
TREATING = "440100"
INSURED = "430100"
H_GUANGZHOU = "H44010000001"
REGISTERED_HERE = 3  # members per region registered by this module (besides the stack's enrolment)
INSURED_MIGRATIONS = Path(__file__).parents[2] / "services" / "insured" / "migrations"
# An 18-character ID number not masked: 17 digits and a digit or X, not inside a longer run of such characters.
UNMASKED_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")


# ---------------------------------------------------------------------------------------------
# Logs: every line every party writes, as written (after the masking processor, rendered)
# ---------------------------------------------------------------------------------------------

@contextmanager
def captured_log_lines() -> Iterator[list[str]]:
    """Record each rendered log line of every party in this process (they all log through structlog's
    configuration); the lines still go where they went."""
    saved = structlog.get_config()
    processors = list(saved["processors"])
    render = processors[-1]
    lines: list[str] = []

    def record(logger: Any, method_name: str, event_dict: Any) -> Any:
        rendered = render(logger, method_name, event_dict)
        lines.append(rendered if isinstance(rendered, str) else repr(rendered))
        return rendered

    structlog.configure(processors=[*processors[:-1], record])
    try:
        yield lines
    finally:
        structlog.configure(processors=processors)


# ---------------------------------------------------------------------------------------------
# Databases: every value of every column of every table
# ---------------------------------------------------------------------------------------------

def texts_of(value: Any) -> Iterator[str]:
    """Every text a stored value can show: text itself, JSON (also with non-ASCII escaped, as `json.dumps` writes
    by default), the elements of an array, and bytea both as raw bytes (a protobuf string field is its UTF-8
    bytes, length-prefixed) decoded leniently and as UTF-8."""
    if value is None:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        yield raw.decode("utf-8", errors="replace")
        yield raw.decode("latin-1")
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from texts_of(item)
    elif isinstance(value, dict):
        yield json.dumps(value, ensure_ascii=False)
    else:
        yield str(value)


async def tables_of(connection: asyncpg.Connection) -> list[str]:
    return [row["relname"] for row in await connection.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname")]


async def findings(dsn: str, needles: dict[str, str]) -> list[str]:
    """`table.column: what` for every stored value that contains a needle (needle text → what it is). Every column
    is read cast to text too (so jsonb, arrays, composite values show their stored text) and bytea as bytes."""
    escaped = {json.dumps(needle)[1:-1]: what for needle, what in needles.items() if not needle.isascii()}
    latin = {needle.encode("utf-8").decode("latin-1"): what for needle, what in needles.items()}
    searched = {**needles, **escaped, **latin}
    connection = await asyncpg.connect(dsn)
    found: list[str] = []
    try:
        for table in await tables_of(connection):
            columns = await connection.fetch(
                "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute "
                "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum", table)
            selected = ", ".join(f'"{column["attname"]}"' + ("" if column["type"] == "bytea" else "::text")
                                 for column in columns)
            assert columns, table
            async for row in _rows(connection, f'SELECT {selected} FROM "{table}"'):
                for column in columns:
                    for text in texts_of(row[column["attname"]]):
                        for needle, what in searched.items():
                            if needle in text:
                                found.append(f"{table}.{column['attname']}: {what}")
    finally:
        await connection.close()
    return sorted(set(found))


async def _rows(connection: asyncpg.Connection, query: str):  # noqa: ANN202
    async with connection.transaction(readonly=True):
        async for row in connection.cursor(query, prefetch=500):
            yield row


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------

def region_key(region: str) -> bytes:
    """The region's member key as the test session wrote it (tests/conftest.py): read here, not through the code."""
    return bytes.fromhex((Path(os.environ[KEY_DIR_ENV]) / f"{region}.key").read_text().strip())


def expected_hash(region: str, id_number: str) -> str:
    return hmac.new(region_key(region), id_number.upper().encode(), hashlib.sha256).hexdigest()


@pytest.fixture(scope="module")
async def run(own_stack, own_kit):
    """Members registered with generated identities, then 200 discharges through the HIS simulator, every party's
    log lines captured meanwhile. Returns (log lines, {needle: what}, the members registered here)."""
    rng = random.Random(20260309)
    with captured_log_lines() as lines:
        registered = []
        for region in sorted(own_stack.regions):
            for _ in range(REGISTERED_HERE):
                male = rng.random() < 0.5
                registered.append(await register(own_kit, region, make_id_number(rng, region, rng_birth(rng), male),
                                                  make_name(rng, male)))
        done = failed = 0
        async for progress in own_kit.hospital_service().RunDischarges(hp.RunDischargesRequest(
                request_id=own_kit.rid(), count=DISCHARGES, seed=7, concurrency=8, month=RUN_MONTH)):
            done, failed = progress.done, progress.failed
        # A few admissions through the treating agency of every region, both patients of there and of elsewhere.
        for index, member in enumerate(registered):
            treating = sorted(own_stack.regions)[index % len(own_stack.regions)]
            hospital = own_kit.hospitals(treating)[0][0]
            await own_kit.admit(hospital, member, ADMITTED_ON)
    assert done == DISCHARGES
    needles: dict[str, str] = {}
    for region in own_stack.regions:
        for member in generate_members(region, own_stack.config.members_per_region, own_stack.config.seed):
            needles[member["id_number"]] = f"ID number of enrolled member {member['member_id']}"
            needles[member["name"]] = f"name of enrolled member {member['member_id']}"
    for member in registered:
        needles[member.id_number] = f"ID number of member {member.member_id}"
        needles[member.name] = f"name of member {member.member_id}"
    return lines, needles, registered, failed


def rng_birth(rng: random.Random):  # noqa: ANN201
    from datetime import date, timedelta

    return date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55))


@dataclass(frozen=True)
class Person:
    """A registered member as the HIS presents the patient (what `Kit.admit` reads)."""

    region: str
    member_id: str
    id_number: str
    name: str


async def register(kit, region: str, id_number: str, name: str) -> Person:  # noqa: ANN001
    """A member with this generated ID number and name."""
    member_id = f"P{region}{uuid.uuid4().hex[:12].upper()}"
    await kit.insured(region).RegisterMember(ia.RegisterMemberRequest(request_id=kit.rid(), member=ia.Member(
        member_id=member_id, id_number=id_number, name=name, scheme=types_pb2.SCHEME_EMPLOYEE,
        assistance=types_pb2.ASSISTANCE_TIER_NONE)))
    return Person(region, member_id, id_number, name)


# ---------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------

async def test_the_run_settles_the_discharges_of_the_enrolled_members(own_kit, run):
    """The HIS simulator's patients are the enrolled members with their own ID numbers: the check at admission
    refuses none of them."""
    _, _, _, failed = run
    his = await own_kit.db("his")
    refused = await his.fetch("SELECT error FROM discharges WHERE error LIKE '%id_number%'")
    assert refused == []
    assert failed == 0


async def test_no_table_of_the_clearing_house_or_an_insured_agency_holds_an_id_number_or_a_name(own_stack, run):
    _, needles, _, _ = run
    parties = ["clearinghouse", *(f"insured_{region}" for region in sorted(own_stack.regions))]
    found = {party: await findings(own_stack.config.dsn(party), needles) for party in parties}
    assert {party: items for party, items in found.items() if items} == {}


async def test_the_treating_agency_holds_them_so_the_scan_can_find_them(own_stack, run):
    """The scan is not blind: the treating agency of Guangzhou keeps its patients' ID numbers and names (in its
    encounters, and in the stored Admit requests as protobuf bytes)."""
    _, needles, _, _ = run
    found = await findings(own_stack.config.dsn(f"treating_{TREATING}"), needles)
    assert any(item.startswith("encounters.id_number: ID number") for item in found)
    assert any(item.startswith("encounters.name: name") for item in found)
    assert any(item.startswith("encounters.request: ID number") for item in found)


async def test_no_log_line_of_any_party_holds_an_unmasked_id_number_or_a_name(run):
    lines, needles, _, _ = run
    assert len(lines) > DISCHARGES, "every party's log lines were captured"
    leaks = [(needles[needle], line) for line in lines for needle in needles if needle in line]
    assert leaks == []
    unmasked = [line for line in lines if UNMASKED_ID.search(line)]
    assert unmasked == []
    # Not vacuous: the admissions logged the patients' ID numbers, masked.
    assert any('"patient_admitted"' in line and "**********" in line for line in lines)


async def test_the_insured_agency_keeps_only_the_keyed_hash_and_the_masked_number(own_stack, own_kit, run):
    _, _, registered, _ = run
    member = registered[1]
    insured = await own_kit.db(f"insured_{member.region}")
    columns = {row["attname"] for row in await insured.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'members'::regclass AND attnum > 0 AND NOT attisdropped")}
    assert "id_number" not in columns and "name" not in columns
    row = await insured.fetchrow("SELECT * FROM members WHERE member_id = $1", member.member_id)
    assert row["id_hash"] == expected_hash(member.region, member.id_number)
    assert row["id_number_masked"] == member.id_number[:4] + "*" * 10 + member.id_number[-4:]
    answer = await own_kit.insured(member.region).GetMember(ia.GetMemberRequest(member_id=member.member_id))
    assert answer.member.id_number == row["id_number_masked"] and answer.member.name == ""


async def test_admit_with_another_id_number_is_refused_naming_it_and_writes_nothing(own_kit, run):
    _, _, registered, _ = run
    member = next(item for item in registered if item.region == INSURED)
    other = member.id_number[:14] + ("000" if member.id_number[14:17] != "000" else "111") + member.id_number[17]
    impostor = replace(member, id_number=other)
    parties = (f"treating_{TREATING}", "clearinghouse", f"insured_{INSURED}")
    before = await own_kit.counts(*parties)
    error = await own_kit.refusal(own_kit.admit(H_GUANGZHOU, impostor, ADMITTED_ON))
    own_kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="patient.id_number")
    assert other not in error.details() and member.id_number not in error.details()
    assert await own_kit.counts(*parties) == before, "a refused admission writes nothing"
    # Another member's number is refused too; the member's own (with a lower-case x, if it has one) is admitted.
    someone_else = next(item for item in registered if item.region == INSURED and item.member_id != member.member_id)
    error = await own_kit.refusal(own_kit.admit(H_GUANGZHOU, replace(member, id_number=someone_else.id_number),
                                                ADMITTED_ON))
    own_kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="patient.id_number")
    admitted = await own_kit.admit(H_GUANGZHOU, replace(member, id_number=member.id_number.lower()), ADMITTED_ON)
    assert admitted.encounter_id
    assert await own_kit.counts(f"insured_{INSURED}", "clearinghouse") == {
        key: value for key, value in before.items() if key[0] != f"treating_{TREATING}"}


async def test_verify_member_answers_only_whether_it_matches(own_kit, run):
    _, _, registered, _ = run
    member = registered[1]
    stub = own_kit.insured(member.region)
    assert (await stub.VerifyMember(ia.VerifyMemberRequest(member_id=member.member_id,
                                                           id_number=member.id_number))).matches
    other = member.id_number[:14] + ("000" if member.id_number[14:17] != "000" else "111") + member.id_number[17]
    answer = await stub.VerifyMember(ia.VerifyMemberRequest(member_id=member.member_id, id_number=other))
    assert not answer.matches and answer.ListFields() == []


async def test_a_retried_registration_replays_and_another_id_number_or_name_conflicts(own_kit, run):
    """Idempotency without keeping the request in clear: the stored request has keyed hashes in place of the ID
    number and name, so a retry still replays and a retry with another number or name is named."""
    rng = random.Random(5)
    id_number, name = make_id_number(rng, INSURED, rng_birth(rng), True), make_name(rng, True)
    request = ia.RegisterMemberRequest(request_id=own_kit.rid(), member=ia.Member(
        member_id=f"P{INSURED}{uuid.uuid4().hex[:12].upper()}", id_number=id_number, name=name,
        scheme=types_pb2.SCHEME_EMPLOYEE, assistance=types_pb2.ASSISTANCE_TIER_NONE))
    stub = own_kit.insured(INSURED)
    first = await stub.RegisterMember(request)
    assert first.member.id_number == id_number[:4] + "*" * 10 + id_number[-4:] and first.member.name == ""
    assert own_kit.same_bytes(await stub.RegisterMember(request), first)
    changed_number = ia.RegisterMemberRequest()
    changed_number.CopyFrom(request)
    changed_number.member.id_number = id_number[:16] + ("1" if id_number[16] != "1" else "2") + id_number[17]
    own_kit.assert_refused(await own_kit.refusal(stub.RegisterMember(changed_number)),
                           grpc.StatusCode.ALREADY_EXISTS, field="member.id_number")
    changed_name = ia.RegisterMemberRequest()
    changed_name.CopyFrom(request)
    changed_name.member.name = name + "明"
    own_kit.assert_refused(await own_kit.refusal(stub.RegisterMember(changed_name)),
                           grpc.StatusCode.ALREADY_EXISTS, field="member.name")
    stored = await (await own_kit.db(f"insured_{INSURED}")).fetchrow(
        "SELECT request, response FROM requests WHERE request_id = $1", uuid.UUID(request.request_id))
    for column in ("request", "response"):
        assert id_number.encode() not in bytes(stored[column]) and name.encode() not in bytes(stored[column])


# ---------------------------------------------------------------------------------------------
# The migration over an insured agency's database of before
# ---------------------------------------------------------------------------------------------

OLD_ID, OLD_NAME = "43010219800101123x", "张三丰"


async def test_the_migration_hashes_the_members_of_before_and_forgets_their_numbers_and_names(database, tmp_path):
    from services.common.requests import stored_answer
    from services.insured.servicer import redacted_registration

    key = bytes(range(32, 64))
    name = f"pd_migration_{uuid.uuid4().hex[:8]}"
    await ensure_database(database.base_dsn, name)
    pool = await create_pool(dsn_for(database.base_dsn, name))
    request_id = str(uuid.uuid4())
    old_request = ia.RegisterMemberRequest(request_id=request_id, member=ia.Member(
        member_id="M-OLD", id_number=OLD_ID, name=OLD_NAME, scheme=types_pb2.SCHEME_EMPLOYEE,
        assistance=types_pb2.ASSISTANCE_TIER_NONE))
    old_response = ia.RegisterMemberResponse(member=ia.Member(
        member_id="M-OLD", id_number="4301**********123x", name="张**", scheme=types_pb2.SCHEME_EMPLOYEE,
        assistance=types_pb2.ASSISTANCE_TIER_NONE))
    try:
        earlier = [path for path in sorted(INSURED_MIGRATIONS.glob("*.sql")) if path.name < "0005"]
        for path in earlier:
            shutil.copy(path, tmp_path / path.name)
        assert await apply_migrations(pool, tmp_path) == [path.name for path in earlier]
        async with pool.acquire() as connection:  # as the code of before wrote them
            await connection.execute("INSERT INTO members (member_id, id_number, name, scheme, retired, poverty) "
                                     "VALUES ('M-OLD', $1, $2, 'employee', false, false)", OLD_ID.upper(), OLD_NAME)
            await connection.execute("INSERT INTO requests (request_id, rpc, request, response) VALUES "
                                     "($1, 'RegisterMember', $2, $3)", uuid.UUID(request_id),
                                     old_request.SerializeToString(), old_response.SerializeToString())
        with pytest.raises(RuntimeError, match="member key"):  # members, and no key: nothing is applied
            await apply_migrations(pool, INSURED_MIGRATIONS)
        assert await apply_migrations(pool, INSURED_MIGRATIONS, {"member_key": key}) == [
            "0005_member_id_hash.py", "0006_operator_audit.py", "0007_recording_order.sql", "0008_stays_for_audit.py",
            "0010_special_diseases.sql", "0020_visits.sql"]
        async with pool.acquire() as connection:
            row = await connection.fetchrow("SELECT * FROM members WHERE member_id = 'M-OLD'")
            assert "id_number" not in row.keys() and "name" not in row.keys()
            assert row["id_hash"] == hmac.new(key, OLD_ID.upper().encode(), hashlib.sha256).hexdigest()
            assert row["id_number_masked"] == "4301**********123X"
            stored = await connection.fetchrow("SELECT request, response FROM requests WHERE request_id = $1",
                                               uuid.UUID(request_id))
            for column in ("request", "response"):
                text = bytes(stored[column])
                assert OLD_ID.upper().encode() not in text.upper() and OLD_NAME.encode() not in text
                assert "张".encode() not in text, "not even the masked name is kept"
            # A retry of the registration made before the migration still replays its (now nameless) answer.
            async with connection.transaction():
                answer = await stored_answer(connection, request_id, "RegisterMember",
                                             redacted_registration(old_request, key))
            assert ia.RegisterMemberResponse.FromString(answer).member.id_number == "4301**********123x"
    finally:
        await pool.close()
        connection = await asyncpg.connect(database.base_dsn)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()
