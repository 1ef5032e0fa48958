"""The floor: a skeleton of the stack that makes a discharge's hops and nothing else, to measure what the stack
costs above them.

The same processes as the stack's hot path — one per region hosting a treating and an insured agency, and the
clearing house (the HIS simulator is not on it: the load generators are the HIS) — serving the same generated
services over the same mutual TLS, with the stack's certificates, and making the same downstream calls a real
discharge makes, with messages of about the same size:

* Admit → the patient's insured agency's VerifyMember (another region's process, or this one over gRPC);
* UploadCharges → nothing downstream (the lines are kept in memory for Settle);
* Settle → a local stay: this region's insured agency's Adjudicate; else the clearing house's SettleClaim → the
  insured region's Adjudicate. The claim carries every line (as a ClassifiedLine), the answers carry it back.

Two modes: `empty` — handlers do nothing else (the cost of gRPC, TLS, protobuf and asyncio for the hops); `rows`
— each party also writes the rows the real service writes for the call, in one raw asyncpg transaction
(services/loadtest/floor_rows.py). The mode is a file every process re-reads at most every MODE_CHECK_S, so one
set of processes (pools open from the start) serves both: `FloorStack.set_mode` flips them without a restart.
The servers are bare `grpc.aio` servers with health only: no interceptor, no authentication or limits per call,
no audit, no logging per call, no metrics.

`python -m services.loadtest.floor ROLE --config floor.json` runs one process (ROLE: `clearinghouse` or
`region:<code>`); `FloorStack` starts them all and stops them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import clearing_house_pb2_grpc, insured_agency_pb2_grpc, treating_agency_pb2_grpc, types_pb2
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import treating_agency_pb2 as ta
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from services.stack.processes import wait_until_serving
from services.common.db import ensure_database
from services.common.regions import load_regions
from services.common.server import SERVER_OPTIONS, run_until_stopped
from services.loadtest import floor_rows
from services.security.identity import agency, clearinghouse
from services.loadtest.transport import transport_for
from services.stack.config import dsn_for, operator_identity
from services.stack.processes import free_port

MODES = ("empty", "rows")
MODE_CHECK_S = 0.05
CALL_TIMEOUT_S = 10.0
FUND_SHARE_PCT = 70  # the floor's made-up split: the funds pay 70 %
# Generous: at a load average of 45 on 2 cores (colleagues' valgrind and installs) a floor process took over 60 s
# just to import its modules.
HEALTH_WAIT_S = 180.0
STOP_WAIT_S = 10.0


@dataclass
class FloorConfig:
    certs_dir: str
    mode_file: str
    ports: dict[str, int]  # role → port
    dsns: dict[str, str] = field(default_factory=dict)  # party (treating_<r>, insured_<r>, clearinghouse) → dsn

    def address(self, role: str) -> str:
        return f"127.0.0.1:{self.ports[role]}"

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> FloorConfig:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def split_of(total_fen: int) -> tuple[int, int, int]:
    """(total, fund pay, personal pay) in fen; the parts add up to the total."""
    fund_pay_fen = total_fen * FUND_SHARE_PCT // 100
    return total_fen, fund_pay_fen, total_fen - fund_pay_fen


def month_of(day: date) -> str:
    return f"{day:%Y-%m}"


@dataclass
class Mode:
    """Whether the floor writes rows now: its file (`empty` or `rows`), re-read at most every MODE_CHECK_S."""

    path: Path
    rows: bool = False
    checked_at: float = float("-inf")

    def writes_rows(self) -> bool:
        now = time.monotonic()
        if now - self.checked_at >= MODE_CHECK_S:
            self.checked_at = now
            self.rows = self.path.read_text(encoding="utf-8").strip() == "rows"
        return self.rows


@dataclass
class Encounter:
    request: ta.AdmitRequest
    lines: list[types_pb2.BillLine] = field(default_factory=list)


class FloorInsured(insured_agency_pb2_grpc.InsuredAgencyServiceServicer):
    def __init__(self, pool: asyncpg.Pool, mode: Mode) -> None:
        self.pool = pool
        self.mode = mode

    async def VerifyMember(self, request: ia.VerifyMemberRequest, context: Any) -> ia.VerifyMemberResponse:  # noqa: ANN401
        return ia.VerifyMemberResponse(matches=True)

    async def Adjudicate(self, request: ia.AdjudicateRequest, context: Any) -> ia.AdjudicateResponse:  # noqa: ANN401
        claim = request.claim
        split = split_of(sum(line.line.amount_fen for line in claim.lines))
        response = ia.AdjudicateResponse(adjudication=types_pb2.Adjudication(
            split=types_pb2.FundSplit(total_fen=split[0], inscp_fen=split[0], fund_pay_fen=split[1],
                                      psn_pay_fen=split[2]),
            lines=claim.lines))
        if self.mode.writes_rows():
            discharged_on = date.fromisoformat(claim.stay.discharged_on)
            await floor_rows.write_adjudication(
                self.pool, uuid.UUID(request.request_id), claim.member_id, discharged_on.year, claim.treating_region,
                split, request.SerializeToString(), response.SerializeToString(), discharged_on)
        return response


class FloorClearingHouse(clearing_house_pb2_grpc.ClearingHouseServiceServicer):
    def __init__(self, pool: asyncpg.Pool, mode: Mode,
                 insured: dict[str, insured_agency_pb2_grpc.InsuredAgencyServiceStub]) -> None:
        self.pool = pool
        self.mode = mode
        self.insured = insured

    async def SettleClaim(self, request: ch.SettleClaimRequest, context: Any) -> ch.SettleClaimResponse:  # noqa: ANN401
        claim = request.claim
        answer = await self.insured[claim.insured_region].Adjudicate(
            ia.AdjudicateRequest(request_id=request.request_id, claim=claim), timeout=CALL_TIMEOUT_S)
        settlement = types_pb2.Settlement(
            name=f"settlements/{claim.settlement_id}", settlement_id=claim.settlement_id,
            status=types_pb2.SETTLEMENT_STATUS_SETTLED, claim=claim, adjudication=answer.adjudication,
            catalogue_rule=types_pb2.CATALOGUE_RULE_TREATING)
        settlement.settled_at.FromDatetime(datetime.now(UTC))
        response = ch.SettleClaimResponse(settlement=settlement)
        if self.mode.writes_rows():
            split = split_of(answer.adjudication.split.total_fen)
            insured, treating, fund_pay_fen = claim.insured_region, claim.treating_region, split[1]
            await floor_rows.write_claim(
                self.pool, uuid.UUID(claim.settlement_id), treating, insured, claim.member_id,
                claim.stay.hospital_code, request.SerializeToString(), response.SerializeToString(), split,
                date.fromisoformat(claim.stay.admitted_on), date.fromisoformat(claim.stay.discharged_on),
                month_of(date.today()),
                [(f"treating/{treating}/receivable/{insured}", fund_pay_fen),
                 (f"insured/{insured}/payable/{treating}", -fund_pay_fen),
                 (f"insured/{insured}/prepayment_drawn", fund_pay_fen),
                 (f"insured/{insured}/prepayment", -fund_pay_fen)])
        return response


class FloorTreating(treating_agency_pb2_grpc.TreatingAgencyServiceServicer):
    def __init__(self, region: str, pool: asyncpg.Pool, mode: Mode,
                 clearing_house: clearing_house_pb2_grpc.ClearingHouseServiceStub,
                 insured: dict[str, insured_agency_pb2_grpc.InsuredAgencyServiceStub]) -> None:
        self.region = region
        self.pool = pool
        self.mode = mode
        self.clearing_house = clearing_house
        self.insured = insured
        self.levels = {item.code: item.level for item in load_regions()[region].hospitals}
        self.encounters: dict[str, Encounter] = {}

    async def Admit(self, request: ta.AdmitRequest, context: Any) -> ta.AdmitResponse:  # noqa: ANN401
        patient = request.patient
        await self.insured[patient.insured_region].VerifyMember(
            ia.VerifyMemberRequest(member_id=patient.member_id, id_number=patient.id_number), timeout=CALL_TIMEOUT_S)
        encounter_id = uuid.uuid4()
        level = self.levels.get(request.hospital_code, 1)
        if self.mode.writes_rows():
            await floor_rows.write_encounter(
                self.pool, encounter_id, request.request_id, request.SerializeToString(), request.hospital_code, level,
                patient.insured_region, patient.member_id, patient.id_number, patient.name,
                date.fromisoformat(request.admitted_on), request.emergency, list(request.diagnoses))
        self.encounters[str(encounter_id)] = Encounter(request)
        return ta.AdmitResponse(encounter_id=str(encounter_id), hospital_level=level)

    async def UploadCharges(self, request: ta.UploadChargesRequest, context: Any) -> ta.UploadChargesResponse:  # noqa: ANN401
        encounter = self.encounters.get(request.encounter_id)
        if encounter is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such encounter")
        first_position = len(encounter.lines)
        encounter.lines.extend(request.lines)
        response = ta.UploadChargesResponse(encounter_id=request.encounter_id, line_count=len(encounter.lines),
                                            total_fen=sum(line.amount_fen for line in encounter.lines))
        if self.mode.writes_rows():
            rows = [(line.line_id, line.code, int(Decimal(line.qty) * 10_000), line.unit_price_fen, line.amount_fen,
                     date.fromisoformat(line.service_date)) for line in request.lines]
            await floor_rows.write_upload(self.pool, uuid.UUID(request.encounter_id), first_position, rows,
                                          request.request_id, request.SerializeToString(), response.SerializeToString())
        return response

    async def Settle(self, request: ta.SettleRequest, context: Any) -> ta.SettleResponse:  # noqa: ANN401
        encounter = self.encounters.pop(request.encounter_id, None)
        if encounter is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such encounter")
        admitted = encounter.request
        settlement_id = str(uuid.uuid4())
        claim = types_pb2.Claim(
            settlement_id=settlement_id, treating_region=self.region, insured_region=admitted.patient.insured_region,
            member_id=admitted.patient.member_id, treating_catalogue_version=1, settlement_day=date.today().isoformat(),
            stay=types_pb2.Stay(hospital_code=admitted.hospital_code,
                                hospital_level=self.levels.get(admitted.hospital_code, 1),
                                admitted_on=admitted.admitted_on, discharged_on=request.discharged_on,
                                emergency=admitted.emergency, diagnoses=admitted.diagnoses),
            lines=[types_pb2.ClassifiedLine(line=line, catalogue_region=self.region, catalogue_code=line.code,
                                            inscp_fen=line.amount_fen) for line in encounter.lines])
        local = claim.insured_region == self.region
        if local:
            answer = await self.insured[self.region].Adjudicate(
                ia.AdjudicateRequest(request_id=settlement_id, claim=claim), timeout=CALL_TIMEOUT_S)
            settlement = types_pb2.Settlement(settlement_id=settlement_id, request_id=request.request_id,
                                              status=types_pb2.SETTLEMENT_STATUS_SETTLED, claim=claim,
                                              adjudication=answer.adjudication, local=True)
        else:
            settlement = (await self.clearing_house.SettleClaim(
                ch.SettleClaimRequest(request_id=settlement_id, claim=claim), timeout=CALL_TIMEOUT_S)).settlement
            settlement.request_id = request.request_id
        response = ta.SettleResponse(settlement=settlement)
        if self.mode.writes_rows():
            split = split_of(settlement.adjudication.split.total_fen)
            insured, hospital_code = claim.insured_region, admitted.hospital_code
            payable = f"fund/{self.region}/payable" if local else f"insured/{insured}/payable/{self.region}"
            await floor_rows.write_treating_settlement(
                self.pool, uuid.UUID(settlement_id), request.request_id, uuid.UUID(request.encounter_id),
                hospital_code, insured, local, request.SerializeToString(), claim.SerializeToString(),
                response.SerializeToString(), split, date.fromisoformat(request.discharged_on), month_of(date.today()),
                [(f"hospital/{hospital_code}/receivable", split[1]), (payable, -split[1])])
        return response


# -- one process ---------------------------------------------------------------------------------------------------

async def serve(role: str, config: FloorConfig) -> None:
    transport = transport_for(config.certs_dir)
    regions = sorted(role_name.removeprefix("region:") for role_name in config.ports if role_name.startswith("region:"))
    mode = Mode(Path(config.mode_file))
    pools: list[asyncpg.Pool] = []

    async def pool_for(party: str, kind: str) -> asyncpg.Pool:
        pool = await floor_rows.open_pool(config.dsns[party], kind)
        pools.append(pool)
        return pool

    server = grpc.aio.server(options=SERVER_OPTIONS)
    if role == "clearinghouse":
        security = transport.security(clearinghouse())
        insured = {region: insured_agency_pb2_grpc.InsuredAgencyServiceStub(
            security.channel(config.address(f"region:{region}"))) for region in regions}
        clearing_house_pb2_grpc.add_ClearingHouseServiceServicer_to_server(
            FloorClearingHouse(await pool_for("clearinghouse", "clearinghouse"), mode, insured), server)
    else:
        region = role.removeprefix("region:")
        security = transport.security(agency(region))
        insured = {other: insured_agency_pb2_grpc.InsuredAgencyServiceStub(
            security.channel(config.address(f"region:{other}"))) for other in regions}
        clearing = clearing_house_pb2_grpc.ClearingHouseServiceStub(security.channel(config.address("clearinghouse")))
        treating_agency_pb2_grpc.add_TreatingAgencyServiceServicer_to_server(
            FloorTreating(region, await pool_for(f"treating_{region}", "treating"), mode, clearing, insured), server)
        insured_agency_pb2_grpc.add_InsuredAgencyServiceServicer_to_server(
            FloorInsured(await pool_for(f"insured_{region}", "insured"), mode), server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    credentials = security.server_credentials()
    if credentials is None:
        server.add_insecure_port(config.address(role))
    else:
        server.add_secure_port(config.address(role), credentials)
    await server.start()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)

    async def close() -> None:
        for pool in pools:
            await pool.close()

    await run_until_stopped(server, close)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role")
    parser.add_argument("--config", type=Path, required=True)
    arguments = parser.parse_args()
    asyncio.run(serve(arguments.role, FloorConfig.load(arguments.config)))


# -- the launcher --------------------------------------------------------------------------------------------------

@dataclass
class FloorStack:
    """Every floor process, on the stack's certificates and database server; `create_databases()` (any time
    before), `start()`, `set_mode()` per mode, `stop()`, `drop_databases()`."""

    work_dir: Path
    certs_dir: str
    base_dsn: str
    database_prefix: str
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    config: FloorConfig | None = None

    @property
    def mode_file(self) -> Path:
        return self.work_dir / "floor.mode"

    @property
    def databases(self) -> dict[str, str]:
        regions = sorted(load_regions())
        parties = ["clearinghouse", *(f"{kind}_{region}" for region in regions for kind in ("treating", "insured"))]
        return {party: f"{self.database_prefix}_floor_{party}" for party in parties}

    async def create_databases(self) -> None:
        await asyncio.gather(*(ensure_database(self.base_dsn, name) for name in self.databases.values()))

    async def start(self) -> dict[str, str]:
        """Start every process (mode `empty`) and wait until each is healthy; returns the treating agencies'
        addresses."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.mode_file.write_text("empty", encoding="utf-8")
        await self.create_databases()  # idempotent: usually made while the stack was seeded
        roles = ["clearinghouse", *(f"region:{region}" for region in sorted(load_regions()))]
        self.config = FloorConfig(self.certs_dir, str(self.mode_file), {role: free_port() for role in roles},
                                  {party: dsn_for(self.base_dsn, name) for party, name in self.databases.items()})
        config_path = self.work_dir / "floor.json"
        self.config.save(config_path)
        for role in roles:
            with (self.work_dir / f"floor-{role.replace(':', '_')}.log").open("ab") as log_file:
                self.processes[role] = subprocess.Popen(
                    [sys.executable, "-m", "services.loadtest.floor", role, "--config", str(config_path)],
                    stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        await asyncio.gather(*(self.wait_healthy(role) for role in roles))
        return {role.removeprefix("region:"): self.config.address(role) for role in roles if role != "clearinghouse"}

    async def set_mode(self, mode: str) -> None:
        """Every process writes rows (`rows`) or not (`empty`) from now on: each has re-read the file on return."""
        assert mode in MODES
        temporary = self.mode_file.with_suffix(".tmp")
        temporary.write_text(mode, encoding="utf-8")
        temporary.replace(self.mode_file)  # never read half written
        await asyncio.sleep(4 * MODE_CHECK_S)

    async def wait_healthy(self, role: str) -> None:
        assert self.config is not None
        async with transport_for(self.certs_dir).channel(self.config.address(role), operator_identity()) as channel:
            await wait_until_serving(channel, self.processes[role], f"floor {role}", str(self.work_dir), HEALTH_WAIT_S)

    def stop(self) -> None:
        """SIGTERM every process, SIGKILL what is left after STOP_WAIT_S."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    async def drop_databases(self) -> None:
        connection = await asyncpg.connect(self.base_dsn)
        try:
            for name in self.databases.values():
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


if __name__ == "__main__":
    main()
