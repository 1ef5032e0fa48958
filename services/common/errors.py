"""The one mapping from domain errors to gRPC status with rich details (STYLE: errors → status), and the one
place every call's caller is authenticated.

Servicer methods never call `abort` themselves: they raise `clearing.errors` exceptions and the
`rpc` decorator turns each into its status code and a `google.rpc` detail naming the field.

Before a method's body runs, the decorators authenticate the caller with the servicer's `security`
(services/security/caller.py): with mutual TLS a plaintext caller, a certificate naming no identity of ours
or a revoked one is UNAUTHENTICATED and the body never runs; the caller's identity is `current_caller()` and
the `caller` field of every log line of the call. Then they authorise the call against the table
(services/security/policy.py): PERMISSION_DENIED naming the rule, and again the body never runs.

In between, they take a slot of the caller's per-identity limits (services/security/limits.py): a caller over its
rate or concurrency limit is RESOURCE_EXHAUSTED with a RetryInfo and the body never runs (nor is anything written,
the audit record either); the slot is released when the call (or the stream) ends, however it ends. And every call
of an operator is written to the serving party's operator audit log (services/security/audit_log.py): its row
before it is authorised, its outcome — the code the caller gets — once it has one. A party that cannot write the
row refuses the call UNAVAILABLE. Every servicer must have a `security` and an `audit_log` attribute.

And they count and time every call (`grpc_server_*`, services/common/metrics.py) by the status code the caller gets,
labelled with the serving party and region (from the servicer's `audit_log`).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import grpc
import structlog
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.common.status_text import domain_error_from_status  # noqa: F401 - re-exported
from services.common.rpc_metrics import BIDI_STREAM, SERVER_STREAM, UNARY, full_service_name, server_meter
from services.security.audit_log import AuditUnavailable, OperatorCall, begin_call
from services.security.caller import authenticate, authorise
from services.security.limits import Slot
from clearing.errors import (
    DomainError, InvalidField, NotAllowed, NotFound, OutcomeUnknown, PreconditionFailed, RequestConflict,
    Throttled, Unauthenticated,
)

log = structlog.get_logger()
Response = TypeVar("Response")


def packed(detail: Any) -> any_pb2.Any:
    holder = any_pb2.Any()
    holder.Pack(detail)
    return holder


# A refusal's text may quote the input; the status travels in trailers, which gRPC clients may refuse
# beyond 8 KiB (RESOURCE_EXHAUSTED instead of the refusal), so quoted input is cut short. The text
# travels twice (grpc-message, percent-encoded: up to 12 bytes per character; and the base64 status
# details), so 200 characters stay under 5 KiB whatever they are.
TEXT_CHARS_MAX = 200


def clipped(text: str) -> str:
    return text if len(text) <= TEXT_CHARS_MAX else text[:TEXT_CHARS_MAX] + "…"


def status_for(error: DomainError) -> status_pb2.Status:
    """The `google.rpc.Status` for a domain error, with the detail that names what is wrong."""
    message = clipped(error.message)
    if isinstance(error, InvalidField):
        detail = error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=error.field, description=clipped(error.reason))])
        return status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message, details=[packed(detail)])
    if isinstance(error, RequestConflict):
        detail = error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=error.field, description=clipped(error.reason))])
        return status_pb2.Status(code=code_pb2.ALREADY_EXISTS, message=message, details=[packed(detail)])
    if isinstance(error, NotFound):
        detail = error_details_pb2.ResourceInfo(resource_name=clipped(error.resource_name),
                                                description=clipped(error.reason))
        return status_pb2.Status(code=code_pb2.NOT_FOUND, message=message, details=[packed(detail)])
    if isinstance(error, PreconditionFailed):
        detail = error_details_pb2.PreconditionFailure(violations=[
            error_details_pb2.PreconditionFailure.Violation(type="STATE", subject=error.subject,
                                                            description=clipped(error.reason))])
        return status_pb2.Status(code=code_pb2.FAILED_PRECONDITION, message=message, details=[packed(detail)])
    if isinstance(error, NotAllowed):
        metadata = {"identity": clipped(error.identity), "action": clipped(error.action)}
        if error.rule:
            metadata["rule"] = error.rule
        detail = error_details_pb2.ErrorInfo(reason="NOT_ALLOWED", domain="clearinghouse", metadata=metadata)
        return status_pb2.Status(code=code_pb2.PERMISSION_DENIED, message=message, details=[packed(detail)])
    if isinstance(error, Unauthenticated):
        detail = error_details_pb2.ErrorInfo(reason="UNAUTHENTICATED", domain="clearinghouse",
                                             metadata={"reason": clipped(error.reason)})
        return status_pb2.Status(code=code_pb2.UNAUTHENTICATED, message=message, details=[packed(detail)])
    if isinstance(error, Throttled):
        retry = error_details_pb2.RetryInfo(retry_delay=duration(error.retry_after_ms))
        quota = error_details_pb2.QuotaFailure(violations=[error_details_pb2.QuotaFailure.Violation(
            subject=error.identity, description=f"{error.kind} limit: {error.limit}", quota_id=error.kind)])
        return status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=message,
                                 details=[packed(retry), packed(quota)])
    if isinstance(error, OutcomeUnknown):
        detail = error_details_pb2.ErrorInfo(reason="OUTCOME_UNKNOWN", domain="clearinghouse",
                                             metadata={"subject": error.subject})
        return status_pb2.Status(code=code_pb2.ABORTED, message=message, details=[packed(detail)])
    raise AssertionError(f"unmapped domain error {type(error).__name__}")


def duration(millis: int) -> duration_pb2.Duration:
    """A `google.protobuf.Duration` of `millis` milliseconds."""
    return duration_pb2.Duration(seconds=millis // 1000, nanos=(millis % 1000) * 1_000_000)


# RESOURCE_EXHAUSTED is not definite: gRPC also answers it when a *response* is too big for the caller, after the
# server did the work; a throttled caller retries after the RetryInfo delay with the same request id instead.
DEFINITE_CODES = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.OUT_OF_RANGE,
})


class StoredRefusal(Exception):
    """A downstream refusal recorded earlier under a request id, replayed to a retry as it was."""

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status


def is_definite(error: grpc.aio.AioRpcError) -> bool:
    """True when a downstream answer means "refused, nothing recorded there"; False for timeouts and outages,
    where the downstream party may or may not have recorded the request, and for ALREADY_EXISTS: the downstream
    party holds *other* content under this id, so something is recorded there (`downstream_conflict`)."""
    return error.code() in DEFINITE_CODES and error.code() is not grpc.StatusCode.ALREADY_EXISTS


def downstream_conflict(error: grpc.aio.AioRpcError, subject: str) -> OutcomeUnknown | None:
    """The error to answer with when a downstream party says ALREADY_EXISTS for a settlement id this party
    sent it: the outcome is unknown (ABORTED), the row stays pending for a reversal or reconciliation."""
    if error.code() is not grpc.StatusCode.ALREADY_EXISTS:
        return None
    log.warning("downstream_conflict", subject=subject, error=error.details())
    return OutcomeUnknown(subject, "the next party holds different content under this settlement id; the "
                                   "settlement stays pending: reverse it (冲正 2601) or leave it to reconciliation")


def refusal_status(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The full `google.rpc.Status` of a downstream refusal, to store and replay."""
    status = rpc_status.from_call(error)
    if status is None:
        status = status_pb2.Status(code=error.code().value[0], message=error.details() or "")
    return status


