"""Mutual TLS wired into every party of the running stack (SPEC §9, docs/security.md "How every party is wired").

Every party of the in-process stack — the clearing house, each region's process (treating and insured agency),
the HIS simulator — refuses at the TLS handshake a client that speaks plaintext, sends no certificate, a
certificate of another CA or an expired one: the client sees UNAVAILABLE and no row changes anywhere (counted
before and after, as tests/integration/test_bad_input.py does). A revoked hospital certificate completes the
handshake but is refused UNAUTHENTICATED at its treating agency, without a restart, on a connection that was
already open. Every server knows who called: the log lines of a Settle name the hospital, those of the claim
it makes the treating agency, those of the adjudication the clearing house. `--insecure` warns at start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import structlog
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import clearing_house_pb2_grpc, hospital_pb2, hospital_pb2_grpc, insured_agency_pb2_grpc
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import treating_agency_pb2_grpc, types_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.errors import rpc
from services.common.server import ServiceBinding, start_server
from services.security import certs
from services.security.caller import current_caller
from services.security.certs import CertDir, format_serial
from services.security import policy
from services.security.audit_log import AuditLog
from services.security.identity import CLEARINGHOUSE, HOSPITAL, Identity, agency, clearinghouse, hospital, operator
from services.security.identity import OPERATOR as OPERATOR_ROLE
from services.security.party import Transport
from services.stack.wiring import channel_to

TREATING, INSURED = "440100", "610924"
H_GUANGZHOU = "H44010000001"
OPERATOR = operator("admin")
DAY = "2026-03-02"
CALL_TIMEOUT_S = 5.0
# A connection of its own per channel: a refused client must not ride on a connection another channel opened.
OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)

Call = Callable[[grpc.aio.Channel], Awaitable[Any]]


# The member every admission here is of: Admit checks the patient with the insured agency (VerifyMember), so it
# must be enrolled (registered once per module by the `patient` fixture).
PATIENT: list[Any] = []


@pytest.fixture(autouse=True)
async def patient(kit):  # noqa: ANN001, ANN201
    if not PATIENT:
        PATIENT.append(await kit.new_member(INSURED))


def admit(channel: grpc.aio.Channel) -> Awaitable[Any]:
    member = PATIENT[0]
    return treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel).Admit(ta.AdmitRequest(
        request_id=str(uuid.uuid4()), hospital_code=H_GUANGZHOU, admitted_on=DAY, diagnoses=["J18.9"],
        patient=ta.Patient(insured_region=INSURED, member_id=member.member_id, id_number=member.id_number,
                           name=member.name)), timeout=CALL_TIMEOUT_S)


def register(channel: grpc.aio.Channel) -> Awaitable[Any]:
    return insured_agency_pb2_grpc.InsuredAgencyServiceStub(channel).RegisterMember(ia.RegisterMemberRequest(
        request_id=str(uuid.uuid4()), member=ia.Member(
            member_id=f"T{TREATING}{uuid.uuid4().hex[:12].upper()}", id_number="440100198001011234", name="测试",
            scheme=types_pb2.SCHEME_EMPLOYEE, assistance=types_pb2.ASSISTANCE_TIER_NONE)), timeout=CALL_TIMEOUT_S)


def top_up(channel: grpc.aio.Channel) -> Awaitable[Any]:
    return clearing_house_pb2_grpc.ClearingHouseServiceStub(channel).TopUpPrepayment(ch.TopUpPrepaymentRequest(
        request_id=str(uuid.uuid4()), insured_region=INSURED, amount_fen=100), timeout=CALL_TIMEOUT_S)


async def run_discharges(channel: grpc.aio.Channel) -> list[Any]:
    stream = hospital_pb2_grpc.HospitalServiceStub(channel).RunDischarges(hospital_pb2.RunDischargesRequest(
        request_id=str(uuid.uuid4()), count=1, seed=3, month="2026-03"), timeout=CALL_TIMEOUT_S)
    return [item async for item in stream]


# party → (who calls it legitimately, a call that writes, the databases it could write to)
PARTIES: dict[str, tuple[Identity, Call, tuple[str, ...]]] = {
    "treating agency": (hospital(H_GUANGZHOU), admit, (f"treating_{TREATING}",)),
    "insured agency": (OPERATOR, register, (f"insured_{TREATING}",)),
    "clearing house": (OPERATOR, top_up, ("clearinghouse",)),
    "HIS simulator": (OPERATOR, run_discharges, ("his", f"treating_{TREATING}")),
}


def address_of(stack: Any, party: str) -> str:  # noqa: ANN401
    if party == "clearing house":
        return f"127.0.0.1:{stack.clearing_house.port}"
    if party == "HIS simulator":
        return f"127.0.0.1:{stack.his.port}"
    return stack.address(TREATING)


def foreign_certificate(directory: Path, identity: Identity) -> tuple[bytes, bytes]:
    """(key, certificate) of `identity` issued by a CA of its own in `directory`."""
    regions = [identity.subject] if identity.role == "agency" else []
    hospitals = [identity.subject] if identity.role == "hospital" else []
    operators = [identity.subject] if identity.role == "operator" else []
    certs.init(directory, regions, hospitals, operators)
    paths = CertDir(directory)
    return paths.key(identity).read_bytes(), paths.cert(identity).read_bytes()


def expired_certificate(stack: Any, directory: Path, identity: Identity) -> tuple[bytes, bytes]:  # noqa: ANN401
    """(key, certificate) of `identity` from the stack's own CA that expired yesterday."""
    stack.transport_for(directory)
    info = certs.issue(directory, identity, days=1, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    assert info.problem == "expired"
    paths = CertDir(directory)
    return paths.key(identity).read_bytes(), paths.cert(identity).read_bytes()


def bad_channel(stack: Any, kind: str, address: str, identity: Identity, tmp_path: Path) -> grpc.aio.Channel:  # noqa: ANN401
    """A client the handshake must refuse. It trusts the stack's CA, so only the server's check of it refuses."""
    ca = CertDir(stack.certs_dir).ca_cert.read_bytes()
    if kind == "plaintext":
        return grpc.aio.insecure_channel(address, options=OWN_CONNECTION)
    if kind == "no certificate":
        return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=ca),
                                       options=OWN_CONNECTION)
    key, certificate = (foreign_certificate(tmp_path / "other-ca", identity) if kind == "another CA"
                        else expired_certificate(stack, tmp_path / "expired", identity))
    credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=certificate)
    return grpc.aio.secure_channel(address, credentials, options=OWN_CONNECTION)


