"""Building and running a party's grpc.aio server: mutual TLS, health, reflection, request context, graceful stop.

Every server answers `grpc.health.v1` and serves reflection (v1alpha), so `grpcurl` or
`buf curl` can call it without proto files (SPEC §8), comments included (services/common/descriptors.py). It serves mutual TLS with the party's own certificate
(`Security.server_credentials`): a client without a certificate of the stack's CA fails the handshake, and
health and reflection need nothing beyond it; the servicers' methods also check the caller per call
(services/common/errors.py). Plaintext only when the party's `Security` is insecure, with a warning at start.
Every server receives and sends messages of at most MESSAGE_BYTES_MAX (services/security/party.py).
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.health import Health
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from services.common import clock
from services.common.descriptors import CommentedReflection
from services.security.party import INSECURE_WARNING, MESSAGE_BYTES_MAX, Security

log = structlog.get_logger()
STOP_GRACE_S = 5.0
SERVER_OPTIONS = (
    # Refuse to share a port by accident; scale-out (SPEC §11) turns SO_REUSEPORT on explicitly (`share_port`).
    ("grpc.so_reuseport", 0),
    # A bigger message is RESOURCE_EXHAUSTED from gRPC before any handler runs (see MESSAGE_BYTES_MAX for the size).
    ("grpc.max_receive_message_length", MESSAGE_BYTES_MAX),
    ("grpc.max_send_message_length", MESSAGE_BYTES_MAX),
)


def server_options(share_port: bool) -> tuple[tuple[str, int], ...]:
    """SERVER_OPTIONS, with SO_REUSEPORT on when several processes of one party serve one port (the kernel
    spreads their connections)."""
    if not share_port:
        return SERVER_OPTIONS
    return tuple((name, 1 if name == "grpc.so_reuseport" else value) for name, value in SERVER_OPTIONS)


@dataclass(frozen=True)
class ServiceBinding:
    """A servicer, its generated `add_*_to_server` function and its full service name."""

    servicer: Any
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    full_name: str


class RequestContextInterceptor(grpc.aio.ServerInterceptor):
    """Clear and bind the log context per call: `party`, `rpc`, and a call id."""

    def __init__(self, party: str) -> None:
        self.party = party

    async def intercept_service(self, continuation, handler_call_details):  # noqa: ANN001, ANN201
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            party=self.party, rpc=handler_call_details.method.rsplit("/", 1)[-1], call_id=uuid.uuid4().hex[:12])
        return await continuation(handler_call_details)


async def start_server(bindings: Iterable[ServiceBinding], port: int, party: str, *, security: Security,
                       host: str = "127.0.0.1", share_port: bool = False) -> tuple[grpc.aio.Server, int]:
    """Start a server with the bindings plus health and reflection, serving mutual TLS as `security`'s identity
    (plaintext when it is insecure, with a warning); returns it and the bound port. `share_port`: other processes
    of the same party serve the same port (SO_REUSEPORT)."""
    bindings = list(bindings)
    server = grpc.aio.server(interceptors=[RequestContextInterceptor(party)], options=server_options(share_port))
    health = Health()  # Check, Watch and List
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    for binding in bindings:
        binding.add_to_server(binding.servicer, server)
    names = [binding.full_name for binding in bindings]
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(CommentedReflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]), server)
    credentials = security.server_credentials()
    if credentials is None:
        log.warning("insecure_server", party=party, port=port, warning=INSECURE_WARNING)
        bound_port = server.add_insecure_port(f"{host}:{port}")
    else:
        bound_port = server.add_secure_port(f"{host}:{port}", credentials)
    if bound_port == 0:
        raise OSError(f"could not bind {host}:{port}")
    await server.start()
    for name in ["", *names]:
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("server_started", port=bound_port, services=names, identity=security.identity.spiffe_id,
             tls="plaintext (insecure)" if credentials is None else "mutual TLS")
    shifted = clock.describe()
    if shifted is not None:
        log.warning("clock_shifted", detail=shifted)
    return server, bound_port


async def run_until_stopped(server: grpc.aio.Server, on_stop: Callable[[], Awaitable[None]] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then stop with a grace period and run `on_stop`."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("server_stopping")
    await server.stop(STOP_GRACE_S)
    if on_stop is not None:
        await on_stop()
    log.info("server_stopped")
