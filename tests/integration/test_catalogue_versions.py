"""Which catalogue version is in force after an import (issue 9 item 13; docs/architecture.md, "Decisions").

The newest import wins. Importing the text of an earlier version that is not the newest is the region going
back to it: a new version, in force at the treating agency and at the clearing house, and the answer names
it. Before, the answer named the old version while both caches kept the newer text in force.

Each test runs its own treating agency (the real servicer behind a real gRPC server, on its own database in the
session's Postgres) for a region of its own, publishing to the session's clearing house, so the demo regions'
catalogues stay untouched and version numbers start at 1.
"""

from __future__ import annotations

import uuid
from datetime import date

import asyncpg
import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import clearing_house_pb2_grpc, treating_agency_pb2, treating_agency_pb2_grpc
from clearinghouse.v1 import treating_agency_pb2 as ta

from clearing.catalogue import COLUMNS
from services.common.db import ensure_database
from services.common.server import ServiceBinding, start_server
from services.security.identity import agency as agency_identity
from services.treating.servicer import TreatingAgencyServicer
from services.stack.wiring import open_pool

HEADER = ",".join(COLUMNS)
ROW_1 = "T0001,N0001,equivalent,drug,甲药,A,0,,,2024-01-01,"
ROW_2 = "T0002,N0002,equivalent,drug,乙药,A,0,,,2024-01-01,"
FIRST = "\n".join([HEADER, ROW_1, ROW_2]) + "\n"  # T0002 maps to N0002
SECOND = "\n".join([HEADER, ROW_1.replace(",A,0,", ",B,1000,")]) + "\n"  # T0002 is gone


class Agency:
    def __init__(self, region: str, servicer: TreatingAgencyServicer, stub, dsn: str) -> None:  # noqa: ANN001
        self.region = region
        self.servicer = servicer
        self.stub = stub
        self.dsn = dsn

    async def import_(self, text: str, request_id: str | None = None) -> ta.ImportCatalogueResponse:
        return await self.stub.ImportCatalogue(ta.ImportCatalogueRequest(request_id=request_id or str(uuid.uuid4()),
                                                                         csv_text=text))

    async def in_force(self, servicer: TreatingAgencyServicer | None = None):  # noqa: ANN201 - (version, Catalogue)
        """The version the agency (or another process of it on the same database) classifies with now."""
        servicer = servicer or self.servicer
        async with servicer.pool.acquire() as connection:
            return await servicer.catalogue(connection)

    async def versions(self) -> list[tuple[int, str]]:
        """(version, text) of every stored version, oldest first."""
        connection = await asyncpg.connect(self.dsn)
        try:
            rows = await connection.fetch("SELECT version, csv_text FROM catalogue_versions ORDER BY version")
        finally:
            await connection.close()
        return [(row["version"], row["csv_text"]) for row in rows]


@pytest.fixture
async def agency(stack, request, tmp_path):
    region = f"99{uuid.uuid4().int % 10_000:04d}"  # a region of this test's own: its versions start at 1
    party = f"treating_{region}"
    await ensure_database(stack.config.base_dsn, stack.config.database(party))
    pool = await open_pool(stack.config.dsn(party), "treating")
    # It serves and dials as agency/99…, with a certificate of the stack's CA made for it.
    security = stack.transport_for(tmp_path / "certs", agency_identity(region)).security(agency_identity(region))
    ch_channel = security.channel(f"127.0.0.1:{stack.clearing_house.port}")
    servicer = TreatingAgencyServicer(region, pool, {f"H{region}00001": 3},
                                      clearing_house_pb2_grpc.ClearingHouseServiceStub(ch_channel), None,
                                      security=security)
    server, port = await start_server([ServiceBinding(
        servicer, treating_agency_pb2_grpc.add_TreatingAgencyServiceServicer_to_server,
        treating_agency_pb2.DESCRIPTOR.services_by_name["TreatingAgencyService"].full_name)], 0, f"test:{region}",
        security=security)
    yield Agency(region, servicer, stack.treating(region, f"127.0.0.1:{port}"), stack.config.dsn(party))
    await server.stop(None)
    await ch_channel.close()
    await pool.close()
    connection = await asyncpg.connect(stack.config.base_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{stack.config.database(party)}" WITH (FORCE)')
    finally:
        await connection.close()


async def national_code_at_the_clearing_house(kit, region: str, code: str) -> str:
    answer = await kit.clearing().Translate(ch.TranslateRequest(from_region=region, code=code, on_date="2026-03-01"))
    return answer.national_code


async def test_reimporting_an_earlier_catalogue_puts_it_in_force_as_a_new_version(kit, agency):
    assert (await agency.import_(FIRST)).version == 1
    assert (await agency.import_(SECOND)).version == 2
    assert await national_code_at_the_clearing_house(kit, agency.region, "T0002") == ""  # not in SECOND

    back = await agency.import_(FIRST)  # the region goes back to its first catalogue
    assert back.version == 3
    assert await agency.versions() == [(1, FIRST), (2, SECOND), (3, FIRST)]
    # In force everywhere: the treating agency classifies with it, the clearing house translates with it …
    version, in_force = await agency.in_force()
    assert version == 3
    assert in_force.row_on("T0002", date(2026, 3, 1)).national_code == "N0002"
    assert await national_code_at_the_clearing_house(kit, agency.region, "T0002") == "N0002"
    # … and a treating agency starting afresh on the same database loads the same version.
    restarted = TreatingAgencyServicer(agency.region, agency.servicer.pool, {}, agency.servicer.clearing_house, None,
                                       security=agency.servicer.security)
    await restarted.load_catalogue()
    version, again = await agency.in_force(restarted)
    assert version == 3
    assert again.rows == in_force.rows


async def test_importing_the_catalogue_in_force_again_keeps_its_version_and_adds_none(agency):
    await agency.import_(FIRST)
    first = await agency.import_(SECOND)
    again = await agency.import_(SECOND)
    assert again.version == first.version == 2
    assert [version for version, _ in await agency.versions()] == [1, 2]


async def test_a_retry_of_an_import_finds_the_version_it_made_even_after_a_newer_import(agency):
    request_id = str(uuid.uuid4())
    made = await agency.import_(SECOND, request_id)
    # A crash between the commit and the reply leaves the version without the remembered answer …
    connection = await asyncpg.connect(agency.dsn)
    try:
        await connection.execute("DELETE FROM requests WHERE request_id = $1", uuid.UUID(request_id))
    finally:
        await connection.close()
    newer = await agency.import_(FIRST)
    # … and the retry must not make SECOND's text a third version, undoing the newer import.
    retried = await agency.import_(SECOND, request_id)
    assert (made.version, newer.version, retried.version) == (1, 2, 1)
    assert [version for version, _ in await agency.versions()] == [1, 2]
    assert (await agency.in_force())[0] == 2
