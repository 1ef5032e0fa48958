"""Server-backed operator commands: they talk to the running stack over gRPC, like any other party.

Addresses come from the stack's configuration file (`var/stack/stack.json` by default, written by
`clearing-admin stack up`), and so does the certificate directory: every call is made over mutual TLS as an
operator — `operator/admin`, or `clearing-admin --operator NAME` / $CLEARING_OPERATOR — unless the stack runs
`--insecure`. A refused request is one `error: CODE: field: reason` line, exit 2; a call that fails at the TLS
handshake says so and what to check.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date
from pathlib import Path
from typing import Any, TypeVar

import grpc
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import clearing_house_pb2_grpc, treating_agency_pb2 as ta, treating_agency_pb2_grpc, types_pb2
from google.protobuf import json_format
from rich.console import Console
from rich.table import Table

from clearing.bill import check_region
from clearing.errors import InvalidField
from clearing.explain import DISEASES_ZH
from clearing.money import format_yuan
from services.cli import output
from services.common import convert
from services.common.clock import SHANGHAI
from services.common.status_text import domain_error_from_status
from services.security import tls
from services.security.identity import Identity, IdentityError
from services.stack.config import StackConfig, operator_identity

STACK_DIR = Path("var/stack")
CALL_TIMEOUT_S = 30.0
Result = TypeVar("Result")


def load_config(path: Path) -> StackConfig:
    if not path.exists():
        raise InvalidField("--config", f"{path} not found: start the stack with `clearing-admin stack up`")
    return StackConfig.load(path)


# The operator the CLI calls as: `clearing-admin --operator NAME` sets it; None is $CLEARING_OPERATOR, else `admin`.
OPERATOR: str | None = None


def operator() -> Identity:
    try:
        return operator_identity(OPERATOR)
    except IdentityError as error:
        raise InvalidField("--operator", str(error)) from None


def call(config: StackConfig, address: str, make_call: Callable[[grpc.aio.Channel], Awaitable[Result]]) -> Result:
    """Run one call against `address` as the operator, over the stack's transport (mutual TLS with the operator's
    certificate from the stack's certificate directory); a gRPC refusal becomes the one-line operator error."""
    identity = operator()
    transport = config.transport()

    async def run() -> Result:
        async with transport.channel(address, identity) as channel:
            return await make_call(channel)

    try:
        return asyncio.run(run())
    except grpc.aio.AioRpcError as error:
        output.fail(describe_error(error, config, address, identity))


def connection_failed(error: grpc.aio.AioRpcError) -> bool:
    """UNAVAILABLE from the client's own gRPC (no connection: refused, or closed during the TLS handshake), not a
    status a server sent."""
    detail = (error.details() or "").lower()
    return any(marker in detail for marker in ("failed to connect", "socket closed", "handshake", "connection refused"))


def describe_error(error: grpc.aio.AioRpcError, config: StackConfig, address: str, identity: Identity) -> str:
    """The one-line operator error: the server's refusal, or — UNAVAILABLE with no status of the server's, which
    is how a failed TLS handshake looks to a client — plainly that the handshake failed and what to check."""
    if error.code() is grpc.StatusCode.UNAVAILABLE and not config.insecure and connection_failed(error):
        return tls.describe_handshake_failure(address, Path(config.certs_dir), identity, error.details() or "")
    return domain_error_from_status(error)


def region_address(config: StackConfig, region: str, field: str = "--region") -> str:
    check_region(region, field)
    if region not in config.region_ports:
        raise InvalidField(field, f"region {region} is not part of this stack")
    return config.address(config.region_ports[region])


def translate(config_path: Path, from_region: str, code: str, to_region: str | None, on: str) -> dict[str, Any]:
    config = load_config(config_path)
    request = ch.TranslateRequest(from_region=from_region, code=code, to_region=to_region or "", on_date=on)
    answer = call(config, config.address(config.clearing_house_port),
                  lambda channel: clearing_house_pb2_grpc.ClearingHouseServiceStub(channel).Translate(
                      request, timeout=CALL_TIMEOUT_S))
    return json_format.MessageToDict(answer, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def get_settlement(config_path: Path, region: str, settlement_id: str) -> types_pb2.Settlement:
    config = load_config(config_path)
    answer = call(config, region_address(config, region),
                  lambda channel: treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel).GetSettlement(
                      ta.GetSettlementRequest(settlement_id=settlement_id), timeout=CALL_TIMEOUT_S))
    return answer.settlement