def downstream_timeout_s(context: grpc.aio.ServicerContext, default_s: float = 10.0) -> float:
    """Propagate the caller's deadline downstream (SPEC §8); a call without one gets `default_s`."""
    remaining = context.time_remaining()
    return default_s if remaining is None else max(0.001, min(remaining, default_s))


async def abort_for(error: BaseException, context: grpc.aio.ServicerContext) -> None:
    """Abort the call with the status that `error` deserves; never returns."""
    if isinstance(error, StoredRefusal):
        await context.abort_with_status(rpc_status.to_status(error.status))
    if isinstance(error, Throttled):
        # Logged by the limiter once per caller per window, not per call: a flood must not become a log flood
        # (counted in the decorators' metrics instead).
        await context.abort_with_status(rpc_status.to_status(status_for(error)))
    if isinstance(error, DomainError):
        log.info("request_refused", error=error.message, kind=type(error).__name__)
        await context.abort_with_status(rpc_status.to_status(status_for(error)))
    if isinstance(error, grpc.aio.AioRpcError):
        # A downstream party's answer passes on with its own code and detail.
        log.info("downstream_refused", code=error.code().name, error=error.details())
        status = rpc_status.from_call(error)
        if status is not None:
            await context.abort_with_status(rpc_status.to_status(status))
        await context.abort(error.code(), error.details() or "")
    if isinstance(error, AuditUnavailable):
        await context.abort(grpc.StatusCode.UNAVAILABLE, AUDIT_UNAVAILABLE)
    if isinstance(error, (asyncpg.TooManyConnectionsError, asyncpg.CannotConnectNowError, ConnectionError, OSError)):
        log.warning("database_unavailable", error=str(error))
        await context.abort(grpc.StatusCode.UNAVAILABLE, "database unavailable, retry the request")
    if isinstance(error, (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)):
        log.warning("transaction_aborted", error=str(error))
        await context.abort(grpc.StatusCode.ABORTED, "concurrent update, retry the request")
    log.error("internal_error", exc_info=error)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")