@pytest.mark.parametrize("kind", ["plaintext", "no certificate", "another CA", "expired"])
@pytest.mark.parametrize("party", list(PARTIES))
async def test_every_party_refuses_a_client_without_a_valid_certificate_at_the_handshake(kit, party, kind, tmp_path):
    identity, call, databases = PARTIES[party]
    address = address_of(kit.stack, party)
    before = await kit.counts(*databases)
    channel = bad_channel(kit.stack, kind, address, identity, tmp_path)
    try:
        for attempt in (call, lambda channel: health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT_S)):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await attempt(channel)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value
    finally:
        await channel.close()
    assert await kit.counts(*databases) == before, "nothing written"
    # the same call with the identity's own valid certificate goes through
    await call(kit.stack.channel_as(identity, address))


async def test_a_revoked_hospital_certificate_is_refused_at_its_treating_agency_without_a_restart(kit, tmp_path):
    """A second certificate of the hospital (the session's own stays valid for the other tests) is accepted, then
    revoked: the deny list is re-read, and the same open connection is refused UNAUTHENTICATED with nothing
    written; the hospital's other certificate still settles."""
    extra = tmp_path / "extra"
    kit.stack.transport_for(extra, hospital(H_GUANGZHOU))
    channel = Transport.tls(extra).channel(kit.stack.address(TREATING), hospital(H_GUANGZHOU), OWN_CONNECTION)
    revoked = CertDir(kit.stack.certs_dir).revoked
    original = revoked.read_text(encoding="utf-8")
    try:
        await admit(channel)  # accepted: the handshake is done, the connection stays open
        serial = certs.load_certificate(CertDir(extra).cert(hospital(H_GUANGZHOU))).serial_number
        replace_text(revoked, original + f"{format_serial(serial)}  # test_mtls_stack: revoked\n")
        revoked_at = time.monotonic()
        while True:
            before = await kit.counts(f"treating_{TREATING}")
            try:
                await admit(channel)
            except grpc.aio.AioRpcError as refused:
                assert refused.code() == grpc.StatusCode.UNAUTHENTICATED, refused
                assert f"{serial:x}" in refused.details() and "revoked" in refused.details()
                assert await kit.counts(f"treating_{TREATING}") == before, "nothing written"
                break
            assert time.monotonic() - revoked_at < 2.0, "still served two seconds after it was revoked"
            await asyncio.sleep(0.02)
        await admit(kit.stack.channel_as(hospital(H_GUANGZHOU), kit.stack.address(TREATING)))
    finally:
        await channel.close()
        replace_text(revoked, original)  # the session's certificate directory outlives the session