def find_settlement(config_path: Path, settlement_id: str) -> tuple[types_pb2.Settlement, str]:
    """A settlement whose treating region the operator did not give, and how it was found: a cross-region claim the
    clearing house knows (GetClaim) names its treating region; otherwise (a local stay, or a claim that never
    reached the clearing house) every region's treating agency is asked (GetSettlement). The answer is always the
    treating agency's own record."""
    config = load_config(config_path)
    identity = operator()
    transport = config.transport()

    async def ask_region(region: str) -> types_pb2.Settlement | None:
        async with transport.channel(config.address(config.region_ports[region]), identity) as channel:
            try:
                answer = await treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel).GetSettlement(
                    ta.GetSettlementRequest(settlement_id=settlement_id), timeout=CALL_TIMEOUT_S)
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:
                    return None
                raise
        return answer.settlement

    async def find() -> tuple[types_pb2.Settlement, str] | None:
        async with transport.channel(config.address(config.clearing_house_port), identity) as channel:
            try:
                claim = (await clearing_house_pb2_grpc.ClearingHouseServiceStub(channel).GetClaim(
                    ch.GetClaimRequest(settlement_id=settlement_id), timeout=CALL_TIMEOUT_S)).settlement
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                claim = None
        region = claim.claim.treating_region if claim is not None else ""
        if region in config.region_ports:
            found = await ask_region(region)
            if found is not None:
                return found, f"treating region {region}, named by the clearing house"
        regions = sorted(config.region_ports)
        answers = await asyncio.gather(*(ask_region(item) for item in regions), return_exceptions=True)
        for item, answer in zip(regions, answers, strict=True):
            if isinstance(answer, types_pb2.Settlement):
                return answer, f"treating region {item}, found by asking each region"
        silent = [f"{item} ({answer.code().name})" for item, answer in zip(regions, answers, strict=True)
                  if isinstance(answer, grpc.aio.AioRpcError)]
        if silent:
            raise InvalidField("--region", f"no region that answered knows the settlement, and {', '.join(silent)} "
                                           "did not answer: give its treating region with --region")
        return None

    try:
        found = asyncio.run(find())
    except grpc.aio.AioRpcError as error:
        output.fail(describe_error(error, config, config.address(config.clearing_house_port), identity))
    if found is None:
        output.fail(f"NOT_FOUND: SETTLEMENT_ID: {settlement_id} is known neither to the clearing house nor to the "
                    f"treating agency of any region of this stack ({', '.join(sorted(config.region_ports))})")
    return found


# How the CLI shows enum values to people (the JSON output keeps the proto names: see `settlement_json`).
SETTLEMENT_STATUS_WORDS = {types_pb2.SETTLEMENT_STATUS_PENDING: "pending", types_pb2.SETTLEMENT_STATUS_SETTLED: "settled",
                           types_pb2.SETTLEMENT_STATUS_CANCELLED: "cancelled",
                           types_pb2.SETTLEMENT_STATUS_REVERSED: "reversed", types_pb2.SETTLEMENT_STATUS_FAILED: "failed"}
CATALOGUE_RULE_WORDS = {types_pb2.CATALOGUE_RULE_TREATING: "treating catalogue",
                        types_pb2.CATALOGUE_RULE_INSURED: "insured catalogue"}


def settlement_json(settlement: types_pb2.Settlement) -> dict[str, Any]:
    """The proto's own JSON mapping, enum values as their proto names (`SETTLEMENT_STATUS_SETTLED`): what `buf curl`
    or any gRPC JSON client gets for the same message, stable across wording changes, so scripts parse one form."""
    return json_format.MessageToDict(settlement, preserving_proto_field_name=True)


