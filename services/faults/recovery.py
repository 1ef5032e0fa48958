"""What the harness's HIS and the operators do about settlements whose fate is unknown: the HIS reverses
(冲正 2601) some of them instead of resending, and after the run reconciliation (对账 3201/3202) runs between
every pair of neighbours — the hospital with its treating agency (from the HIS journal), then the clearing
house with the insured agencies and each treating agency with its downstream — and repairs what differs.

Each hospital reconciles as itself (its own settlements, on a channel with its certificate); the operator starts
the clearing house's and the treating agencies' reconciliation."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import grpc
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import clearing_house_pb2_grpc, treating_agency_pb2 as ta, treating_agency_pb2_grpc

from clearing.reconcile import DetailLine, Repair, compare
from services.common.clock import shanghai_today
from services.common.reconciling import STATUS_NAMES
from services.common.regions import load_regions
from services.faults.journal import DEFINITE_CODES, Entry, Journal, Outcome
from services.security.identity import hospital
from services.stack.config import operator_identity
from services.stack.processes import StackProcesses

REVERSAL_NAMESPACE = uuid.UUID("3c4d2b1a-8e7f-4a6b-9c5d-1e2f3a4b5c6d")
RECONCILE_TIMEOUT_S = 120.0
GRACE_S = 1  # the run is over: nothing is in flight any more
# What the HIS journal's outcome means as an upstream view of the treating agency's row.
HIS_VIEW = {Outcome.SUCCEEDED: "settled", Outcome.CANCELLED: "cancelled", Outcome.FAILED: "failed",
            Outcome.REVERSED: "reversed", Outcome.UNKNOWN: "pending"}


def reversal_request_id(entry: Entry) -> str:
    """One reversal per settlement request: every resend of it carries the same id."""
    return str(uuid.uuid5(REVERSAL_NAMESPACE, entry.request_id))


async def reverse(stub: treating_agency_pb2_grpc.TreatingAgencyServiceStub, entry: Entry, deadline_s: float) -> Outcome:
    """冲正 2601 by the original request id: REVERSED once the agency answers, FAILED if it refuses
    definitely, UNKNOWN if there was no answer (the HIS sends it again)."""
    try:
        await stub.Reverse(ta.ReverseRequest(request_id=reversal_request_id(entry), original_request_id=entry.request_id,
                                             reason="no answer to Settle"), timeout=deadline_s)
    except grpc.aio.AioRpcError as error:
        return Outcome.FAILED if error.code() in DEFINITE_CODES else Outcome.UNKNOWN
    return Outcome.REVERSED


def settlement_days(journal: Journal, today: date) -> list[str]:
    """Every day a settlement of the run can have been made on: from the HIS's first Settle through `today`. An
    agency makes a settlement's day when a Settle first arrives, which may be after the HIS sent it (past
    midnight, or a resend after the faults) but never after now."""
    sent = [date.fromisoformat(entry.requested_on) for entry in journal.entries.values() if entry.requested_on]
    if not sent:
        return []
    first = min(sent)
    return [(first + timedelta(days=offset)).isoformat() for offset in range((today - first).days + 1)]


async def reconcile(stack: StackProcesses, journal: Journal) -> int:
    """Reconcile every day the run's settlements were made on; returns the number of differences repaired."""
    config = stack.config
    transport = config.transport()
    days = settlement_days(journal, shanghai_today())
    repaired = 0
    operator = operator_identity()
    channels = {region: transport.channel(config.address(port), operator)
                for region, port in config.region_ports.items()}
    codes = {region: [item.code for item in load_regions()[region].hospitals] for region in config.region_ports}
    hospital_channels = {code: transport.channel(config.address(config.region_ports[region]), hospital(code))
                         for region in codes for code in codes[region]}
    clearing_channel = transport.channel(config.address(config.clearing_house_port), operator)
    try:
        treating = {region: treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel)
                    for region, channel in channels.items()}
        hospitals = {code: treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel)
                     for code, channel in hospital_channels.items()}
        clearing = clearing_house_pb2_grpc.ClearingHouseServiceStub(clearing_channel)
        for day in days:
            for region in sorted(treating):
                for code in codes[region]:
                    repaired += await hospital_with_agency(hospitals[code], journal, code, day)
            answer = await clearing.ReconcileInsuredAgencies(
                ch.ReconcileInsuredAgenciesRequest(day=day, pending_grace_s=GRACE_S), timeout=RECONCILE_TIMEOUT_S)
            repaired += sum(item.repaired for report in answer.reports for item in report.repairs)
            for region, stub in sorted(treating.items()):
                answer = await stub.Reconcile(ta.ReconcileRequest(day=day, pending_grace_s=GRACE_S),
                                              timeout=RECONCILE_TIMEOUT_S)
                repaired += sum(item.repaired for report in answer.reports for item in report.repairs)
    finally:
        for channel in [*channels.values(), *hospital_channels.values(), clearing_channel]:
            await channel.close()
    return repaired


async def hospital_with_agency(stub: treating_agency_pb2_grpc.TreatingAgencyServiceStub, journal: Journal,
                               hospital_code: str, day: str) -> int:
    """One hospital's side (3202 by HIS request id, its own settlements, asked as itself): a settlement the HIS
    never learnt the fate of, or one the agency holds that the HIS has nothing standing for, is reversed by the
    HIS (冲正)."""
    mine = {entry.request_id: entry for entry in journal.entries.values()
            if entry.hospital_code == hospital_code and entry.day == day}
    theirs = {item.line.request_id: item.line async for item in stub.StreamDailyDetail(
        ta.StreamDailyDetailRequest(day=day, hospital_code=hospital_code), timeout=RECONCILE_TIMEOUT_S)}
    upstream = {key: his_line(entry) for key, entry in mine.items()}
    downstream = {key: DetailLine(key, STATUS_NAMES[line.status], line.local, line.total_fen, line.fund_pay_fen,
                                  line.psn_pay_fen) for key, line in theirs.items()}
    repaired = 0
    for difference in compare(upstream, downstream):
        if difference.repair in (Repair.REVERSE_STALE_PENDING, Repair.REVERSE_ORPHAN) and difference.key in mine:
            entry = mine[difference.key]
            entry.outcome = await reverse(stub, entry, RECONCILE_TIMEOUT_S)
            repaired += entry.outcome is Outcome.REVERSED
    return repaired


def his_line(entry: Entry) -> DetailLine:
    """The HIS's view of one request as a 3202 line; an unknown fate counts as a pending left behind."""
    split = entry.split
    return DetailLine(entry.request_id, HIS_VIEW[entry.outcome], entry.local, split.total_fen if split else 0,
                      split.fund_pay_fen if split else 0, split.psn_pay_fen if split else 0,
                      stale=entry.outcome is Outcome.UNKNOWN)
