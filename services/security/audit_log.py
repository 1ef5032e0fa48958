"""The operator audit log: every call an operator makes, written append-only at the party that served it (who,
what, when, the request, the outcome; docs/security.md "Operator audit log").

The `rpc` / `rpc_stream` decorators (services/common/errors.py) are the one place every call passes: once the
caller is authenticated, `begin_call` writes the call's row to the serving party's `operator_audit` table — before
the call is authorised and before its body runs — and `OperatorCall.end` writes its outcome to
`operator_audit_outcomes` once the caller's answer is known (PERMISSION_DENIED by the table, INVALID_ARGUMENT, OK…).

Why two rows, not one written with the outcome: the action's own transactions are inside the servicers, so the
record cannot share them; written first, it *fails closed* — a party that cannot write its audit log refuses
operator calls (UNAVAILABLE, nothing done) rather than act unrecorded — and a process that dies during an action
leaves its row without an outcome, so the log still says the action was attempted. A failure to write the
*outcome* cannot undo the action: the caller gets the action's real answer, and the failure is logged at error
level and counted (`clearing_operator_audit_failures_total`) for alerting.

Only operators' calls are recorded (the caller's role from its certificate). In insecure mode no caller is
known and nothing is recorded.

The request is stored redacted (`redacted_request`): personal data stays at the treating agency (SPEC §9), so the
audit log — at the insured agency and the clearing house too — holds no ID number and no name.
"""

from __future__ import annotations

import asyncio
import hashlib
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from google.protobuf import json_format
from google.protobuf.message import Message

from services.common.logs import mask_id_number
from services.common.metrics import OPERATOR_AUDIT_FAILURES, Party
from services.security.identity import OPERATOR, Identity

log = structlog.get_logger()
SCHEMA_DIR = Path(__file__).resolve().parent

# Keys whose values are a person's name: dropped from the record (nothing reading the audit log needs them).
NAME_KEYS = frozenset({"name", "patient_name", "psn_name"})
# Keys whose values are an ID number: masked whole, whatever their shape (a malformed number is still personal).
ID_KEYS = frozenset({"id_number", "id_no", "certno"})
# A longer text (a catalogue's CSV) is kept as its length and digest: the record says *which* file, not all of it.
TEXT_CHARS_MAX = 512
NUL_SHOWN = "\u2400"  # ␀, in place of a NUL character


class AuditUnavailable(Exception):
    """The serving party could not write an operator call's audit record: the call is refused (UNAVAILABLE)."""


async def apply_schema(connection: asyncpg.Connection, file_name: str) -> None:
    """Run one of the shared schema files (each party's `NNNN_operator_audit.py` migration)."""
    await connection.execute((SCHEMA_DIR / file_name).read_text(encoding="utf-8"))