def show_settlement(console: Console, settlement: types_pb2.Settlement) -> None:
    split = settlement.adjudication.split
    claim = settlement.claim
    console.print(f"{settlement.name}  {SETTLEMENT_STATUS_WORDS.get(settlement.status, 'unknown status')}  "
                  f"{'local' if settlement.local else 'cross-region'}  "
                  f"{CATALOGUE_RULE_WORDS.get(settlement.catalogue_rule, 'catalogue rule not set')}", soft_wrap=True)
    if claim.med_type == types_pb2.MED_TYPE_OUTPATIENT_SPECIAL:
        for line in visit_lines(settlement):
            console.print(line, soft_wrap=True, markup=False)
    else:
        console.print(f"hospital {claim.stay.hospital_code} (level {claim.stay.hospital_level}), "
                      f"{claim.stay.admitted_on} → {claim.stay.discharged_on}, insured by {claim.insured_region}, "
                      f"diagnoses {', '.join(claim.stay.diagnoses)}", soft_wrap=True)
        for text in stay_facts_lines(claim.stay):
            console.print(text, soft_wrap=True, markup=False)
    table = Table(title="Fund split (¥)")
    table.add_column("part")
    table.add_column("amount", justify="right")
    for name in ("total_fen", "fulamt_ownpay_fen", "overlmt_selfpay_fen", "preselfpay_fen", "inscp_fen",
                 "deductible_fen", "hifp_fen", "hifmi_fen", "maf_fen", "fund_pay_fen", "psn_pay_fen"):
        table.add_row(name.removesuffix("_fen"), format_yuan(getattr(split, name)))
    console.print(table)
    if settlement.flags:
        console.print(f"flags: {', '.join(settlement.flags)}")
    for text in smart_audit_lines(settlement, "en"):
        console.print(text, soft_wrap=True, markup=False)


def visit_lines(settlement: types_pb2.Settlement) -> list[str]:
    """An outpatient special-disease visit's heading (门诊慢特病, med_type 14): the disease, the day, the ratio, the
    limit left after it and the disease's accumulators, in Chinese and English."""
    claim, visit = settlement.claim, settlement.adjudication.visit
    key = types_pb2.SpecialDisease.Name(claim.disease).removeprefix("SPECIAL_DISEASE_").lower()
    left = format_yuan(visit.limit_left_fen) if visit.HasField("limit_left_fen") else None
    after = visit.special_after
    return [
        f"门诊慢特病 {DISEASES_ZH.get(key, key)} / outpatient special disease {key} (med_type 14): hospital "
        f"{claim.stay.hospital_code} (level {claim.stay.hospital_level}), visit on {claim.stay.admitted_on}, insured by "
        f"{claim.insured_region}",
        f"比例 ratio {visit.ratio_bp / 100:g} %; " + (f"本次后限额剩余 limit left after the visit ¥{left}" if left is not None
                                                    else "不设限额 no limit"),
        f"年度累计 year to date: 起付 deductible ¥{format_yuan(after.deductible_fen)}, 支付 paid "
        f"¥{format_yuan(after.paid_fen)}" + (f", {after.month} 月支付 paid in month ¥{format_yuan(after.month_paid_fen)}"
                                              if after.month else ""),
    ]


def stay_facts_lines(stay: types_pb2.Stay) -> list[str]:
    """The stay's 病案首页 facts and its CHS-DRG 1.1 group computed from them (clearing.drg.group; the money never
    depends on it). Nothing for a stay recorded before the facts were carried."""
    from clearing.drg import group
    from clearing.medical_record import drg_case
    from services.drg.reference import load_tables

    try:
        record = convert.stay_record(stay, "stay")
    except InvalidField:
        return []  # checked by every party before it was recorded: not expected
    if record.sex is None and not record.procedures:
        return []
    patient = f"{record.sex or '?'}, {record.age_years if record.age_years is not None else '?'} y"
    if record.age_days is not None:
        patient += f" ({record.age_days} d)"
    if record.birth_weight_g is not None:
        patient += f", birth weight {record.birth_weight_g} g"
    lines = [f"procedures {', '.join(record.procedures) or 'none'}; patient {patient}; "
             f"discharge status {record.discharge_status or 'not given'}"]
    los_days = (date.fromisoformat(stay.discharged_on) - date.fromisoformat(stay.admitted_on)).days
    case = drg_case(tuple(stay.diagnoses), record, los_days)
    if case is None:
        lines.append("DRG: not grouped (the stay lacks sex and age, or its diagnoses are not 医保版 codes)")
        return lines
    result = group(case, load_tables())
    if result.grouped:
        lines.append(f"DRG {result.drg} {result.drg_name_zh} (CHS-DRG 1.1; {result.mdc}, ADRG {result.adrg}, "
                     f"complications {result.cc_level.value})")
    else:
        lines.append(f"DRG 0000 (not grouped): {result.reason}")
    return lines


