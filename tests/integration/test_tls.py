"""Mutual TLS on real grpc.aio servers over loopback, with certificates made by services/security/certs.py.

The server is the real health service plus a tiny echo handler that answers the caller's identity as
`check_peer` reads it. Every refusal is checked against a valid client on the same server, and for the ones
the handshake must refuse, that the handler never ran.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from clearing.errors import DomainError
from services.common.errors import abort_for
from services.security.caller import authenticate
from services.security import certs
from services.security.certs import CertDir
from services.security.identity import Identity, agency, clearinghouse, hospital, peer_identity
from services.security.party import Security
from services.security.tls import DenyList, channel_credentials, check_peer, server_credentials

SERVER = agency("440100")
CLIENT = hospital("H44010000001")
OTHER_CLIENT = clearinghouse()
ECHO = "/clearinghouse.test.Echo/Who"
CALL_TIMEOUT_S = 5.0
# A new subchannel per channel: gRPC may otherwise share one connection between channels to one target with
# the same arguments, and a test about what a *new connection* sees would reuse an old one.
CHANNEL_OPTIONS = (("grpc.use_local_subchannel_pool", 1),)


class Echo:
    """Answers the caller's identity, certificate serial and auth_context property names."""

    def __init__(self, directory: Path, deny_list: DenyList) -> None:
        self.deny_list = deny_list
        self.security = Security(SERVER, directory, deny_list)  # the `rpc` decorator authenticates with it too
        self.calls = 0

    async def Who(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # noqa: N802 - gRPC's name
        # Authenticated as the `rpc` decorators do (not authorised: Echo is no service of the table).
        try:
            authenticate(self.security, context)
        except DomainError as error:
            await abort_for(error, context)
        self.calls += 1
        identity = check_peer(context, self.deny_list)
        properties = context.auth_context()
        return json.dumps({
            "identity": identity.spiffe_id, "serial": peer_identity(context).serial,
            "auth_context": {key: [value.decode() for value in values] for key, values in properties.items()
                             if key != "x509_pem_cert"},
            "has_pem": bool(properties.get("x509_pem_cert")),
        }).encode()


@dataclass
class Server:
    directory: Path
    server: grpc.aio.Server
    port: int
    echo: Echo
    insecure_port: int = 0
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def channel(self, credentials: grpc.ChannelCredentials, address: str | None = None) -> grpc.aio.Channel:
        channel = grpc.aio.secure_channel(address or self.address, credentials, options=CHANNEL_OPTIONS)
        self.channels.append(channel)
        return channel

    def client(self, identity: Identity) -> grpc.aio.Channel:
        return self.channel(channel_credentials(self.directory, identity))


async def who(channel: grpc.aio.Channel) -> dict:
    answer = await channel.unary_unary(ECHO)(b"", timeout=CALL_TIMEOUT_S)
    return json.loads(answer)


async def health(channel: grpc.aio.Channel) -> int:
    answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT_S)
    return answer.status


@pytest.fixture
def cert_dir(tmp_path: Path) -> Path:
    certs.init(tmp_path / "certs", ["440100"], ["H44010000001"], ["admin"])
    return tmp_path / "certs"


@pytest.fixture
async def server(cert_dir: Path):
    deny_list = DenyList.of(cert_dir)
    echo = Echo(cert_dir, deny_list)
    grpc_server = grpc.aio.server()
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
    grpc_server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "clearinghouse.test.Echo", {"Who": grpc.unary_unary_rpc_method_handler(echo.Who)})])
    port = grpc_server.add_secure_port("127.0.0.1:0", server_credentials(cert_dir, SERVER))
    insecure_port = grpc_server.add_insecure_port("127.0.0.1:0")  # only to show check_peer refusing plaintext
    await grpc_server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    running = Server(cert_dir, grpc_server, port, echo, insecure_port)
    try:
        yield running
    finally:
        for channel in running.channels:
            await channel.close()
        await grpc_server.stop(None)


def presented_serial(port: int, directory: Path, client: Identity) -> int:
    """The serial of the certificate the server presents on a new connection, read with `ssl` (blocking: run it
    in a thread, the server shares this event loop). The handshake verifies it against the CA and 127.0.0.1."""
    paths = CertDir(directory)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(paths.ca_cert))
    context.load_cert_chain(paths.cert(client), paths.key(client))
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=CALL_TIMEOUT_S) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).serial_number


def serial_on_disk(directory: Path, identity: Identity) -> int:
    return certs.load_certificate(CertDir(directory).cert(identity)).serial_number


