"""Settlement batches over long-lived streams (批量结算): the sending half (`StreamBatcher`) and the serving
half (`serve_batches`), with a claim's refusal carried inside a batch (`Refusal`).

A batch stream is bidirectional: the sender writes batches (`batch_id` and `claims`, each the request of the
unary RPC it stands for) and reads one answer per batch (`batch_id` and `outcomes`, each the unary answer or a
`Refusal`, in the order of the claims). To the code that sends a claim, `StreamBatcher.call` looks like the unary
call: it returns the answer or raises the same `grpc.aio.AioRpcError` (a refusal keeps its code, message and
details), so idempotency, definite refusals and "outcome unknown" work claim by claim as before. A claim waits
at most `wait_s` for its batch to fill to `size_max`; a stream that breaks fails every claim it had not answered
with UNAVAILABLE — for the sender exactly a unary call that timed out — and the next batch opens a new stream.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog
from clearinghouse.v1 import types_pb2
from google.rpc import code_pb2, status_pb2

from clearing.errors import DomainError, InvalidField
from services.common.batch_settings import BATCH_CLAIMS_MAX, BatchSettings
from services.common.errors import StoredRefusal, refusal_status, status_for

log = structlog.get_logger()

STATUS_DETAILS_KEY = "grpc-status-details-bin"  # where grpc_status.rpc_status looks for the full status




# -- a claim's refusal inside a batch ---------------------------------------------------------------------------

def check_batch_size(claims: int) -> None:
    if claims > BATCH_CLAIMS_MAX:
        raise InvalidField("claims", f"a batch holds at most {BATCH_CLAIMS_MAX} claims, got {claims}")


def status_of(error: BaseException) -> status_pb2.Status | None:
    """The status a unary call would have answered `error` with, when it is a refusal of the claim itself (a
    domain error, a stored refusal, a downstream party's status); None for anything else (a bug, a lost database),
    which is not the claim's answer."""
    if isinstance(error, StoredRefusal):
        return error.status
    if isinstance(error, DomainError):
        return status_for(error)
    if isinstance(error, grpc.aio.AioRpcError):
        return refusal_status(error)
    return None


def refusal_for(error: BaseException) -> types_pb2.Refusal:
    """A claim's refusal inside a batch: the status its unary call would have answered with; INTERNAL (logged) for
    a fault that is not the claim's."""
    status = status_of(error)
    if status is None:
        log.error("batch_claim_internal_error", exc_info=error)
        return internal_refusal()
    return refusal(status)


def refusal(status: status_pb2.Status) -> types_pb2.Refusal:
    return types_pb2.Refusal(code=status.code, message=status.message, status=status.SerializeToString())


def internal_refusal() -> types_pb2.Refusal:
    return refusal(status_pb2.Status(code=code_pb2.INTERNAL, message="internal error"))


def error_of(refused: types_pb2.Refusal) -> grpc.aio.AioRpcError:
    """The error the unary call would have raised: same code, message and details (`rpc_status.from_call` reads
    them back, so `refusal_status` stores the same status as for a unary refusal)."""
    code = next((code for code in grpc.StatusCode if code.value[0] == refused.code), grpc.StatusCode.UNKNOWN)
    trailing = grpc.aio.Metadata((STATUS_DETAILS_KEY, refused.status)) if refused.status else grpc.aio.Metadata()
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details=refused.message)


def unavailable(why: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details=why)


def deadline_exceeded() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                details="no answer from the batch stream within the deadline")


# -- the sending half ---------------------------------------------------------------------------------------------

