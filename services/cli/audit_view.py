"""`clearing-admin audit show`: the operator audit log of the running stack (docs/security.md "Operator audit log").

Every party keeps its own log, so the command asks each server of the stack (AuditService.ListAuditEvents, page by
page) — the clearing house, each region's process (its treating and insured agency), the HIS simulator — or only
the one `--party` names, and merges the answers by time. Times are shown in Asia/Shanghai; `--json` prints the
records as the servers gave them, the request as a JSON object.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import grpc
from clearinghouse.v1 import audit_pb2, audit_pb2_grpc
from google.protobuf import json_format, timestamp_pb2
from rich.console import Console

from clearing.errors import InvalidField
from services.security.audit_service import check_who
from services.cli import online, output
from services.common.clock import SHANGHAI
from services.security.identity import OPERATOR
from services.stack.config import StackConfig

PAGE = 1000
SUMMARY_CHARS = 60


@dataclass(frozen=True)
class Filters:
    """What `audit show` asks each server for."""

    since: datetime | None
    who: str  # operator/NAME, or empty
    parties: tuple[str, ...]  # the stack's servers to ask: clearinghouse, region:R, his


def parse_since(text: str | None) -> datetime | None:
    """`YYYY-MM-DD` (that day's start in Asia/Shanghai) or an ISO-8601 instant (without an offset: Asia/Shanghai)."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), SHANGHAI)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidField("--since", f"{text!r} is neither YYYY-MM-DD nor an ISO-8601 time "
                                      "(e.g. 2026-03-02T08:30:00+08:00)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=SHANGHAI)


def parse_who(text: str | None) -> str:
    """`NAME` or `operator/NAME` → `operator/NAME`."""
    if not text:
        return ""
    return check_who(text if "/" in text else f"{OPERATOR}/{text}", "--who")


def servers(config: StackConfig) -> list[str]:
    """The stack's servers, as roles: the clearing house, each region's process, the HIS simulator."""
    roles = ["clearinghouse", *(f"region:{region}" for region in sorted(config.region_ports))]
    return roles + (["his"] if config.his_port else [])


def parse_party(config: StackConfig, text: str | None) -> tuple[str, ...]:
    known = servers(config)
    if text is None:
        return tuple(known)
    if text not in known:
        raise InvalidField("--party", f"{text!r} is not a server of this stack: one of {', '.join(known)}")
    return (text,)


async def read_server(channel: grpc.aio.Channel, filters: Filters) -> list[audit_pb2.AuditEvent]:
    """Every event one server holds that matches, page by page."""
    stub = audit_pb2_grpc.AuditServiceStub(channel)
    request = audit_pb2.ListAuditEventsRequest(who=filters.who, limit=PAGE)
    if filters.since is not None:
        since = timestamp_pb2.Timestamp()
        since.FromDatetime(filters.since.astimezone(UTC))
        request.since.CopyFrom(since)
    events: list[audit_pb2.AuditEvent] = []
    while True:
        answer = await stub.ListAuditEvents(request, timeout=online.CALL_TIMEOUT_S)
        events.extend(answer.events)
        if not answer.next_page_token:
            return events
        request.page_token = answer.next_page_token


def read_log(config_path: Path, since: str | None, who: str | None, party: str | None) -> list[audit_pb2.AuditEvent]:
    """The matching events of every server asked, merged by time; a refusal or an unreachable server is the
    one-line operator error naming it."""
    since_at, who_path = parse_since(since), parse_who(who)  # a bad option is refused before anything is read
    config = online.load_config(config_path)
    filters = Filters(since_at, who_path, parse_party(config, party))
    identity = online.operator()
    transport = config.transport()

    async def ask(role: str) -> list[audit_pb2.AuditEvent]:
        async with transport.channel(config.address(config.role_port(role)), identity) as channel:
            return await read_server(channel, filters)

    async def ask_all() -> list[list[audit_pb2.AuditEvent] | BaseException]:
        return await asyncio.gather(*(ask(role) for role in filters.parties), return_exceptions=True)

    events: list[audit_pb2.AuditEvent] = []
    for role, answer in zip(filters.parties, asyncio.run(ask_all()), strict=True):
        if isinstance(answer, grpc.aio.AioRpcError):
            address = config.address(config.role_port(role))
            output.fail(f"{role}: {online.describe_error(answer, config, address, identity)}")
        if isinstance(answer, BaseException):
            raise answer
        events.extend(answer)
    return sorted(events, key=lambda event: (event.at.ToDatetime(), event.party, event.id))


def event_json(event: audit_pb2.AuditEvent) -> dict[str, Any]:
    """One record as the server gave it, the request as a JSON object rather than its text."""
    record = json_format.MessageToDict(event, preserving_proto_field_name=True,
                                       always_print_fields_with_no_presence=True)
    record["request"] = json.loads(record.pop("request_json") or "{}")
    return record


def summary(request: dict[str, Any]) -> str:
    """A short line of what the request asked: its top-level fields (not the idempotency key), a long text as its
    length."""
    parts = []
    for key, value in request.items():
        if key == "request_id":
            continue
        if isinstance(value, dict) and set(value) == {"chars", "sha256"}:
            parts.append(f"{key}=<{value['chars']} chars>")
        elif isinstance(value, dict):
            parts.append(f"{key}={{{', '.join(value)}}}")
        elif isinstance(value, list):
            parts.append(f"{key}=[{len(value)}]")
        else:
            parts.append(f"{key}={value}")
    text = ", ".join(parts)
    return text if len(text) <= SUMMARY_CHARS else text[:SUMMARY_CHARS - 1] + "…"


def when(stamp: timestamp_pb2.Timestamp) -> str:
    return f"{stamp.ToDatetime(tzinfo=UTC).astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S}"


def show(console: Console, events: list[audit_pb2.AuditEvent]) -> None:
    table = output.table("Operator audit log (times Asia/Shanghai)", "when", "who", "party", "rpc", "outcome",
                         "request")
    for event in events:
        outcome = event.outcome or "no outcome recorded"
        table.add_row(when(event.at), event.caller, event.party, event.rpc, outcome,
                      summary(json.loads(event.request_json or "{}")))
    console.print(table)
    console.print(online.plural(len(events), "operator call"))