async def assert_refused_at_handshake(server: Server, channel: grpc.aio.Channel) -> None:
    calls_before = server.echo.calls
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await who(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await health(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value
    assert server.echo.calls == calls_before  # the handler never ran
    # the same server still serves a valid client
    assert (await who(server.client(CLIENT)))["identity"] == CLIENT.spiffe_id


# ---------------------------------------------------------------------------------------------
# A valid client, and what gRPC tells the server about it
# ---------------------------------------------------------------------------------------------

async def test_valid_client_is_seen_as_its_identity(server: Server) -> None:
    channel = server.client(CLIENT)
    assert await health(channel) == health_pb2.HealthCheckResponse.SERVING
    answer = await who(channel)
    assert answer["identity"] == "spiffe://clearing.local/hospital/H44010000001"
    assert answer["serial"] == serial_on_disk(server.directory, CLIENT)
    assert (await who(server.client(OTHER_CLIENT)))["identity"] == "spiffe://clearing.local/clearinghouse"


async def test_localhost_is_a_name_the_server_certificate_carries(server: Server) -> None:
    channel = server.channel(channel_credentials(server.directory, CLIENT), f"localhost:{server.port}")
    assert (await who(channel))["identity"] == CLIENT.spiffe_id


async def test_auth_context_of_a_leaf(server: Server) -> None:
    """Pins what grpc 1.85 puts in auth_context() (the comment in services/security/identity.py)."""
    client_context = (await who(server.client(CLIENT)))["auth_context"]
    assert client_context["transport_security_type"] == ["ssl"]
    assert client_context["security_level"] == ["TSI_PRIVACY_AND_INTEGRITY"]
    assert client_context["peer_spiffe_id"] == [CLIENT.spiffe_id]
    assert client_context["peer_uri"] == [CLIENT.spiffe_id]
    assert client_context["x509_subject_alternative_name"] == [CLIENT.spiffe_id]
    assert client_context["x509_common_name"] == [CLIENT.path]
    assert "peer_dns" not in client_context  # a hospital's certificate names no host
    # a party that also serves carries the hosts it is dialled at; the SPIFFE id is still the one URI
    server_context = (await who(server.client(OTHER_CLIENT)))["auth_context"]
    assert server_context["peer_spiffe_id"] == [OTHER_CLIENT.spiffe_id]
    assert server_context["x509_subject_alternative_name"] == [OTHER_CLIENT.spiffe_id, "localhost", "127.0.0.1", "::1"]
    assert server_context["peer_dns"] == ["localhost"] and server_context["peer_ip"] == ["127.0.0.1", "::1"]


# ---------------------------------------------------------------------------------------------
# Refused at the handshake: UNAVAILABLE, no handler runs
# ---------------------------------------------------------------------------------------------

async def test_client_without_certificate_is_refused_at_handshake(server: Server) -> None:
    ca = CertDir(server.directory).ca_cert.read_bytes()
    await assert_refused_at_handshake(server, server.channel(grpc.ssl_channel_credentials(root_certificates=ca)))


async def test_certificate_from_another_ca_is_refused_at_handshake(server: Server, tmp_path: Path) -> None:
    other = tmp_path / "other"
    certs.init(other, ["440100"], ["H44010000001"], [])
    foreign = CertDir(other)
    # The client trusts our CA (so it accepts the server): only the server's check of the client can refuse.
    credentials = grpc.ssl_channel_credentials(
        root_certificates=CertDir(server.directory).ca_cert.read_bytes(),
        private_key=foreign.key(CLIENT).read_bytes(), certificate_chain=foreign.cert(CLIENT).read_bytes())
    await assert_refused_at_handshake(server, server.channel(credentials))


async def test_expired_certificate_is_refused_at_handshake(server: Server, tmp_path: Path) -> None:
    expired = tmp_path / "expired"
    certs.init(expired, [], [], [])
    # the same CA, a certificate of a valid identity that expired yesterday
    for name in ("ca.pem", "ca.key"):
        (expired / "ca" / name).write_bytes((server.directory / "ca" / name).read_bytes())
    info = certs.issue(expired, CLIENT, days=1, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    assert info.not_after < dt.datetime.now(dt.UTC) and info.problem == "expired"
    await assert_refused_at_handshake(server, server.channel(channel_credentials(expired, CLIENT)))


async def test_client_refuses_a_server_of_another_ca(server: Server, tmp_path: Path) -> None:
    other = tmp_path / "other"
    certs.init(other, [], ["H44010000001"], [])
    await assert_refused_at_handshake(server, server.channel(channel_credentials(other, CLIENT)))


# ---------------------------------------------------------------------------------------------
# Refused after the handshake, by check_peer: UNAUTHENTICATED
# ---------------------------------------------------------------------------------------------

async def test_plaintext_caller_is_unauthenticated(server: Server) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.insecure_port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await who(channel)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "no client certificate" in refused.value.details()


async def test_certificate_of_our_ca_naming_a_foreign_identity_is_unauthenticated(server: Server) -> None:
    paths = CertDir(server.directory)
    ca_key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    ca_cert = certs.load_certificate(paths.ca_cert)
    key = certs.new_key()
    now = dt.datetime.now(dt.UTC)
    foreign = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intruder")]))
               .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.SubjectAlternativeName(
                   [x509.UniformResourceIdentifier("spiffe://other.domain/agency/440100")]), critical=False)
               .sign(ca_key, hashes.SHA256()))
    credentials = grpc.ssl_channel_credentials(
        root_certificates=paths.ca_cert.read_bytes(),
        private_key=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()),
        certificate_chain=foreign.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await who(server.channel(credentials))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "no identity of clearing.local" in refused.value.details()


async def test_revoked_certificate_is_refused_without_restart(server: Server) -> None:
    channel = server.client(CLIENT)
    other = server.client(OTHER_CLIENT)
    assert (await who(channel))["identity"] == CLIENT.spiffe_id
    serial = certs.revoke(server.directory, CLIENT)
    revoked_at = time.monotonic()
    # The same channel (its connection is up: the handshake already passed) is refused within the reload interval.
    while True:
        try:
            await who(channel)
        except grpc.aio.AioRpcError as refused:
            assert refused.code() == grpc.StatusCode.UNAUTHENTICATED, refused
            assert f"{serial:x}" in refused.details() and "revoked" in refused.details()
            break
        assert time.monotonic() - revoked_at < 1.0, "still served a second after it was revoked"
        await asyncio.sleep(0.01)
    # a new connection with it is refused too; another party is not
    with pytest.raises(grpc.aio.AioRpcError) as refused_again:
        await who(server.client(CLIENT))
    assert refused_again.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await who(other))["identity"] == OTHER_CLIENT.spiffe_id
    # a re-issued certificate (new serial) is accepted again
    certs.issue(server.directory, CLIENT)
    assert (await who(server.client(CLIENT)))["identity"] == CLIENT.spiffe_id


