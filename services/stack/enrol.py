"""Seed a fresh stack the way operators would: import each region's catalogue and enrol its members (with their
filings and the recognitions of outpatient special diseases, services/datagen/visits.py).

Request ids are UUID5s of the seed and the item, so enrolling twice replays instead of duplicating.
Every call is made as the operator (`operator/admin`, or $CLEARING_OPERATOR), over the stack's transport.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import uuid
from collections.abc import Callable

from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import insured_agency_pb2_grpc, treating_agency_pb2, treating_agency_pb2_grpc, types_pb2

from clearing.catalogue import COLUMNS
from services.common import convert
from services.datagen.catalogue import generate_catalogue_rows
from services.datagen.population import generate_members
from services.datagen.visits import recognised
from services.security.party import Transport
from services.stack.config import operator_identity

ENROL_NAMESPACE = uuid.UUID("6a1d3c64-5b1e-4f57-9a0e-2f3b7c9d1e20")
FILINGS_VALID_FROM = "2026-01-01"
CONCURRENCY = 32


def enrol_request_id(seed: int, item: str) -> str:
    return str(uuid.uuid5(ENROL_NAMESPACE, f"{seed}:{item}"))


@functools.lru_cache(maxsize=64)
def catalogue_csv_text(region: str, seed: int) -> str:
    """The generated catalogue of `region` as SPEC §4.1 CSV text (made once per process and seed)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(generate_catalogue_rows(region, seed))
    return buffer.getvalue()


def member_message(member: dict) -> ia.Member:
    return ia.Member(member_id=member["member_id"], id_number=member["id_number"], name=member["name"],
                     scheme=convert.SCHEMES[member["scheme"]], retired=member["retired"], poverty=member["poverty"],
                     assistance=convert.TIERS[member["assistance"]])


async def enrol_region(address: str, region: str, seed: int, members_per_region: int, *,
                       transport: Transport) -> int:
    """Import the catalogue and register every member with its filing; returns members enrolled."""
    channel = transport.channel(address, operator_identity())
    try:
        treating = treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel)
        insured = insured_agency_pb2_grpc.InsuredAgencyServiceStub(channel)
        await treating.ImportCatalogue(treating_agency_pb2.ImportCatalogueRequest(
            request_id=enrol_request_id(seed, f"{region}:catalogue"), csv_text=catalogue_csv_text(region, seed)),
            timeout=120)
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def enrol_member(member: dict) -> None:
            async with semaphore:
                await insured.RegisterMember(ia.RegisterMemberRequest(
                    request_id=enrol_request_id(seed, f"{member['member_id']}:register"),
                    member=member_message(member)), timeout=30)
                if member["filing"] != "unfiled":
                    await insured.RecordFiling(ia.RecordFilingRequest(
                        request_id=enrol_request_id(seed, f"{member['member_id']}:filing"),
                        member_id=member["member_id"],
                        filing=ia.Filing(category=convert.FILINGS[member["filing"]], valid_from=FILINGS_VALID_FROM)),
                        timeout=30)
                found = recognised(region, index_of[member["member_id"]], seed)
                if found is not None:  # a recognised outpatient special disease (认定 2503): the HIS visits follow
                    await insured.RecordSpecialDisease(ia.RecordSpecialDiseaseRequest(
                        request_id=enrol_request_id(seed, f"{member['member_id']}:special"),
                        member_id=member["member_id"], recognition=types_pb2.SpecialDiseaseRecognition(
                            disease=convert.SPECIAL_DISEASES[found[0].value], valid_from=FILINGS_VALID_FROM,
                            diagnosis=found[1])), timeout=30)

        members = generate_members(region, members_per_region, seed)
        index_of = {member["member_id"]: index for index, member in enumerate(members)}
        await asyncio.gather(*(enrol_member(member) for member in members))
        return len(members)
    finally:
        await channel.close()


ENROL_REGIONS_AT_ONCE = 3


async def enrol_all(region_addresses: dict[str, str], seed: int, members_per_region: int,
                    on_region: Callable[[str, int], None] | None = None, *, transport: Transport) -> None:
    """Enrol every region, a few at once (each region's import and registrations are independent of the others'),
    reporting each as it is done."""
    semaphore = asyncio.Semaphore(ENROL_REGIONS_AT_ONCE)

    async def one(region: str) -> None:
        async with semaphore:
            count = await enrol_region(region_addresses[region], region, seed, members_per_region, transport=transport)
        if on_region is not None:
            on_region(region, count)

    await asyncio.gather(*(one(region) for region in sorted(region_addresses)))


async def fund_prepayments(clearing_house_address: str, regions: list[str], seed: int, amount_fen: int, *,
                           transport: Transport) -> None:
    """Each insured region deposits its first prepayment (预付金), which also sizes it (the operator records it)."""
    from clearinghouse.v1 import clearing_house_pb2, clearing_house_pb2_grpc

    channel = transport.channel(clearing_house_address, operator_identity())
    try:
        stub = clearing_house_pb2_grpc.ClearingHouseServiceStub(channel)
        for region in sorted(regions):
            await stub.TopUpPrepayment(clearing_house_pb2.TopUpPrepaymentRequest(
                request_id=enrol_request_id(seed, f"{region}:prepayment:{amount_fen}"), insured_region=region,
                amount_fen=amount_fen), timeout=30)
    finally:
        await channel.close()
