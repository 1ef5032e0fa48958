"""Build each party's running server from configuration (STYLE: the one place that wires things).

Used by the service processes and, in-process, by the integration tests: the same code path.

Every party serves mutual TLS with its own certificate and dials its neighbours with it (`Transport`, from the
stack's configuration; plaintext only when it is insecure): the clearing house is `clearinghouse` and dials the
insured agencies as such; a region's process is `agency/{region}` (its treating and insured agency share it) and
dials the clearing house and its own insured agency as such; the HIS simulator serves as `simulator/his` and
dials each treating agency as each hospital, one channel per hospital with that hospital's certificate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import asyncpg
import grpc
from clearinghouse.v1 import (
    audit_pb2, audit_pb2_grpc, clearing_house_pb2, clearing_house_pb2_grpc, hospital_pb2, hospital_pb2_grpc, insured_agency_pb2,
    insured_agency_pb2_grpc, treating_agency_pb2, treating_agency_pb2_grpc,
)

from clearing.translate import Agreements
from services.clearinghouse.servicer import ClearingHouseServicer
from services.common.batch_settings import BatchSettings
from services.common.batching import StreamBatcher
from services.common.db import POOL_SIZE_MAX, apply_migrations, create_pool
from services.common.regions import load_agreements, load_policy_book, load_regions
from services.common.server import ServiceBinding, start_server
from services.common.smart_audit import load_audit_libraries
from services.insured.keys import load_member_key
from services.insured.servicer import InsuredAgencyServicer
from services.security.audit_log import AuditLog
from services.security.audit_service import AuditServicer
from services.security.identity import agency, clearinghouse, his_simulator, hospital
from services.security.party import CHANNEL_OPTIONS, Security, Transport, channel_to
from services.treating.servicer import TreatingAgencyServicer

SERVICES_DIR = Path(__file__).resolve().parent.parent
__all__ = ["CHANNEL_OPTIONS", "Running", "Transport", "channel_to", "connect_regions", "open_pool",
           "start_clearing_house", "start_his", "start_region"]


@dataclass
class Running:
    """A started server with what must be closed after it stops."""

    server: grpc.aio.Server
    port: int
    servicers: dict[str, Any]
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def stop(self, grace_s: float | None = 1.0) -> None:
        await self.server.stop(grace_s)
        for close in reversed(self.closers):
            await close()


def audit_binding(logs: list[AuditLog], security: Security) -> ServiceBinding:
    """The AuditService every server binds: operators read back the audit logs of the parties it is."""
    return ServiceBinding(AuditServicer(logs, security=security), audit_pb2_grpc.add_AuditServiceServicer_to_server,
                          audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name)


async def open_pool(dsn: str, migrations: str, context: dict[str, Any] | None = None,
                    size_max: int = POOL_SIZE_MAX) -> asyncpg.Pool:
    pool = await create_pool(dsn, size_max)
    await apply_migrations(pool, SERVICES_DIR / migrations / "migrations", context)
    return pool


async def start_region(region: str, treating_dsn: str, insured_dsn: str, clearing_house_address: str,
                       port: int = 0, insured_addresses: dict[str, str] | None = None,
                       member_key: bytes | None = None, *, transport: Transport, share_port: bool = False,
                       pool_size: int = POOL_SIZE_MAX, audit_rules_dir: Path | None = None) -> Running:
    """One region's treating and insured agencies in one server (identity `agency/{region}`), each on its own
    database.

    `insured_addresses`: where the treating agency reaches the other regions' insured agencies to check a
    patient at admission (VerifyMember; `connect_insured_agencies` adds them later). `member_key`: the insured
    agency's key for the members' ID-number hashes; by default read from the key directory the environment
    names (services/insured/keys.py). `audit_rules_dir`: where the region's smart-audit rule library
    `<region>.toml` is (default services/regions/audit_rules/)."""
    regions = load_regions()
    security = transport.security(agency(region))
    key = member_key if member_key is not None else load_member_key(region)
    treating_pool = await open_pool(treating_dsn, "treating", size_max=pool_size)
    insured_pool = await open_pool(insured_dsn, "insured", {"member_key": key}, pool_size)
    audit = load_audit_libraries(region, audit_rules_dir)
    insured = InsuredAgencyServicer(region, insured_pool, load_policy_book(region), key, security=security,
                                    rules=audit.rules)
    ch_channel = security.channel(clearing_house_address)
    treating = TreatingAgencyServicer(
        region, treating_pool, {h.code: h.level for h in regions[region].hospitals},
        clearing_house_pb2_grpc.ClearingHouseServiceStub(ch_channel), None,  # type: ignore[arg-type]
        security=security, audit=audit)
    await treating.load_catalogue()
    server, bound = await start_server([
        ServiceBinding(treating, treating_agency_pb2_grpc.add_TreatingAgencyServiceServicer_to_server,
                       treating_agency_pb2.DESCRIPTOR.services_by_name["TreatingAgencyService"].full_name),
        ServiceBinding(insured, insured_agency_pb2_grpc.add_InsuredAgencyServiceServicer_to_server,
                       insured_agency_pb2.DESCRIPTOR.services_by_name["InsuredAgencyService"].full_name),
        audit_binding([treating.audit_log, insured.audit_log], security),
    ], port, party=f"region:{region}", security=security, share_port=share_port)
    # The treating agency reaches its own region's insured agency over gRPC like any other party.
    self_channel = security.channel(f"127.0.0.1:{bound}")
    treating.local_insured = insured_agency_pb2_grpc.InsuredAgencyServiceStub(self_channel)
    closers = [treating_pool.close, insured_pool.close, ch_channel.close, self_channel.close]
    if transport.batching.enabled:
        treating.claim_batcher = StreamBatcher(treating.clearing_house.SettleClaimBatch,
                                               clearing_house_pb2.SettleClaimBatchRequest, transport.batching,
                                               f"settle_claim:{region}")
        closers.insert(3, treating.claim_batcher.close)  # closed (in reverse order) before its channel
    running = Running(server, bound, {"treating": treating, "insured": insured}, closers)
    connect_insured_agencies(running, insured_addresses or {})
    return running


def connect_insured_agencies(region: Running, insured_addresses: dict[str, str]) -> None:
    """Give a region's treating agency the other regions' insured agencies (for VerifyMember at admission; the
    claims themselves go through the clearing house). Its own region's is reached through `local_insured`."""
    treating: TreatingAgencyServicer = region.servicers["treating"]
    for insured_region, address in insured_addresses.items():
        if insured_region == treating.region:
            continue
        channel = treating.security.channel(address)
        treating.other_insured[insured_region] = insured_agency_pb2_grpc.InsuredAgencyServiceStub(channel)
        region.closers.append(channel.close)