# ---------------------------------------------------------------------------------------------
# Rotation without a restart
# ---------------------------------------------------------------------------------------------

async def test_reissued_server_certificate_is_presented_on_the_next_connection(server: Server) -> None:
    directory = server.directory
    old_serial = serial_on_disk(directory, SERVER)
    assert await asyncio.to_thread(presented_serial, server.port, directory, CLIENT) == old_serial
    channel = server.client(CLIENT)
    assert (await who(channel))["identity"] == CLIENT.spiffe_id  # a connection made before the rotation

    new_serial = certs.issue(directory, SERVER).serial
    assert new_serial != old_serial
    assert await asyncio.to_thread(presented_serial, server.port, directory, CLIENT) == new_serial
    assert (await who(server.client(CLIENT)))["identity"] == CLIENT.spiffe_id  # a new gRPC connection verifies it
    assert (await who(channel))["identity"] == CLIENT.spiffe_id  # the old connection carries on


async def test_half_replaced_pair_keeps_the_current_certificate(server: Server) -> None:
    """A server that looks between the rename of a new key and that of its certificate keeps presenting the old
    pair (ServerCertificates checks the pair; grpc core would also refuse a mismatched configuration)."""
    directory = server.directory
    paths = CertDir(directory)
    old_serial = serial_on_disk(directory, SERVER)
    key, certificate = certs.make_leaf(
        serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None),
        certs.load_certificate(paths.ca_cert), SERVER)
    partial = paths.key(SERVER).with_name("new-key.pem")
    partial.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    os.replace(partial, paths.key(SERVER))  # the key is new, the certificate still the old one
    assert await asyncio.to_thread(presented_serial, server.port, directory, CLIENT) == old_serial
    assert (await who(server.client(CLIENT)))["identity"] == CLIENT.spiffe_id
    paths.cert(SERVER).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))  # now the pair matches
    assert await asyncio.to_thread(presented_serial, server.port, directory, CLIENT) == certificate.serial_number


async def test_reissued_client_certificate_is_used_by_new_channels(server: Server) -> None:
    old = await who(server.client(CLIENT))
    new_serial = certs.issue(server.directory, CLIENT).serial
    answer = await who(server.client(CLIENT))
    assert answer["identity"] == CLIENT.spiffe_id
    assert answer["serial"] == new_serial != old["serial"]
