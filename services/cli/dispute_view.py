"""`clearing-admin dispute …` and `clearing-admin audit month` (SPEC §12.3; docs/smart-audit.md "Disputes").

The dispute commands call the clearing house as the operator (the steps record `operator/NAME` as who took them).
`audit month REGION MONTH` is the insured agency's 事后 audit: it reads the region's members' settlements from its
insured agency (ExportAdjudications), each cross-region one's recorded 事中 line findings from its treating agency
(GetSettlement), runs the region's rule library over them (clearing/smart_audit/month.py) and, with `--raise`,
raises a dispute per (settlement, rule) for the definite findings whose action is `dispute`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import grpc
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import clearing_house_pb2_grpc, insured_agency_pb2_grpc, treating_agency_pb2_grpc
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2
from google.protobuf import json_format
from rich.console import Console

from clearing import disputes
from clearing.bill import check_region
from clearing.dates import check_month
from clearing.errors import InvalidField
from clearing.money import format_yuan
from clearing.smart_audit.library import Action, Result, RuleId
from clearing.smart_audit.model import Finding, OtherStay
from clearing.smart_audit.report import finding_json
from clearing.smart_audit.month import DisputeClaim, MonthStay, disputes_to_raise, stay_findings
from services.cli import online, output
from services.cli.offline import InputError
from services.common.smart_audit import load_audit_libraries
from services.security.identity import Identity
from services.security.party import Transport
from services.stack.config import StackConfig

EXPORT_TIMEOUT_S = 600.0
STATE_WORDS = {ch.DISPUTE_STATE_RAISED: "raised", ch.DISPUTE_STATE_ACCEPTED: "accepted",
               ch.DISPUTE_STATE_APPEALED: "appealed", ch.DISPUTE_STATE_UPHELD: "upheld",
               ch.DISPUTE_STATE_REJECTED: "rejected", ch.DISPUTE_STATE_LAPSED: "lapsed (accepted)"}
RULE_IDS = {rule.value for rule in RuleId}


# -- input checks: bad input names the argument or option, exit 2, nothing is sent ------------------------------

def check_uuid(value: str, name: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InputError(name, f"{value!r} is not a UUID") from None


def check_stack_region(config: StackConfig, region: str, name: str = "REGION") -> str:
    check_region(region, name)
    if region not in config.region_ports:
        raise InvalidField(name, f"region {region} is not part of this stack")
    return region


# -- the dispute commands --------------------------------------------------------------------------------------

def raise_dispute(config_path: Path, region: str, settlement_id: str, amount_fen: int, rule_id: str | None,
                  reason: str | None, key: str | None) -> ch.Dispute:
    check_region(region, "REGION")
    settlement_id = check_uuid(settlement_id, "SETTLEMENT_ID")
    if amount_fen <= 0:
        raise InputError("--amount-fen", "must be a positive number of fen")
    if rule_id is not None and rule_id not in RULE_IDS:
        raise InputError("--rule", f"{rule_id!r} is not a rule id ({', '.join(sorted(RULE_IDS))})")
    if rule_id is None and not (reason or "").strip():
        raise InputError("--reason", "is required for a dispute raised by hand (or name the finding's --rule)")
    request = ch.RaiseDisputeRequest(
        request_id=check_uuid(key, "--key") if key else str(uuid.uuid4()), settlement_id=settlement_id,
        amount_fen=amount_fen, rule_id=rule_id or "", reason=reason or "", insured_region=region)
    check_stack_region(online.load_config(config_path), region)
    return online.clearing_house_call(config_path, "RaiseDispute", request).dispute


def answer_dispute(config_path: Path, dispute_id: str, accept: bool, appeal: str | None) -> ch.Dispute:
    dispute_id = check_uuid(dispute_id, "DISPUTE_ID")
    if accept == (appeal is not None):
        raise InputError("--accept/--appeal", "give exactly one: --accept, or --appeal TEXT")
    if appeal is not None and not appeal.strip():
        raise InputError("--appeal", "the appeal needs a text")
    request = ch.AnswerDisputeRequest(
        request_id=str(uuid.uuid4()), dispute_id=dispute_id,
        answer=ch.DISPUTE_ANSWER_ACCEPT if accept else ch.DISPUTE_ANSWER_APPEAL, appeal_text=appeal or "")
    return online.clearing_house_call(config_path, "AnswerDispute", request).dispute


DECISIONS = {"upheld": ch.DISPUTE_DECISION_UPHELD, "rejected": ch.DISPUTE_DECISION_REJECTED}


def decide_dispute(config_path: Path, dispute_id: str, decision: str) -> ch.Dispute:
    dispute_id = check_uuid(dispute_id, "DISPUTE_ID")
    if decision not in DECISIONS:
        raise InputError("DECISION", f"{decision!r} is neither upheld nor rejected")
    return online.clearing_house_call(config_path, "DecideDispute", ch.DecideDisputeRequest(
        request_id=str(uuid.uuid4()), dispute_id=dispute_id, decision=DECISIONS[decision])).dispute


def list_disputes(config_path: Path, region: str | None, month: str | None) -> list[ch.Dispute]:
    if region is not None:
        check_region(region, "--region")
    if month is not None:
        check_month(month, "--month")
    return list(online.clearing_house_call(config_path, "ListDisputes", ch.ListDisputesRequest(
        region=region or "", settlement_month=month or "")).disputes)


def get_dispute(config_path: Path, dispute_id: str) -> ch.Dispute:
    dispute_id = check_uuid(dispute_id, "DISPUTE_ID")
    return online.clearing_house_call(config_path, "GetDispute", ch.GetDisputeRequest(dispute_id=dispute_id)).dispute


def dispute_json(dispute: ch.Dispute) -> dict[str, Any]:
    return json_format.MessageToDict(dispute, preserving_proto_field_name=True)


def step_text(step: ch.DisputeStep) -> str:
    return f"{step.by} at {step.at.ToDatetime():%Y-%m-%d %H:%M} UTC (month {step.month})"


def show_disputes(console: Console, items: Iterable[ch.Dispute], title: str = "Disputes (拒付 / 申诉)") -> None:
    table = output.table(title, "dispute", "settlement", "insured→treating", "hospital", "rule", "amount ¥",
                         "state", "adjusted in", numeric=("amount ¥",))
    for item in items:
        table.add_row(item.dispute_id[:8], item.settlement_id[:8], f"{item.insured_region}→{item.treating_region}",
                      item.hospital_code, item.rule_id or "by hand", format_yuan(item.amount_fen),
                      STATE_WORDS[item.state], item.adjusted_month or "")
    console.print(table)


def show_dispute(console: Console, item: ch.Dispute) -> None:
    console.print(f"dispute {item.dispute_id}: {STATE_WORDS[item.state]}")
    console.print(f"  settlement {item.settlement_id} ({item.settlement_month}), {item.insured_region} disputes "
                  f"{item.treating_region}'s hospital {item.hospital_code}")
    console.print(f"  amount ¥{format_yuan(item.amount_fen)} of fund pay ¥{format_yuan(item.fund_pay_fen)}; "
                  f"{'rule ' + item.rule_id if item.rule_id else 'by hand'}"
                  + (f"; reason: {item.reason}" if item.reason else ""))
    console.print(f"  raised by {step_text(item.raised)}; answer due by the end of {item.answer_deadline}")
    if item.HasField("answered"):
        console.print(f"  answered by {step_text(item.answered)}"
                      + (f": appeal — {item.appeal_text}" if item.appeal_text else ": accepted"))
    if item.lapsed_month:
        console.print(f"  lapsed in {item.lapsed_month}: no answer in time counts as accepted")
    if item.HasField("decided"):
        console.print(f"  decided by {step_text(item.decided)}")
    if item.adjusted_month:
        console.print(f"  adjustment posted in {item.adjusted_month}: {item.insured_region} owes "
                      f"{item.treating_region} ¥{format_yuan(item.amount_fen)} less; the hospital's payout falls by "
                      "as much (扣款)")


# -- 事后: the monthly audit ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MonthAudit:
    region: str
    month: str
    rules_version: str
    audited: list[tuple[MonthStay, tuple[Finding, ...]]]
    raised: list[ch.Dispute]
    refused: list[tuple[DisputeClaim, str]]  # a dispute the clearing house refused, and why


def recorded_finding(item: types_pb2.SmartAuditFinding) -> Finding:
    return Finding(RuleId(item.rule_id), item.rule_name, Result(item.result), Action(item.action), item.amount_fen,
                   tuple(item.violating_line_ids), tuple(item.involved_line_ids), item.evidence)


def export_window(month: str, readmit_days: int) -> tuple[str, str]:
    """Discharge months to read: back far enough for READMIT's window and a long stay before the month, and the
    month after (a stay overlapping the month's end)."""
    back = max(2, readmit_days // 28 + 2)
    return disputes.add_months(month, -back), disputes.add_months(month, 1)


def audit_month(config_path: Path, region: str, month: str, raise_disputes: bool) -> MonthAudit:
    check_region(region, "REGION")
    month = check_month(month, "MONTH")
    config = online.load_config(config_path)
    check_stack_region(config, region)
    identity = online.operator()
    try:
        return asyncio.run(run_month_audit(config, config.transport(), identity, region, month, raise_disputes))
    except grpc.aio.AioRpcError as error:
        output.fail(online.describe_error(error, config, config.address(config.clearing_house_port), identity))


async def run_month_audit(config: StackConfig, transport: Transport, identity: Identity, region: str, month: str,
                          raise_disputes: bool) -> MonthAudit:
    """The 事后 audit of `region`'s members' cross-region stays discharged in `month` (and, with `raise_disputes`,
    the disputes it raises), calling the parties as `identity`."""
    rules_dir = Path(config.audit_rules_dir) if config.audit_rules_dir else None
    library = load_audit_libraries(region, rules_dir).rules

    async def treating_record(treating_region: str, settlement_id: str) -> tuple[Finding, ...]:
        if treating_region not in config.region_ports:
            return ()  # a region outside this stack: nothing recorded to read
        async with transport.channel(config.address(config.region_ports[treating_region]), identity) as channel:
            answer = await treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel).GetSettlement(
                ta.GetSettlementRequest(settlement_id=settlement_id), timeout=online.CALL_TIMEOUT_S)
        return tuple(recorded_finding(item) for item in answer.settlement.smart_audit.findings)

    exported: list[ia.ExportedAdjudication] = []
    async with transport.channel(config.address(config.region_ports[region]), identity) as channel:
        stub = insured_agency_pb2_grpc.InsuredAgencyServiceStub(channel)
        window = export_window(month, library.settings(RuleId.READMIT).days)
        async for page in stub.ExportAdjudications(ia.ExportAdjudicationsRequest(
                from_month=window[0], to_month=window[1]), timeout=EXPORT_TIMEOUT_S):
            exported.extend(page.settlements)
    live = [item for item in exported if item.status == types_pb2.SETTLEMENT_STATUS_SETTLED
            and not item.undone_sequence]
    history: dict[str, list[OtherStay]] = {}
    for item in live:
        stay = item.claim.stay
        history.setdefault(item.member.member_id, []).append(OtherStay(
            item.settlement_id, date.fromisoformat(stay.admitted_on), date.fromisoformat(stay.discharged_on),
            tuple(stay.diagnoses)))
    chosen = [item for item in live if item.claim.treating_region != region
              and item.claim.stay.discharged_on[:7] == month]
    audited = []
    for item in chosen:
        recorded = await treating_record(item.claim.treating_region, item.settlement_id)
        stay = item.claim.stay
        month_stay = MonthStay(item.settlement_id, item.member.member_id, item.claim.treating_region,
                               item.adjudication.split.fund_pay_fen, date.fromisoformat(stay.admitted_on),
                               date.fromisoformat(stay.discharged_on), tuple(stay.diagnoses), recorded)
        audited.append((month_stay, stay_findings(month_stay, history[item.member.member_id], library)))
    raised: list[ch.Dispute] = []
    refused: list[tuple[DisputeClaim, str]] = []
    if raise_disputes:
        async with transport.channel(config.address(config.clearing_house_port), identity) as channel:
            raised, refused = await raise_from_findings(clearing_house_pb2_grpc.ClearingHouseServiceStub(channel),
                                                        region, audited)
    return MonthAudit(region, month, library.version, audited, raised, refused)


async def raise_from_findings(stub: clearing_house_pb2_grpc.ClearingHouseServiceStub, region: str,
                              audited: list[tuple[MonthStay, tuple[Finding, ...]]],
                              limit: int | None = None) -> tuple[list[ch.Dispute], list[tuple[DisputeClaim, str]]]:
    """Raise the disputes the findings call for (at most `limit`), skipping those raised by an earlier run (their
    keys are the (settlement, rule) pairs) and capping each at the fund pay its settlement has left."""
    existing = (await stub.ListDisputes(ch.ListDisputesRequest(region=region), timeout=online.CALL_TIMEOUT_S)).disputes
    claimed: dict[str, int] = {}
    for item in existing:
        if item.state != ch.DISPUTE_STATE_REJECTED:
            claimed[item.settlement_id] = claimed.get(item.settlement_id, 0) + item.amount_fen
    keys = {item.dispute_id for item in existing}
    done = {(stay.settlement_id, rule.value) for stay, _ in audited for rule in RuleId
            if disputes.finding_dispute_key(stay.settlement_id, rule.value) in keys}
    raised: list[ch.Dispute] = []
    refused: list[tuple[DisputeClaim, str]] = []
    for claim in disputes_to_raise(audited, claimed, done)[:limit]:
        try:
            answer = await stub.RaiseDispute(ch.RaiseDisputeRequest(
                request_id=disputes.finding_dispute_key(claim.settlement_id, claim.rule_id.value),
                settlement_id=claim.settlement_id, amount_fen=claim.amount_fen, rule_id=claim.rule_id.value,
                insured_region=region), timeout=online.CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                raise
            refused.append((claim, online.domain_error_from_status(error)))  # e.g. past the raise window
            continue
        raised.append(answer.dispute)
    return raised, refused


def month_audit_json(result: MonthAudit) -> dict[str, Any]:
    return {
        "region": result.region, "month": result.month, "rules_version": result.rules_version,
        "stays": [{"settlement_id": stay.settlement_id, "treating_region": stay.treating_region,
                   "fund_pay_fen": stay.fund_pay_fen,
                   "findings": [finding_json(item) for item in findings]}
                  for stay, findings in result.audited],
        "raised": [dispute_json(item) for item in result.raised],
        "refused": [{"settlement_id": claim.settlement_id, "rule_id": claim.rule_id.value,
                     "amount_fen": claim.amount_fen, "error": error} for claim, error in result.refused],
    }


def show_month_audit(console: Console, result: MonthAudit) -> None:
    table = output.table(f"事后 audit of {result.region}'s members' cross-region stays discharged in {result.month} "
                         f"({len(result.audited)} stays)", "rule", "name", "result", "action", "findings", "stays",
                         "definite ¥", numeric=("findings", "stays", "definite ¥"))
    for rule in RuleId:
        found = [(stay, item) for stay, findings in result.audited for item in findings if item.rule_id is rule]
        if not found:
            continue
        first = found[0][1]
        definite = sum(item.amount_fen for _, item in found if item.result is Result.DEFINITE)
        table.add_row(rule.value, first.rule_name, first.result.value, first.action.value, str(len(found)),
                      str(len({stay.settlement_id for stay, _ in found})), format_yuan(definite))
    console.print(table)
    console.print(f"rule library {result.rules_version[:12]}…")
    if result.raised:
        show_disputes(console, result.raised, "Disputes raised by this run")
    for claim, error in result.refused:
        console.print(f"not raised: {claim.settlement_id} {claim.rule_id.value} "
                      f"¥{format_yuan(claim.amount_fen)}: {error}")