def smart_audit_lines(settlement: types_pb2.Settlement, language: str) -> list[str]:
    """The smart audit (智能审核) recorded with the settlement: its `warn` findings and the versions that audited it
    (nothing for a settlement recorded before smart audit)."""
    lines: list[str] = []
    for audit, who_zh, who_en in ((settlement.smart_audit, "就医地", "treating agency"),
                                  (settlement.adjudication.smart_audit, "参保地", "insured agency")):
        if audit.ByteSize() == 0:
            continue  # not audited (a settlement from before smart audit, or a quote)
        versions = ", ".join(part for part in (
            f"knowledge base {audit.knowledge_version[:12]}" if audit.knowledge_version else "",
            f"rules {audit.rules_version[:12]}") if part)
        if not audit.findings:
            lines.append((f"智能审核 ({who_zh}): 无疑点" if language == "zh"
                          else f"smart audit ({who_en}): no findings") + f" ({versions})")
            continue
        lines.append((f"智能审核 ({who_zh}): {len(audit.findings)} 个疑点 (提醒)" if language == "zh"
                      else f"smart audit ({who_en}): {len(audit.findings)} finding(s), recorded as warnings")
                     + f" ({versions})")
        for item in audit.findings:
            where = ", ".join(list(item.violating_line_ids)) or "-"
            lines.append(f"  {item.rule_id} {item.rule_name} {item.result} {item.action} "
                         f"¥{format_yuan(item.amount_fen)} lines {where}: {item.evidence}")
    return lines


def check_language(language: str) -> None:
    if language not in ("zh", "en"):
        raise InvalidField("--lang", "must be zh or en")


def explain(settlement: types_pb2.Settlement, language: str) -> list[str]:
    check_language(language)
    return [step.text_zh if language == "zh" else step.text_en
            for step in settlement.adjudication.explanation] + smart_audit_lines(settlement, language)


def import_catalogue(config_path: Path, region: str, file: Path) -> ta.ImportCatalogueResponse:
    config = load_config(config_path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidField("catalog", f"cannot read {file}: {error}") from None
    request = ta.ImportCatalogueRequest(request_id=str(uuid.uuid4()), csv_text=text)
    return call(config, region_address(config, region),
                lambda channel: treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel).ImportCatalogue(
                    request, timeout=120.0))


def clearing_house_call(config_path: Path, rpc: str, request: Any) -> Any:  # noqa: ANN401 - a response message
    """One call of the clearing house's `rpc`; a refusal is the one-line operator error."""
    config = load_config(config_path)
    return call(config, config.address(config.clearing_house_port),
                lambda channel: getattr(clearing_house_pb2_grpc.ClearingHouseServiceStub(channel), rpc)(
                    request, timeout=CALL_TIMEOUT_S))


def close_month(config_path: Path, month: str, allow_empty: bool = False) -> ch.MonthClosing:
    return clearing_house_call(config_path, "CloseMonth", ch.CloseMonthRequest(
        request_id=str(uuid.uuid4()), month=month, allow_empty=allow_empty)).closing


def month_status(config_path: Path, month: str) -> ch.GetMonthClosingResponse:
    return clearing_house_call(config_path, "GetMonthClosing", ch.GetMonthClosingRequest(month=month))


def month_closing(config_path: Path, month: str) -> ch.MonthClosing:
    return month_status(config_path, month).closing


def confirm_transfer(config_path: Path, month: str, region: str, amount_fen: int,
                     reference: str) -> ch.ConfirmTransferResponse:
    return clearing_house_call(config_path, "ConfirmTransfer", ch.ConfirmTransferRequest(
        request_id=str(uuid.uuid4()), month=month, region=region, amount_fen=amount_fen, reference=reference))