def mask_id_value(value: str) -> str:
    """An ID number as the logs show it (`4301**********1234`); a malformed one still keeps nothing in between,
    and a short one nothing at all."""
    if len(value) < 12:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def redacted(value: Any, key: str = "") -> Any:  # noqa: ANN401 - a JSON value
    """`value` (a JSON value found under `key`) without personal data: names dropped, ID numbers masked wherever
    they appear, long texts replaced by their length and SHA-256 (of the masked text), NUL characters as ␀."""
    if isinstance(value, dict):
        return {inner: redacted(item, inner) for inner, item in value.items() if inner not in NAME_KEYS}
    if isinstance(value, list):
        return [redacted(item, key) for item in value]
    if isinstance(value, str):
        text = mask_id_value(value) if key in ID_KEYS else mask_id_number(value)
        # jsonb cannot hold U+0000, which a (refused) request may carry: shown as ␀ rather than failing the record,
        # which would refuse the call UNAVAILABLE instead of the INVALID_ARGUMENT it deserves.
        text = text.replace("\x00", NUL_SHOWN)
        if len(text) > TEXT_CHARS_MAX:
            return {"chars": len(text), "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
        return text
    return value


def redacted_request(request: Message) -> dict[str, Any]:
    """The request in the proto's JSON mapping (field names as in the .proto), redacted for the audit log; a
    request that is no message (a raw-bytes method of a service outside the protos) is kept as its size."""
    if not isinstance(request, Message):
        return {"bytes": len(request) if isinstance(request, bytes | bytearray) else None}
    try:
        mapped = json_format.MessageToDict(request, preserving_proto_field_name=True)
    except (json_format.Error, ValueError, TypeError) as error:
        # A request with a value the JSON mapping cannot express (a Timestamp's nanos out of range): the call is
        # still recorded — the body refuses it — as what it was, without its fields.
        return {"unmappable": request.DESCRIPTOR.full_name, "bytes": request.ByteSize(), "why": str(error)[:200]}
    return redacted(mapped)


@dataclass(frozen=True)
class AuditLog:
    """One party's operator audit log: the tables in its database, and the label readers see (`treating:440100`)."""

    pool: asyncpg.Pool
    party: str

    async def begin(self, caller: str, rpc: str, request: dict[str, Any]) -> int:
        """Record a call before its body runs; its id."""
        return await self.pool.fetchval(
            "INSERT INTO operator_audit (caller, rpc, request) VALUES ($1, $2, $3) RETURNING id",  # `at`: the trigger
            caller, rpc, request)

    async def end(self, event_id: int, outcome: str, message: str) -> None:
        """Record a call's outcome (the gRPC code name the caller got, and the refusal's message)."""
        await self.pool.execute(
            "INSERT INTO operator_audit_outcomes (event_id, outcome, message) VALUES ($1, $2, $3)",
            event_id, outcome, message)

    async def events(self, since: datetime | None, who: str, after: tuple[datetime, int], limit: int,
                     excluded_id: int | None = None) -> list[asyncpg.Record]:
        """Up to `limit` calls after position `after` (at, id), by (at, id), that began at or after `since`, of `who`
        (empty: any operator)."""
        return await self.pool.fetch(
            """SELECT id, at, caller, rpc, request, outcome, message, finished_at FROM operator_audit_events
               WHERE (at, id) > ($1, $2) AND ($3::timestamptz IS NULL OR at >= $3) AND ($4 = '' OR caller = $4)
                 AND id IS DISTINCT FROM $5
               ORDER BY at, id LIMIT $6""",
            after[0], after[1], since, who, excluded_id, limit)


_CURRENT: ContextVar[OperatorCall | None] = ContextVar("operator_call", default=None)


def current_operator_call() -> OperatorCall | None:
    """The audit record of the call being served; None when it is not an operator's (or outside a call)."""
    return _CURRENT.get()


@dataclass(frozen=True)
class OperatorCall:
    """An operator call recorded as begun, whose outcome is still to write."""

    audit_log: AuditLog
    event_id: int
    rpc: str

    async def end(self, outcome: str, message: str) -> None:
        """Write the outcome. Never raises: the action is done either way, and the caller gets its real answer; a
        failure is logged at error level and counted, and the record stays without an outcome."""
        try:
            # Shielded: a call cancelled while its outcome is written still gets it written.
            await asyncio.shield(self.audit_log.end(self.event_id, outcome, message))
        except Exception as error:  # noqa: BLE001 - reported, see the docstring
            OPERATOR_AUDIT_FAILURES.labels(*Party.of(self.audit_log.party).values, "outcome").inc()
            log.error("operator_audit_outcome_lost", audit_party=self.audit_log.party, event_id=self.event_id,
                      audited_rpc=self.rpc, outcome=outcome, error=str(error) or type(error).__name__)


def is_audited(caller: Identity | None) -> bool:
    return caller is not None and caller.role == OPERATOR


async def begin_call(audit_log: AuditLog, caller: Identity | None, rpc: str, request: Message) -> OperatorCall | None:
    """Record an operator's call before it is authorised and its body runs; None for any other caller. Raises
    `AuditUnavailable` when the record cannot be written: the call must then be refused."""
    _CURRENT.set(None)
    if not is_audited(caller):
        return None
    assert caller is not None
    try:
        event_id = await audit_log.begin(caller.path, rpc, redacted_request(request))
    except Exception as error:
        OPERATOR_AUDIT_FAILURES.labels(*Party.of(audit_log.party).values, "begin").inc()
        log.error("operator_audit_unavailable", audit_party=audit_log.party, audited_rpc=rpc,
                  error=str(error) or type(error).__name__)
        raise AuditUnavailable(f"{audit_log.party} cannot write its operator audit log") from error
    call = OperatorCall(audit_log, event_id, rpc)
    _CURRENT.set(call)
    return call
