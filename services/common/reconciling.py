"""Reconciling one pair of neighbours for one day (3201 totals, then 3202 detail when they differ).

The rules are the core's (`clearing/reconcile.py`); this module moves the lines between the parties'
messages and the core, carries out the repairs the upstream party hands it, and reports each one.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime, timedelta

import grpc
import structlog
from clearinghouse.v1 import types_pb2

from clearing.dates import parse_day
from clearing.errors import DomainError, InvalidField
from clearing.reconcile import (
    MED_INPATIENT, DailyTotals, DayKey, DetailLine, Difference, Repair, compare, daily_totals, totals_agree,
)
from services.common.metrics import RECONCILIATION_REPAIRS, Party

log = structlog.get_logger()

STATUSES = {"pending": types_pb2.SETTLEMENT_STATUS_PENDING, "settled": types_pb2.SETTLEMENT_STATUS_SETTLED,
            "failed": types_pb2.SETTLEMENT_STATUS_FAILED, "cancelled": types_pb2.SETTLEMENT_STATUS_CANCELLED,
            "reversed": types_pb2.SETTLEMENT_STATUS_REVERSED}
STATUS_NAMES = {number: name for name, number in STATUSES.items()}
DEFAULT_GRACE_S = 60
REPAIR_NAMESPACE = uuid.UUID("6f0c7a52-3d5e-4b8e-9a51-0c2f3b7d2e11")


def check_grace(value: int) -> int:
    """Seconds after which a pending row is taken as abandoned; 0 means the default."""
    if value < 0:
        raise InvalidField("pending_grace_s", "must not be negative")
    return value or DEFAULT_GRACE_S


DAY_KEYS = {types_pb2.DAY_KEY_UNSPECIFIED: DayKey.SETTLEMENT, types_pb2.DAY_KEY_SETTLEMENT: DayKey.SETTLEMENT,
            types_pb2.DAY_KEY_DISCHARGE: DayKey.DISCHARGE}
DAY_KEY_NUMBERS = {DayKey.SETTLEMENT: types_pb2.DAY_KEY_SETTLEMENT, DayKey.DISCHARGE: types_pb2.DAY_KEY_DISCHARGE}


def check_day_key(value: int, field: str = "day_key") -> DayKey:
    """The day a request keys on; unset is the settlement day."""
    try:
        return DAY_KEYS[value]
    except KeyError:
        raise InvalidField(field, "must be DAY_KEY_SETTLEMENT or DAY_KEY_DISCHARGE") from None


def day_request(request) -> tuple[date, DayKey]:  # noqa: ANN001 - a …DailyTotals / …DailyDetail request
    """The day of a 3201/3202 request and which day of a settlement it is, checked."""
    return parse_day(request.day, "day"), check_day_key(request.day_key)


def reconcile_request(request) -> tuple[date, int, DayKey]:  # noqa: ANN001 - a Reconcile… request
    """The day to reconcile, the grace period and the day key of a reconciliation request, checked."""
    day, day_key = day_request(request)
    return day, check_grace(request.pending_grace_s), day_key


def repair_request_id(action: str, key: str) -> str:
    """The same repair of the same settlement always carries the same request id, so a second run (or a
    crash in the middle) replays instead of acting twice."""
    return str(uuid.uuid5(REPAIR_NAMESPACE, f"{action}:{key}"))


def detail_line(row, **extra) -> types_pb2.DetailLine:  # noqa: ANN001 - an asyncpg.Record with the day_lines columns
    message = types_pb2.DetailLine(
        settlement_id=str(row["settlement_id"]), status=STATUSES[row["status"]], total_fen=row["total_fen"],
        fund_pay_fen=row["fund_pay_fen"], psn_pay_fen=row["psn_pay_fen"],
        cancel_request_id=str(row["cancel_request_id"]) if row["cancel_request_id"] else "",
        settlement_day=row["settlement_day"].isoformat(), med_type=row["med_type"], **extra)
    if row["created_at"] is not None:
        message.created_at.FromDatetime(row["created_at"])
    return message


def core_line(message: types_pb2.DetailLine, key: str, now: datetime, grace_s: int) -> DetailLine:
    status = STATUS_NAMES[message.status]
    stale = status == "pending" and now - message.created_at.ToDatetime(tzinfo=now.tzinfo) > timedelta(seconds=grace_s)
    settled_amounts = status in ("settled", "cancelled", "reversed")
    return DetailLine(key, status, message.local, message.total_fen if settled_amounts else 0,
                      message.fund_pay_fen if settled_amounts else 0, message.psn_pay_fen if settled_amounts else 0,
                      message.reversing, stale, message.cancel_request_id, message.med_type or MED_INPATIENT)


def totals(lines: Iterable[types_pb2.DetailLine]) -> list[types_pb2.DailyTotals]:
    """3201 over detail lines, computed by the core so both sides count the same way."""
    now = datetime.now().astimezone()
    return [totals_to_proto(item) for item in daily_totals(core_line(line, line.settlement_id, now, 0) for line in lines)]


def totals_to_proto(item: DailyTotals) -> types_pb2.DailyTotals:
    return types_pb2.DailyTotals(clearing_type=item.clearing_type, settled=item.settled, total_fen=item.total_fen,
                                 fund_pay_fen=item.fund_pay_fen, psn_pay_fen=item.psn_pay_fen, pending=item.pending,
                                 med_type=item.med_type)


def totals_from_proto(message: types_pb2.DailyTotals) -> DailyTotals:
    return DailyTotals(message.clearing_type, message.settled, message.total_fen, message.fund_pay_fen,
                       message.psn_pay_fen, message.pending, message.med_type or MED_INPATIENT)


# A refused repair call, said as what happened (operators read it in `clearing-admin reconcile`'s "why" column).
RETRIED_CODES = {grpc.StatusCode.UNAVAILABLE: "could not be reached", grpc.StatusCode.DEADLINE_EXCEEDED:
                 "did not answer in time", grpc.StatusCode.CANCELLED: "dropped the call",
                 grpc.StatusCode.ABORTED: "gave up on a conflict", grpc.StatusCode.RESOURCE_EXHAUSTED: "was overloaded"}


def sentence(text: str) -> str:
    """`text` as a sentence: capital first letter, full stop at the end."""
    text = text.strip()
    if not text:
        return text
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?", "。")) else ".")


def repair_error_text(error: grpc.aio.AioRpcError | DomainError) -> str:
    """Why a repair did not go through, in sentences: no exception class or status code names. A `DomainError`
    is this party's own refusal (its reason is the text); a gRPC error is the neighbour's, either it could not be
    asked (the next run tries again) or it refused, with its reason."""
    if isinstance(error, DomainError):
        return sentence(f"not repaired: {getattr(error, 'reason', None) or error.message}")
    details = (error.details() or "").strip()
    if error.code() in RETRIED_CODES:
        said = f" ({details.rstrip('.')})" if details else ""
        return f"The other party {RETRIED_CODES[error.code()]}{said}; the next run tries again."
    return sentence(f"the other party refused the repair: {details or 'no reason given'}")


def repair_result(item: types_pb2.Repair) -> str:
    """`repaired`, `failed` (the next run tries again) or `reported` (no rule repairs it: in flight, or for an
    operator to look at): the `result` label of a difference."""
    if item.repaired:
        return "repaired"
    return "failed" if item.error else "reported"


RepairAction = Callable[[Difference, types_pb2.DetailLine | None, types_pb2.DetailLine | None], Awaitable[None]]


async def reconcile_pair(pair: str, day: str, day_key: DayKey, upstream: list[types_pb2.DetailLine],
                         downstream_totals: list[types_pb2.DailyTotals],
                         downstream_detail: Callable[[], Awaitable[list[types_pb2.DetailLine]]],
                         grace_s: int, repair: RepairAction,
                         record: Callable[[types_pb2.Repair], Awaitable[None]],
                         key: Callable[[types_pb2.DetailLine], str] = lambda line: line.settlement_id, *,
                         party: Party) -> types_pb2.ReconciliationReport:
    """3201 first; when the totals differ, something is pending or a reversal is unfinished, 3202 line by
    line (matched by `key`: the settlement id, or the HIS request id between a hospital and its agency),
    and every difference repaired by `repair` (upstream's own steps of the protocol). `party` is the upstream
    party, which repairs: each difference is counted as its (`clearing_reconciliation_repairs_total`)."""
    report = types_pb2.ReconciliationReport(pair=pair, day=day, day_key=DAY_KEY_NUMBERS[day_key],
                                            upstream_totals=totals(upstream), downstream_totals=downstream_totals)
    report.totals_agreed = totals_agree(map(totals_from_proto, report.upstream_totals),
                                        map(totals_from_proto, downstream_totals)) \
        and not any(line.reversing for line in upstream)
    if report.totals_agreed:
        return report
    down_lines = await downstream_detail()
    now = datetime.now().astimezone()
    ups = {key(line): line for line in upstream}
    downs = {key(line): line for line in down_lines}
    report.lines_compared = len(ups.keys() | downs.keys())
    differences = compare({key: core_line(line, key, now, grace_s) for key, line in ups.items()},
                          {key: core_line(line, key, now, grace_s) for key, line in downs.items()})
    for difference in differences:
        item = types_pb2.Repair(key=difference.key, pair=pair, upstream_status=difference.upstream or "",
                                downstream_status=difference.downstream or "", action=difference.repair.value,
                                note=difference.note)
        if difference.repair not in (Repair.WAIT, Repair.REPORT):
            try:
                await repair(difference, ups.get(difference.key), downs.get(difference.key))
                item.repaired = True
            except (grpc.aio.AioRpcError, DomainError) as error:  # a failed call is tried again on the next run
                item.error = repair_error_text(error)
        report.repairs.append(item)
        await record(item)
        RECONCILIATION_REPAIRS.labels(*party.values, item.action, repair_result(item)).inc()
        log.warning("reconciliation_difference", pair=pair, day=day, day_key=day_key.value, key=difference.key,
                    action=item.action,
                    upstream=item.upstream_status, downstream=item.downstream_status, repaired=item.repaired,
                    error=item.error)
    return report