def set_prepayment_terms(config_path: Path, region: str, months: int, threshold_bp: int) -> ch.Prepayment:
    return clearing_house_call(config_path, "SetPrepaymentTerms", ch.SetPrepaymentTermsRequest(
        request_id=str(uuid.uuid4()), insured_region=region, months=months, threshold_bp=threshold_bp)).prepayment


MONTH_STATES = {ch.MONTH_STATE_AWAITING_PAYMENT: "awaiting payment (待拨付)", ch.MONTH_STATE_SETTLED: "settled (已清算)"}


def show_transfers(console: Console, status: ch.GetMonthClosingResponse) -> None:
    """A closed month's hub transfers and which are paid."""
    from services.common.regions import load_regions

    names = {code: region.name for code, region in load_regions().items()}
    table = Table(title=f"{status.closing.month}: {MONTH_STATES.get(status.state, 'unknown')} — hub transfers "
                        f"through the clearing house")
    for header in ("region", "net ¥", "transfer", "¥", "status", "reference"):
        table.add_column(header, justify="right" if "¥" in header else "left")
    for item in status.transfers:
        direction = ("pays in" if item.net_fen < 0 else "is paid") if item.HasField("transfer") else "nothing moves"
        cleared = (f"cleared {item.cleared_at.ToDatetime(tzinfo=UTC).astimezone(SHANGHAI):%Y-%m-%d %H:%M}"
                   if item.cleared else "awaiting payment")
        table.add_row(f"{names.get(item.region, item.region)} {item.region}", format_yuan(item.net_fen), direction,
                      format_yuan(item.transfer.amount_fen), cleared, item.reference)
    console.print(table)


def prepayments(config_path: Path, region: str | None) -> list[ch.Prepayment]:
    if region is not None:
        region_address(load_config(config_path), region)  # an unknown region is refused, not an empty table
    return list(clearing_house_call(config_path, "ListPrepayments",
                                    ch.ListPrepaymentsRequest(insured_region=region or "")).prepayments)


def top_up(config_path: Path, region: str, amount_fen: int, required_fen: int) -> ch.Prepayment:
    return clearing_house_call(config_path, "TopUpPrepayment", ch.TopUpPrepaymentRequest(
        request_id=str(uuid.uuid4()), insured_region=region, amount_fen=amount_fen,
        required_fen=required_fen)).prepayment


def show_prepayments(console: Console, items: list[ch.Prepayment]) -> None:
    from services.common.regions import load_regions

    names = {code: region.name for code, region in load_regions().items()}
    table = Table(title="Prepayments (预付金) at the clearing house")
    for header in ("insured region", "balance ¥", "required ¥", "months", "used", "warn at", "status",
                   "top-up requested ¥"):
        table.add_column(header, justify="left" if header in ("insured region", "status") else "right")
    for item in items:
        status = "EXHAUSTED" if item.exhausted else "WARNING" if item.warning else "ok"
        table.add_row(f"{names.get(item.insured_region, item.insured_region)} {item.insured_region}",
                      format_yuan(item.balance_fen), format_yuan(item.required_fen), str(item.months),
                      f"{item.usage_bp // 100}.{item.usage_bp % 100:02d} %",
                      f"{item.threshold_bp // 100}.{item.threshold_bp % 100:02d} %", status,
                      format_yuan(item.topup_requested_fen))
    console.print(table)


STATEMENT_COLUMNS = ("settlement_id", "kind", "insured_region", "treating_region", "hospital_code", "admitted_on",
                     "discharged_on", "total_fen", "hifp_fen", "hifmi_fen", "maf_fen", "fund_pay_fen", "psn_pay_fen",
                     "principal_diagnosis", "procedures")