AUDIT_UNAVAILABLE = "the operator audit log cannot be written: the call is refused and nothing was done; retry"


def outcome_of(error: BaseException, context: grpc.aio.ServicerContext) -> tuple[str, str]:
    """The status code name and message the caller gets for `error` (what `abort_for` sends), for the audit log."""
    if isinstance(error, StoredRefusal):
        return code_pb2.Code.Name(error.status.code), error.status.message
    if isinstance(error, DomainError):
        status = status_for(error)
        return code_pb2.Code.Name(status.code), status.message
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code().name, error.details() or ""
    if isinstance(error, grpc.aio.AbortError):  # the body aborted itself: the code is on the context
        code = context.code()
        return (code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"), context.details() or ""
    if isinstance(error, AuditUnavailable):
        return "UNAVAILABLE", AUDIT_UNAVAILABLE
    if isinstance(error, (asyncpg.TooManyConnectionsError, asyncpg.CannotConnectNowError, ConnectionError, OSError)):
        return "UNAVAILABLE", "database unavailable, retry the request"
    if isinstance(error, (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)):
        return "ABORTED", "concurrent update, retry the request"
    return "INTERNAL", "internal error"


def code_of(error: BaseException, context: grpc.aio.ServicerContext) -> str:
    """The status code name the caller gets for a call that `error` ended (for the metrics): CANCELLED when the
    call ended without one (the client went away), else what `abort_for` sends or the body aborted with."""
    return outcome_of(error, context)[0] if isinstance(error, Exception) else "CANCELLED"


async def end_call(call: OperatorCall | None, error: BaseException | None, context: grpc.aio.ServicerContext) -> None:
    """Write an operator call's outcome: OK, the code `error` gets, or CANCELLED when the call ended without either
    (the client went away: asyncio cancelled the handler)."""
    if call is None:
        return
    if error is None:
        await call.end("OK", "")
    elif isinstance(error, Exception):
        await call.end(*outcome_of(error, context))
    else:
        await call.end("CANCELLED", "the call was cancelled before it ended")


_SERVICE_NAMES: dict[type, str] = {}


def service_name(servicer: Any) -> str:  # noqa: ANN401
    """`TreatingAgencyService` for a servicer of the generated `TreatingAgencyServiceServicer` base class (or the
    class's own `SERVICE_NAME`: a service that is not in the protos, e.g. a test's)."""
    kind = type(servicer)
    if kind not in _SERVICE_NAMES:
        _SERVICE_NAMES[kind] = full_service_name(servicer).rpartition(".")[2]
    return _SERVICE_NAMES[kind]


@dataclass
class Admission:
    """What a call took on its way in, to give back when it ends: its slot of the caller's limits, and its operator
    audit record whose outcome is still to write."""

    slot: Slot | None = None
    audit: OperatorCall | None = None

    async def end(self, ended: BaseException | None, context: grpc.aio.ServicerContext) -> None:
        try:
            await end_call(self.audit, ended, context)
            self.audit = None
        finally:
            if self.slot is not None:
                self.slot.release()  # on success, error and cancellation alike
                self.slot = None


async def admit_call(servicer: Any, method: str, request: Any, context: grpc.aio.ServicerContext,  # noqa: ANN401
                     admission: Admission) -> None:
    """Before the method's body runs (raises to refuse): authenticate the caller, take a slot of its limits, record
    an operator's call in the serving party's audit log — before the table decides, so that a refusal by the table
    is recorded with its outcome too — and authorise the call. What it took is in `admission`."""
    caller = authenticate(servicer.security, context)
    rpc_name = f"{service_name(servicer)}.{method}"
    admission.slot = servicer.security.limiter.admit(caller, rpc_name)
    admission.audit = await begin_call(servicer.audit_log, caller, rpc_name, request)
    authorise(servicer.security, caller, rpc_name, request)


def rpc(method: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """Decorate a unary servicer method: domain errors become statuses, anything else INTERNAL."""

    name = method.__name__

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Response:
        meter = server_meter(self, name, UNARY)
        began = meter.start()
        code = "OK"
        admission = Admission()
        ended: BaseException | None = None  # what ended the call (None: it answered)
        try:
            await admit_call(self, name, request, context, admission)
            return await method(self, request, context)
        except BaseException as error:  # noqa: BLE001 - every error gets a status
            ended = error
            code = code_of(error, context)
            if not isinstance(error, Exception):
                raise  # cancelled: the client went away
            if isinstance(error, grpc.aio.AbortError):
                raise
            if isinstance(error, Throttled):
                meter.throttled(error.kind)
            await end_call(admission.audit, error, context)
            admission.audit = None  # recorded before the abort, which raises
            await abort_for(error, context)
            raise AssertionError("abort returned") from error
        finally:
            await admission.end(ended, context)
            meter.end(began, code)

    return wrapper


def rpc_stream(method: Callable[..., AsyncIterator[Response]]) -> Callable[..., AsyncIterator[Response]]:
    """Decorate a server-streaming servicer method with the same mapping."""

    name = method.__name__

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Response]:
        # aclosing: a client that goes away closes this generator at its yield; the inner one must be closed with
        # it, at once (its `finally` gives back the caller's slot), not whenever it is collected.
        async with contextlib.aclosing(served_stream(self, name, SERVER_STREAM, request, context,
                                                     method(self, request, context))) as items:
            async for item in items:
                yield item

    return wrapper


def rpc_bidi(request_class: type) -> Callable[[Callable[..., AsyncIterator[Response]]],
                                             Callable[..., AsyncIterator[Response]]]:
    """Decorate a bidirectional-streaming servicer method (a batch stream, services/common/batching.py) with the same
    admission and mapping as `rpc_stream`; the method returns the stream's answers (an async iterator, closed with the
    call: nothing may touch the call once it ends). The stream is admitted as a whole, before any message is read, on an empty
    `request_class` message: its row may not have request rules (each batch's claims are authorised one by one by
    the method, as their own unary RPC would be)."""

    def decorate(method: Callable[..., AsyncIterator[Response]]) -> Callable[..., AsyncIterator[Response]]:
        name = method.__name__

        @functools.wraps(method)
        async def wrapper(self: Any, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext,
                          ) -> AsyncIterator[Response]:
            async with contextlib.aclosing(served_stream(self, name, BIDI_STREAM, request_class(), context,
                                                         method(self, requests, context))) as items:
                async for item in items:
                    yield item

        return wrapper

    return decorate


async def served_stream(servicer: Any, name: str, kind: str, request: Any,  # noqa: ANN401
                        context: grpc.aio.ServicerContext, items: AsyncIterator[Response]) -> AsyncIterator[Response]:
    """A streaming method's answers (`items`, not started until the call is admitted on `request`), with the
    admission, metrics and error mapping every streaming call gets."""
    meter = server_meter(servicer, name, kind)
    began = meter.start()
    code = "OK"
    admission = Admission()
    ended: BaseException | None = None  # what ended the stream (None: it ran to its end)
    try:
        await admit_call(servicer, name, request, context, admission)
        async with contextlib.aclosing(items):  # closed with this one, at once (see rpc_stream)
            async for item in items:
                yield item
    except BaseException as error:  # noqa: BLE001 - every error gets a status
        ended = error
        code = code_of(error, context)
        if not isinstance(error, Exception) or isinstance(error, grpc.aio.AbortError):
            raise  # cancelled, or the client stopped reading (GeneratorExit); or already aborted
        if isinstance(error, Throttled):
            meter.throttled(error.kind)
        await end_call(admission.audit, error, context)
        admission.audit = None  # recorded before the abort, which raises
        await abort_for(error, context)
    finally:
        await admission.end(ended, context)
        meter.end(began, code)
