"""AuditService: an operator reads back the operator audit log of the parties a server is (services/security/
audit_log.py; docs/security.md "Operator audit log").

Bound on every server. The clearing house and the HIS simulator have one log each; a region's process serves
its treating and its insured agency, each with its own database and log, and answers with both, merged by time,
each event labelled with its party. The call itself is an operator's, so it is recorded too — in the log of the
server's first party (a region's treating agency) — but not listed in its own answer.

Paging: each log is read by (time, id), oldest first; the page token holds, per party, the position of the last
event handed out, so a page of the merged logs repeats no event and skips none that was recorded when the first
page was read. (A call that began just before a page was read, but whose row committed after, can sort behind
the position already handed out and be missed by the later pages: read again with `since` to catch it.)
"""

from __future__ import annotations

import heapq
import itertools
import json
from datetime import UTC, datetime, timedelta

from clearinghouse.v1 import audit_pb2 as pb
from clearinghouse.v1 import audit_pb2_grpc as pb_grpc
from google.protobuf import timestamp_pb2

from clearing.errors import InvalidField
from services.common.errors import rpc
from services.security.audit_log import AuditLog, current_operator_call
from services.security.identity import OPERATOR, Identity, IdentityError
from services.security.party import Security

LIMIT_DEFAULT = 200
LIMIT_MAX = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


Position = tuple[datetime, int]  # (at, id): the last event handed out of one party's log
START: Position = (datetime.min.replace(tzinfo=UTC), 0)


def parse_page_token(token: str, parties: list[str]) -> dict[str, Position]:
    """`party=MICROS:ID,…` (the time in microseconds since the epoch) → the last event handed out per party."""
    after = dict.fromkeys(parties, START)
    if not token:
        return after
    try:
        for item in token.split(","):
            party, _, position = item.rpartition("=")
            micros, _, event_id = position.partition(":")
            if party not in after:
                raise ValueError(item)
            after[party] = (EPOCH + timedelta(microseconds=int(micros)), int(event_id))
    except (ValueError, OverflowError):
        raise InvalidField("page_token", "not a token this server gave: pass next_page_token as it came") from None
    return after


def page_token(after: dict[str, Position]) -> str:
    return ",".join(f"{party}={(at - EPOCH) // timedelta(microseconds=1)}:{event_id}"
                    for party, (at, event_id) in after.items())


def check_who(who: str, field: str = "who") -> str:
    """`operator/NAME` or empty."""
    if not who:
        return ""
    try:
        identity = Identity.from_path(who)
    except IdentityError as error:
        raise InvalidField(field, f"an operator's identity path, operator/NAME: {error}") from None
    if identity.role != OPERATOR:
        raise InvalidField(field, f"only operators' calls are recorded: {who} is a {identity.role}")
    return identity.path


def timestamp(value) -> timestamp_pb2.Timestamp:  # noqa: ANN001 - a datetime
    result = timestamp_pb2.Timestamp()
    result.FromDatetime(value.astimezone(UTC))
    return result


class AuditServicer(pb_grpc.AuditServiceServicer):
    def __init__(self, logs: list[AuditLog], *, security: Security) -> None:
        assert logs, "a server has at least one party's log"
        self.logs = logs
        self.security = security  # the server's identity and deny list: every call is authenticated with it
        self.pool = logs[0].pool
        self.audit_log = logs[0]  # its own calls (operators') are recorded in its first party's log

    @rpc
    async def ListAuditEvents(self, request: pb.ListAuditEventsRequest, context) -> pb.ListAuditEventsResponse:  # noqa: ANN001, N802
        limit = request.limit or LIMIT_DEFAULT
        if not 1 <= limit <= LIMIT_MAX:
            raise InvalidField("limit", f"between 1 and {LIMIT_MAX} (0: {LIMIT_DEFAULT}), not {request.limit}")
        who = check_who(request.who)
        since = request.since.ToDatetime(tzinfo=UTC) if request.HasField("since") else None
        after = parse_page_token(request.page_token, [item.party for item in self.logs])
        own = current_operator_call()
        fetched = []
        for item in self.logs:
            excluded = own.event_id if own is not None and own.audit_log.party == item.party else None
            rows = await item.events(since, who, after[item.party], limit + 1, excluded)
            fetched.append((item.party, rows))
        # Each log comes by (at, id); a merge keeps that order, so what a page takes of each log is a prefix of it
        # and the token's last position per party is exact.
        merged = heapq.merge(*([((row["at"], row["id"]), party, row) for row in rows] for party, rows in fetched),
                             key=lambda entry: (entry[0][0], entry[1], entry[0][1]))
        page = list(itertools.islice(merged, limit))
        for position, party, _ in page:
            after[party] = position
        more = sum(len(rows) for _, rows in fetched) > limit
        return pb.ListAuditEventsResponse(
            events=[self.event(party, row) for _, party, row in page],
            next_page_token=page_token(after) if more else "")

    @staticmethod
    def event(party: str, row) -> pb.AuditEvent:  # noqa: ANN001 - an asyncpg.Record
        event = pb.AuditEvent(party=party, id=row["id"], at=timestamp(row["at"]), caller=row["caller"],
                              rpc=row["rpc"], request_json=json.dumps(row["request"], ensure_ascii=False),
                              outcome=row["outcome"] or "", message=row["message"] or "")
        if row["finished_at"] is not None:
            event.finished_at.CopyFrom(timestamp(row["finished_at"]))
        return event