def statement(config_path: Path, region: str,
              month: str) -> tuple[ch.StatementSummary, list[ch.StatementEntry], list[ch.Dispute]]:
    """Read a region's statement stream: the summary, then every entry, then the disputes with a step in the month."""
    config = load_config(config_path)
    region_address(config, region, "REGION")  # an unknown region is refused, not an empty statement

    async def read(channel: grpc.aio.Channel) -> list[ch.StreamStatementResponse]:
        stub = clearing_house_pb2_grpc.ClearingHouseServiceStub(channel)
        return [item async for item in stub.StreamStatement(ch.StreamStatementRequest(region=region, month=month),
                                                            timeout=300)]

    items = call(config, config.address(config.clearing_house_port), read)
    return (items[0].summary, [item.entry for item in items[1:] if item.HasField("entry")],
            [item.dispute for item in items[1:] if item.HasField("dispute")])


def statement_json(summary: ch.StatementSummary, entries: list[ch.StatementEntry],
                   disputes: list[ch.Dispute] | None = None) -> dict[str, Any]:
    options = {"preserving_proto_field_name": True, "always_print_fields_with_no_presence": True}
    return {"summary": json_format.MessageToDict(summary, **options),
            "entries": [json_format.MessageToDict(entry, **options) for entry in entries],
            "disputes": [json_format.MessageToDict(item, preserving_proto_field_name=True) for item in disputes or []]}


def write_statement_csv(path: Path, entries: list[ch.StatementEntry]) -> None:
    import csv

    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(STATEMENT_COLUMNS)
        for entry in entries:
            # Procedures in one cell, main first, `;` between (a code never holds one).
            writer.writerow([";".join(entry.procedures) if column == "procedures" else getattr(entry, column)
                             for column in STATEMENT_COLUMNS])


def show_statement(console: Console, summary: ch.StatementSummary, entries: list[ch.StatementEntry]) -> None:
    table = Table(title=f"Statement {summary.region} {summary.month}")
    table.add_column("item")
    table.add_column("¥", justify="right")
    for label, value in (("owed by the region's funds (as insured)", summary.owed_by_fen),
                         ("  of which basic fund 统筹", summary.hifp_fen), ("  of which 大病", summary.hifmi_fen),
                         ("  of which 医疗救助", summary.maf_fen), ("members' own share", summary.psn_pay_fen),
                         ("  dispute adjustments subtracted (拒付)", summary.adjusted_by_fen),
                         ("owed to the region's hospitals (as treating)", summary.owed_to_fen),
                         ("  dispute deductions subtracted (扣款)", summary.adjusted_to_fen),
                         ("net position", summary.net_fen)):
        table.add_row(label, format_yuan(value))
    console.print(table)
    for transfer in summary.transfers:
        console.print(f"transfer: {transfer.payer} → {transfer.payee} {format_yuan(transfer.amount_fen)} ¥")
    console.print(f"{plural(len(entries), 'entry', 'entries')} ({summary.entries_as_insured} as insured, "
                  f"{summary.entries_as_treating} as treating)")


