"""Recording the `grpc_server_*` and `grpc_client_*` series (services/common/metrics.py) cheaply: the label
children of one method as one party sees it are looked up once and kept (`Meter`), so a call costs a dict look-up,
two increments and one observation — no label strings built per call.

Server side: the `rpc`/`rpc_stream` decorators (services/common/errors.py) take `server_meter(servicer, method,
kind)` and end it with the code the caller gets. Client side: `client_interceptors(party)`, the interceptors every
party's channel has (`Security.channel`, services/security/party.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
from prometheus_client import Counter, Histogram

from services.common.metrics import (
    CLIENT_HANDLED, CLIENT_SECONDS, CLIENT_STARTED, SERVER_HANDLED, SERVER_SECONDS, SERVER_STARTED, THROTTLED, Party,
)

UNARY = "unary"
SERVER_STREAM = "server_stream"
BIDI_STREAM = "bidi_stream"  # the batch streams (services/common/batching.py): one call for the stream's life


class Meter:
    """The series of one method (`grpc_type`, `grpc_service`, `grpc_method`) as one party serves or calls it."""

    __slots__ = ("labels", "party", "started", "seconds", "handled", "codes", "limits")

    def __init__(self, labels: tuple[str, ...], party: Party, started: Counter, handled: Counter,
                 seconds: Histogram) -> None:
        self.labels = labels
        self.party = party
        self.started = started.labels(*labels)
        self.seconds = seconds.labels(*labels)
        self.handled = handled
        self.codes: dict[str, Any] = {}  # status name → its `handled` child, made on the code's first use
        self.limits: dict[str, Any] = {}  # limit kind → its THROTTLED child (a flood is refused call by call)

    def start(self) -> float:
        """Count the call started; returns its start time for `end`."""
        self.started.inc()
        return time.perf_counter()

    def end(self, began: float, code: str) -> None:
        """Count the call handled with status `code` (a `grpc.StatusCode` name) and observe its duration."""
        self.seconds.observe(time.perf_counter() - began)
        child = self.codes.get(code)
        if child is None:
            child = self.codes[code] = self.handled.labels(*self.labels, code)
        child.inc()

    def throttled(self, limit: str) -> None:
        """Count a call refused for the caller's `limit` (`rate`, `concurrency`)."""
        child = self.limits.get(limit)
        if child is None:
            child = self.limits[limit] = THROTTLED.labels(self.party.party, self.party.region, limit)
        child.inc()


# ---------------------------------------------------------------------------------------------
# Server side
# ---------------------------------------------------------------------------------------------
_SERVICES: dict[type, str] = {}
_SERVER_METERS: dict[tuple[type, str, str], Meter] = {}


def full_service_name(servicer: Any) -> str:  # noqa: ANN401
    """`clearinghouse.v1.TreatingAgencyService` for a servicer of a generated `…ServiceServicer` base class (the
    proto package is the generated module's package: buf's PACKAGE_DIRECTORY_MATCH); a class's own `SERVICE_NAME`
    (a test's service) as it is."""
    kind = type(servicer)
    name = _SERVICES.get(kind)
    if name is None:
        name = getattr(kind, "SERVICE_NAME", None)
        if not name:
            bases = [base for base in kind.__mro__
                     if base.__module__.endswith("_pb2_grpc") and base.__name__.endswith("ServiceServicer")]
            assert len(bases) == 1, f"{kind.__name__} derives from no generated servicer base class"
            name = f"{bases[0].__module__.rpartition('.')[0]}.{bases[0].__name__.removesuffix('Servicer')}"
        _SERVICES[kind] = name
    return name


def server_meter(servicer: Any, method: str, kind: str) -> Meter:  # noqa: ANN401
    """The meter of `servicer`'s `method`; its party and region are those of the servicer's operator audit log
    (`treating:440100`). Keyed by that label, not by the servicer object, so a servicer of a stopped stack leaves
    nothing behind that a new one could be mistaken for."""
    label = servicer.audit_log.party if getattr(servicer, "audit_log", None) is not None else ""
    key = (type(servicer), label, method)
    meter = _SERVER_METERS.get(key)
    if meter is None:
        party = Party.of(label)
        meter = _SERVER_METERS[key] = Meter((kind, full_service_name(servicer), method, party.party, party.region),
                                            party, SERVER_STARTED, SERVER_HANDLED, SERVER_SECONDS)
    return meter


# ---------------------------------------------------------------------------------------------
# Client side
# ---------------------------------------------------------------------------------------------
class ClientMeters:
    """The meters of the calls a party makes on one channel, one per method (the two interceptors share them; the
    series themselves are the party's, whichever channel counts them)."""

    def __init__(self, party: Party) -> None:
        self.party = party
        self.meters: dict[tuple[str, str | bytes], Meter] = {}

    def meter(self, kind: str, method: str | bytes) -> Meter:
        meter = self.meters.get((kind, method))
        if meter is None:
            text = method.decode() if isinstance(method, bytes) else method
            service, _, name = text.lstrip("/").rpartition("/")
            meter = self.meters[(kind, method)] = Meter((kind, service, name, self.party.party, self.party.region),
                                                        self.party, CLIENT_STARTED, CLIENT_HANDLED, CLIENT_SECONDS)
        return meter


class UnaryClientMetrics(grpc.aio.UnaryUnaryClientInterceptor):
    """Counts and times every unary call a party makes, by the status code it gets back: a neighbour's refusal and a
    neighbour that cannot be reached (UNAVAILABLE, DEADLINE_EXCEEDED) are told apart here, before the caller passes
    the code on."""

    def __init__(self, meters: ClientMeters) -> None:
        self.meters = meters

    async def intercept_unary_unary(self, continuation, client_call_details, request):  # noqa: ANN001, ANN201
        meter = self.meters.meter(UNARY, client_call_details.method)
        began = meter.start()
        call = await continuation(client_call_details, request)
        try:
            await call  # the answer is kept: the caller's own `await` gets it (or the error) again
        except grpc.aio.AioRpcError as error:
            meter.end(began, error.code().name)
        except asyncio.CancelledError:
            meter.end(began, "CANCELLED")
            raise  # the caller's task was cancelled: cancelling the call goes on
        else:
            meter.end(began, "OK")
        return call


class StreamClientMetrics(grpc.aio.UnaryStreamClientInterceptor):
    """The same for server-streaming calls, counted when the stream ends (however it ends: read to the end, failed
    or cancelled by the caller)."""

    def __init__(self, meters: ClientMeters) -> None:
        self.meters = meters
        self.pending: set[asyncio.Task] = set()  # stream outcomes being read (a task is kept until it has run)

    async def intercept_unary_stream(self, continuation, client_call_details, request):  # noqa: ANN001, ANN201
        meter = self.meters.meter(SERVER_STREAM, client_call_details.method)
        began = meter.start()
        call = await continuation(client_call_details, request)

        async def record(done: Any) -> None:  # noqa: ANN401
            code = await done.code()
            meter.end(began, code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN")

        def ended(done: Any) -> None:  # noqa: ANN401 - a call's status is read by a coroutine only
            task = asyncio.get_running_loop().create_task(record(done))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

        call.add_done_callback(ended)
        return call


def client_interceptors(party: Party) -> list[grpc.aio.ClientInterceptor]:
    """The interceptors of a channel `party` dials its neighbours on. Two objects: a channel files an interceptor under
    the first kind it is an instance of only (grpc.aio `Channel.__init__`), so one object of both kinds would never
    see a stream."""
    meters = ClientMeters(party)
    return [UnaryClientMetrics(meters), StreamClientMetrics(meters)]