def replace_text(path: Path, text: str) -> None:
    """Write by rename, as `certs` does: a server re-reading the deny list never sees half a file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.test")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


async def test_every_server_knows_its_caller_and_logs_it(kit):
    """The caller is authenticated once per call and bound into the log context (`caller`): the Settle's lines
    name the hospital, the claim's the treating agency, the adjudication's the clearing house."""
    member = await kit.new_member(INSURED)
    code = kit.plain_codes(TREATING)[0]
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        settlement = await kit.discharge(H_GUANGZHOU, member, [kit.bill_line("1", code, "1", 10_000, DAY)], DAY,
                                         "2026-03-04")
    assert settlement.settlement_id

    def callers(rpc: str, party: str) -> set[str]:
        # (the deny list logs its re-reads from inside the check, before the caller is known)
        return {entry.get("caller") for entry in logs if entry.get("rpc") == rpc and entry.get("party") == party
                and not entry["event"].startswith("deny_list")}

    assert callers("Settle", f"region:{TREATING}") == {f"hospital/{H_GUANGZHOU}"}
    assert callers("Admit", f"region:{TREATING}") == {f"hospital/{H_GUANGZHOU}"}
    # The claim crosses the next hops in batches (批量): over the treating agency's stream and the clearing house's.
    assert callers("SettleClaimBatch", "clearinghouse") == {f"agency/{TREATING}"}
    assert callers("AdjudicateBatch", f"region:{INSURED}") == {"clearinghouse"}
    assert any(entry.get("event") == "settlement_recorded" and entry.get("caller") == f"hospital/{H_GUANGZHOU}"
               for entry in logs), "the Settle's own log line names who called"


class Who:
    """A servicer method that answers who the decorators say called it (a service of its own, with its own row in
    the authorisation table for the test: any of the roles calling it here)."""

    SERVICE_NAME = "Who"

    def __init__(self, security: Any, audit_log: AuditLog | None) -> None:  # noqa: ANN401
        self.security = security
        self.audit_log = audit_log  # an operator's call is audited (here in the clearing house's database)

    @rpc
    async def call(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        caller = current_caller()
        return (caller.path if caller else "nobody").encode()


async def serve_who(transport: Transport, identity: Identity,
                    audit_log: AuditLog | None = None) -> tuple[grpc.aio.Server, int]:
    who = Who(transport.security(identity), audit_log)

    def add(servicer: Who, server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "clearinghouse.test.Who", {"Call": grpc.unary_unary_rpc_method_handler(servicer.call)})])

    return await start_server([ServiceBinding(who, add, "clearinghouse.test.Who")], 0, "test:who",
                              security=transport.security(identity))


@pytest.fixture(autouse=True)
def who_row(monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setitem(policy.POLICY, "Who.call", policy.Row((
        policy.Grant(HOSPITAL), policy.Grant(CLEARINGHOUSE), policy.Grant(OPERATOR_ROLE))))


async def test_current_caller_is_the_identity_of_the_certificate(kit):
    server, port = await serve_who(kit.stack.transport, agency(TREATING),
                                   AuditLog(kit.stack.clearing_house.servicers["clearinghouse"].pool, "test:who"))
    try:
        for identity in (hospital(H_GUANGZHOU), clearinghouse(), OPERATOR):
            channel = kit.stack.channel_as(identity, f"127.0.0.1:{port}")
            assert await channel.unary_unary("/clearinghouse.test.Who/Call")(b"", timeout=CALL_TIMEOUT_S) \
                == identity.path.encode()
    finally:
        await server.stop(None)


async def test_an_insecure_server_warns_at_start_and_knows_no_caller():
    with structlog.testing.capture_logs() as logs:
        server, port = await serve_who(Transport.plaintext(), agency(TREATING))
    try:
        warnings = [entry for entry in logs if entry["log_level"] == "warning" and entry["event"] == "insecure_server"]
        assert len(warnings) == 1 and "plaintext" in warnings[0]["warning"]
        async with channel_to(f"127.0.0.1:{port}", None) as channel:
            assert await channel.unary_unary("/clearinghouse.test.Who/Call")(b"", timeout=CALL_TIMEOUT_S) == b"nobody"
    finally:
        await server.stop(None)