def plural(count: int, noun: str, nouns: str = "") -> str:
    """`1 closed month`, `2 closed months`, `0 closed months` (`nouns`: an irregular plural)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def year_summary(config_path: Path, region: str, year: str) -> ch.GetYearSummaryResponse:
    config = load_config(config_path)
    region_address(config, region, "REGION")  # an unknown region is refused, not an empty summary
    return call(config, config.address(config.clearing_house_port),
                lambda channel: clearing_house_pb2_grpc.ClearingHouseServiceStub(channel).GetYearSummary(
                    ch.GetYearSummaryRequest(region=region, year=year), timeout=CALL_TIMEOUT_S))


def year_summary_json(answer: ch.GetYearSummaryResponse) -> dict[str, Any]:
    return json_format.MessageToDict(answer, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def show_year_summary(console: Console, answer: ch.GetYearSummaryResponse) -> None:
    """Two narrow tables (positions; funds as insured region), one row per closed month and the year's
    total row, then the open months. Amounts fold rather than lose a digit on a narrow terminal."""
    rows: list[tuple[str, ch.StatementSummary | ch.StatementTotals]] = [(item.month, item) for item in answer.months]
    total_label = f"{answer.year} total"
    tables = (
        (f"Year-end summary (年度清算) {answer.region} {answer.year}: "
         f"{plural(answer.totals.closed_months, 'closed month')}",
         ("entries", "owed by ¥", "owed to ¥", "net ¥"),
         lambda item: (str(item.entries_as_insured + item.entries_as_treating), format_yuan(item.owed_by_fen),
                       format_yuan(item.owed_to_fen), format_yuan(item.net_fen))),
        ("Owed by the region's funds (as insured), by fund",
         ("统筹 ¥", "大病 ¥", "医疗救助 ¥", "members' own ¥"),
         lambda item: tuple(format_yuan(getattr(item, key)) for key in ("hifp_fen", "hifmi_fen", "maf_fen",
                                                                          "psn_pay_fen"))),
    )
    for title, headers, cells in tables:
        table = Table(title=title)
        table.add_column("month", no_wrap=True)
        for header in headers:
            table.add_column(header, justify="right", overflow="fold")
        for label, item in rows:
            table.add_row(label, *cells(item))
        table.add_section()
        table.add_row(total_label, *cells(answer.totals))
        console.print(table)
    if answer.open_months:
        console.print(f"open months (not in the totals): {', '.join(answer.open_months)}")
    else:
        console.print("no open month")


def payouts(config_path: Path, region: str, month: str) -> ta.ListPayoutsResponse:
    """A treating agency's payout list of a month: frozen once the month is closed, the list so far before."""
    config = load_config(config_path)
    return call(config, region_address(config, region, "REGION"),
                lambda channel: treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel).ListPayouts(
                    ta.ListPayoutsRequest(month=month), timeout=CALL_TIMEOUT_S))


def close_payouts(config_path: Path, region: str, month: str, allow_empty: bool = False) -> ta.ListPayoutsResponse:
    """Close a payout month at a treating agency; its frozen list (the first result if it was closed before)."""
    config = load_config(config_path)
    request = ta.ClosePayoutMonthRequest(request_id=str(uuid.uuid4()), month=month, allow_empty=allow_empty)
    return call(config, region_address(config, region, "REGION"),
                lambda channel: treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel).ClosePayoutMonth(
                    request, timeout=CALL_TIMEOUT_S)).payout_list


def payouts_json(answer: ta.ListPayoutsResponse) -> dict[str, Any]:
    return json_format.MessageToDict(answer, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def payout_state(answer: ta.ListPayoutsResponse) -> str:
    if answer.closed:
        return f"closed {answer.closed_at.ToDatetime():%Y-%m-%d %H:%M} UTC: the list is frozen"
    return "open: the list so far, it still changes"


def show_payouts(console: Console, region: str, answer: ta.ListPayoutsResponse) -> None:
    table = Table(title=f"Payouts (拨付) of the {region} agency to its hospitals, {answer.month} "
                        f"({'closed' if answer.closed else 'open'})")
    for header in ("hospital", "settlements", "cancels", "local ¥", "cross-region ¥", "to pay ¥"):
        table.add_column(header, justify="left" if header == "hospital" else "right")
    for item in answer.payouts:
        table.add_row(item.hospital_code, str(item.settlements), str(item.cancels), format_yuan(item.local_fen),
                      format_yuan(item.cross_region_fen), format_yuan(item.fund_pay_fen))
    table.add_section()
    table.add_row("all", "", "", "", "", format_yuan(answer.total_fen))
    console.print(table)
    console.print(f"{answer.month}: {payout_state(answer)}")


def detach_month(config_path: Path, month: str) -> list[str]:
    """Detach a closed month's partitions in the clearing house's database (an operator's database access, as
    `stack` commands have; not an RPC: services never detach)."""
    import asyncio

    import asyncpg

    from clearing.dates import check_month
    from clearing.errors import PreconditionFailed
    from services.clearinghouse.partitions import detach_month as detach

    check_month(month, "month")
    dsn = load_config(config_path).dsn("clearinghouse")

    async def run() -> list[str]:
        try:
            connection = await asyncpg.connect(dsn)
        except (OSError, asyncpg.PostgresError) as error:
            raise PreconditionFailed("--config", "the clearing house's database cannot be reached "
                                                 f"({type(error).__name__}): is the stack up?") from None
        try:
            return await detach(connection, month)
        finally:
            await connection.close()

    return asyncio.run(run())