async def start_clearing_house(dsn: str, region_addresses: dict[str, str], port: int = 0,
                               agreements: Agreements | None = None, *, transport: Transport,
                               share_port: bool = False, pool_size: int = POOL_SIZE_MAX) -> Running:
    """The clearing house (identity `clearinghouse`); `agreements` default to the configured ones
    (services/regions/agreements.toml)."""
    security = transport.security(clearinghouse())
    pool = await open_pool(dsn, "clearinghouse", size_max=pool_size)
    channels = {region: security.channel(address) for region, address in region_addresses.items()}
    servicer = ClearingHouseServicer(
        pool, agreements or load_agreements(),
        {region: insured_agency_pb2_grpc.InsuredAgencyServiceStub(channel) for region, channel in channels.items()},
        security=security)
    await servicer.load_catalogues()
    servicer.batching = transport.batching
    if transport.batching.enabled:
        servicer.adjudicators.update({region: adjudicator(stub, region, transport.batching)
                                      for region, stub in servicer.insured_stubs.items()})
    server, bound = await start_server([
        ServiceBinding(servicer, clearing_house_pb2_grpc.add_ClearingHouseServiceServicer_to_server,
                       clearing_house_pb2.DESCRIPTOR.services_by_name["ClearingHouseService"].full_name),
        audit_binding([servicer.audit_log], security),
    ], port, party="clearinghouse", security=security, share_port=share_port)

    async def close_channels() -> None:
        for batcher in servicer.adjudicators.values():
            await batcher.close()
        for channel in channels.values():
            await channel.close()

    return Running(server, bound, {"clearinghouse": servicer}, [pool.close, close_channels])


def adjudicator(stub: insured_agency_pb2_grpc.InsuredAgencyServiceStub, region: str,
                settings: BatchSettings) -> StreamBatcher:
    """The clearing house's batch stream to one insured agency (AdjudicateBatch)."""
    return StreamBatcher(stub.AdjudicateBatch, insured_agency_pb2.AdjudicateBatchRequest, settings,
                         f"adjudicate:{region}")


def connect_regions(clearing_house: Running, region_addresses: dict[str, str]) -> None:
    """Give an in-process clearing house its insured agencies once their ports are known."""
    servicer: ClearingHouseServicer = clearing_house.servicers["clearinghouse"]
    for region, address in region_addresses.items():
        channel = servicer.security.channel(address)
        servicer.insured_stubs[region] = insured_agency_pb2_grpc.InsuredAgencyServiceStub(channel)
        clearing_house.closers.append(channel.close)
        if servicer.batching.enabled:
            servicer.adjudicators[region] = adjudicator(servicer.insured_stubs[region], region, servicer.batching)
            clearing_house.closers.append(servicer.adjudicators[region].close)


async def start_his(dsn: str, region_addresses: dict[str, str], seed: int, members_per_region: int,
                    port: int = 0, *, transport: Transport) -> Running:
    """The HIS simulator: it serves as `simulator/his` and discharges at many hospitals, so it dials each treating
    agency as each of its hospitals — one channel per hospital, with that hospital's certificate."""
    from services.his.servicer import HospitalServicer

    security = transport.security(his_simulator())
    regions = load_regions()
    pool = await open_pool(dsn, "his")
    channels = {item.code: security.channel(address, hospital(item.code))
                for region, address in region_addresses.items() for item in regions[region].hospitals}
    servicer = HospitalServicer(
        pool, {code: treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel) for code, channel in channels.items()},
        seed, members_per_region, security=security)
    server, bound = await start_server([
        ServiceBinding(servicer, hospital_pb2_grpc.add_HospitalServiceServicer_to_server,
                       hospital_pb2.DESCRIPTOR.services_by_name["HospitalService"].full_name),
        audit_binding([servicer.audit_log], security),
    ], port, party="his", security=security)

    async def close_channels() -> None:
        for channel in channels.values():
            await channel.close()

    return Running(server, bound, {"his": servicer}, [pool.close, close_channels])