class StreamBatcher:
    """Sends one kind of claim to one server in batches over a long-lived stream.

    `open_stream()` starts the bidirectional call (e.g. `stub.AdjudicateBatch`); `batch_class` is its request
    message (`batch_id`, `claims`). `call(request, timeout)` answers like the unary RPC."""

    def __init__(self, open_stream: Callable[[], Any], batch_class: type, settings: BatchSettings,
                 name: str) -> None:
        self.open_stream = open_stream
        self.batch_class = batch_class
        self.size_max = settings.size_max
        self.wait_s = settings.wait_ms / 1000
        self.name = name  # for logs: what this batcher sends where
        self.waiting: list[tuple[Any, asyncio.Future]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.stream: Any = None
        self.in_flight: dict[int, tuple[Any, list[asyncio.Future]]] = {}  # batch id → (its stream, its claims)
        self.batch_ids = itertools.count(1)
        self.write_lock = asyncio.Lock()  # one write at a time on a stream
        self.tasks: set[asyncio.Task] = set()
        self.closed = False

    async def call(self, request: Any, timeout: float | None = None) -> Any:  # noqa: ANN401
        """The answer to `request`, as the unary call gives it; raises what the unary call would raise."""
        if self.closed:
            raise unavailable(f"{self.name}: closed")
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.waiting.append((request, future))
        if len(self.waiting) >= self.size_max:
            self.flush()
        elif self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.wait_s, self.flush)
        try:
            outcome = await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            raise deadline_exceeded() from None
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def flush(self) -> None:
        """Send what is waiting as one batch (a task of its own: `call` never waits for a write)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.waiting:
            return
        items, self.waiting = self.waiting, []
        self.spawn(self.send(items))

    def spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def send(self, items: list[tuple[Any, asyncio.Future]]) -> None:
        batch_id = next(self.batch_ids)
        futures = [future for _, future in items]
        async with self.write_lock:
            stream = None
            try:
                stream = self.current_stream()
                self.in_flight[batch_id] = (stream, futures)
                await stream.write(self.batch_class(batch_id=batch_id, claims=[request for request, _ in items]))
            except Exception as error:  # noqa: BLE001 - the stream is broken, whatever the reason: retry on a new one
                log.warning("batch_stream_write_failed", batcher=self.name, error=str(error))
                self.in_flight.pop(batch_id, None)
                answer_all(futures, unavailable(f"{self.name}: the batch stream broke before the batch was sent"))
                if stream is not None:
                    self.drop(stream)

    def current_stream(self) -> Any:  # noqa: ANN401
        if self.stream is None:
            self.stream = self.open_stream()
            self.spawn(self.read(self.stream))
        return self.stream

    def drop(self, stream: Any) -> None:  # noqa: ANN401
        """Stop using `stream`: the next batch opens a new one; what it had not answered fails (UNAVAILABLE)."""
        if self.stream is stream:
            self.stream = None
        stream.cancel()
        for batch_id, (sent_on, futures) in list(self.in_flight.items()):
            if sent_on is stream:
                del self.in_flight[batch_id]
                answer_all(futures, unavailable(f"{self.name}: the batch stream broke; the claim's outcome is unknown"))

    async def read(self, stream: Any) -> None:  # noqa: ANN401
        """Hand every answer on `stream` to the claims of its batch, until the stream ends."""
        try:
            async for answer in stream:
                _, futures = self.in_flight.pop(answer.batch_id, (None, None))
                if futures is None:
                    log.error("batch_answer_unknown", batcher=self.name, batch_id=answer.batch_id)
                    continue
                if len(answer.outcomes) != len(futures):
                    log.error("batch_answer_incomplete", batcher=self.name, batch_id=answer.batch_id,
                              claims=len(futures), outcomes=len(answer.outcomes))
                    answer_all(futures, unavailable(f"{self.name}: the batch answer did not match the batch"))
                    continue
                for future, outcome in zip(futures, answer.outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome_value(outcome))
        except (grpc.aio.AioRpcError, asyncio.CancelledError) as error:
            if not self.closed:
                log.warning("batch_stream_ended", batcher=self.name,
                            error=error.code().name if isinstance(error, grpc.aio.AioRpcError) else "cancelled")
        finally:
            self.drop(stream)

    async def close(self) -> None:
        """Stop: the claims waiting or in flight fail with UNAVAILABLE, the stream is closed."""
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        answer_all([future for _, future in self.waiting], unavailable(f"{self.name}: closed"))
        self.waiting = []
        if self.stream is not None:
            self.drop(self.stream)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def outcome_value(outcome: Any) -> Any:  # noqa: ANN401
    """A claim's outcome as `call` returns it: the answer, or the error the unary call would raise."""
    if outcome.WhichOneof("outcome") == "refusal":
        return error_of(outcome.refusal)
    return outcome.answer


def answer_all(futures: list[asyncio.Future], error: BaseException) -> None:
    for future in futures:
        if not future.done():
            future.set_result(error)


# -- the serving half ---------------------------------------------------------------------------------------------

_END = object()


async def serve_batches(batches: AsyncIterator[Any], answer: Callable[[Any], Awaitable[Any]],
                        concurrency: int) -> AsyncIterator[Any]:
    """The answers to the batches read from `batches`, each `await answer(batch)`, up to `concurrency` batches at
    once (a stream's batches overlap: a member's accumulator lock held by one never stalls the stream), yielded as
    they complete. `answer` must answer every claim (its refusals included) and raise only for what ends the stream.
    The stream ends when the sender stops writing and every batch is answered."""
    answers: asyncio.Queue = asyncio.Queue()
    slots = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task] = set()

    async def answer_one(batch: Any) -> None:  # noqa: ANN401
        try:
            answers.put_nowait(await answer(batch))
        except Exception as error:  # noqa: BLE001 - handed to the stream, which ends with it
            answers.put_nowait(error)
        finally:
            slots.release()

    async def read() -> None:
        try:
            async for batch in batches:
                await slots.acquire()
                task = asyncio.ensure_future(answer_one(batch))
                running.add(task)
                task.add_done_callback(running.discard)
            await asyncio.gather(*running)
            answers.put_nowait(_END)
        except Exception as error:  # noqa: BLE001 - the sender went away or sent garbage: end the stream
            answers.put_nowait(error)

    reader = asyncio.ensure_future(read())
    try:
        while (item := await answers.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        # Nothing may touch the call once the handler returns (grpc frees it then): the reader, which iterates
        # the call's requests, and the batches in flight are cancelled and awaited here, in the handler.
        reader.cancel()
        for task in list(running):
            task.cancel()
        await asyncio.gather(reader, *running, return_exceptions=True)
