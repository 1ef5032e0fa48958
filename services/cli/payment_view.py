"""`clearing-admin payment …`: the treating agency's payments to its hospitals (医保支付, issue 13 items 3–6).

`payment validate FILE…` is offline: it parses each region's `[hospital_payment]` section
(services/regions/payment/<region>.toml) with the core's parser and prints a summary; a broken file is one
`error: payment FILE: hospital_payment.KEY: …` line and exit 2, nothing printed for the others.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import treating_agency_pb2_grpc
from rich.console import Console

from clearing.bill import check_region
from clearing.dates import check_month, check_year
from clearing.drg import UNGROUPABLE, group
from clearing.hospital_payment import (
    CasePayment, CrossRegionBalance, HistoryCase, MonthPayment, PaymentCase, PaymentParams, WeightTable, case_payments,
    compute_weights, cross_region_balance, month_payment,
)
from clearing.medical_record import drg_case
from clearing.money import format_yuan, round_half_up_div
from clearing.smart_audit.library import RuleId, parse_rule_library
from clearing.smart_audit.rules import is_exempt
from services.cli import online, output
from services.cli.offline import InputError, blamed_on, read_text
from services.common import convert
from services.common.regions import load_payment_params, load_regions, parse_region_payment_params
from services.common.smart_audit import SHIPPED_LIBRARIES
from services.drg.reference import load_tables


@dataclass(frozen=True, slots=True)
class PaymentFile:
    path: Path
    params: PaymentParams


def load_payment_files(paths: list[Path]) -> list[PaymentFile]:
    """Parse every file before printing anything. A file named after a configured region (440100.toml) must name
    only that region's hospitals; any other name is checked for its own keys only."""
    regions = load_regions()
    files = []
    for path in paths:
        text = read_text(path, "payment")  # read errors name the path themselves
        with blamed_on(f"payment {path}"):
            params = parse_region_payment_params(text, regions.get(path.stem), "hospital_payment")
        files.append(PaymentFile(path, params))
    return files


def yuan(fen: int) -> str:
    return f"{fen // 100:,}.{fen % 100:02d}"


def show_payment_files(console: Console, files: list[PaymentFile]) -> None:
    """Per file, its budget, monthly advance terms and switches in one short block."""
    for item in files:
        params = item.params
        console.print(f"{item.path}: DRG budget {yuan(params.year_budget_fen)} yuan, provisional point value "
                      f"{yuan(params.provisional_point_value_fen)} yuan: OK", soft_wrap=True)
        levels = ", ".join(f"{level}: {bp}" for level, bp in sorted(params.level_coefficient_bp.items()))
        console.print(f"  advance {params.advance_share_bp} bp, hold-back {params.hold_back_bp} bp; "
                      f"level coefficients (bp) {levels}; cross-region stays in DRG: "
                      f"{'yes' if params.cross_region_in_drg else 'no (by item)'}", soft_wrap=True)
        budgets = ", ".join(f"{code} {yuan(budget.annual_fen)}" for code, budget in params.global_budgets.items())
        console.print(f"  单病种 prices {len(params.fixed_prices)}; 总额预付 {budgets or 'none'}", soft_wrap=True)


# ---- drg weights REGION --from-history (online: the treating agency's settled stays) -----------------------------

@dataclass(frozen=True, slots=True)
class GroupedStay:
    """A settled stay with its DRG ("0000" when ungroupable) and why it is not grouped."""

    stay: ta.SettledStay
    drg: str
    reason: str  # "" when grouped; an Ungroupable value, or "facts_missing" when sex/age/医保版 codes are lacking


def settled_stays(config_path: Path, region: str, period: str) -> list[ta.SettledStay]:
    """The stays settled at `region`'s hospitals counting in payout month or year `period` (ListSettledStays)."""
    config = online.load_config(config_path)
    answer = online.call(config, online.region_address(config, region, "REGION"),
                         lambda channel: treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel).ListSettledStays(
                             ta.ListSettledStaysRequest(period=period), timeout=online.CALL_TIMEOUT_S))
    return list(answer.stays)


def group_stays(stays: list[ta.SettledStay]) -> list[GroupedStay]:
    """Group each stay with the shipped CHS-DRG 1.1 tables, from the facts stored with it."""
    tables = load_tables()
    grouped = []
    for item in stays:
        stay = item.stay
        record = convert.stay_record(stay, "stay")
        los_days = (date.fromisoformat(stay.discharged_on) - date.fromisoformat(stay.admitted_on)).days
        case = drg_case(tuple(stay.diagnoses), record, los_days)
        if case is None:
            grouped.append(GroupedStay(item, UNGROUPABLE, FACTS_MISSING))
            continue
        result = group(case, tables)
        grouped.append(GroupedStay(item, result.drg, "" if result.grouped else str(result.ungroupable)))
    return grouped


FACTS_MISSING = "facts_missing"  # stored before the 病案首页 facts were (migration 0015), or demo diagnosis codes


@dataclass(frozen=True, slots=True)
class HistoryWeights:
    region: str
    year: str
    grouped: list[GroupedStay]
    table: WeightTable | None  # None when the year has no stay with a cost


def weights_from_history(config_path: Path, region: str, year: str) -> HistoryWeights:
    """The region's DRG weights from its own settled stays of `year` (病组权重: compute_weights over the stays'
    DRG and total cost; "0000" stays count in the all-cases average only)."""
    region = check_region(region, "REGION")
    year = check_year(year, "--year")
    params = load_payment_params(region)
    grouped = group_stays(settled_stays(config_path, region, year))
    history = [HistoryCase(item.drg, item.stay.total_fen) for item in grouped]
    table = None
    if any(case.cost_fen > 0 for case in history):
        table = compute_weights(history, params.weights_cases_min)
    return HistoryWeights(region, year, grouped, table)


def decimal_e4(value: int, places: int) -> str:
    """An integer in ten-thousandths as a decimal with `places` places (exact: the value has no finer digits)."""
    text = f"{value // 10_000}.{value % 10_000:04d}"
    return text[: len(text) - (4 - places)] if places < 4 else text


WEIGHT_COLUMNS = ("drg", "name_zh", "rw", "base_points", "cases", "average_cost_fen", "source")


def weight_rows(result: HistoryWeights) -> list[dict[str, Any]]:
    tables = load_tables()
    rows = []
    for weight in (result.table.weights.values() if result.table is not None else ()):
        rows.append({"drg": weight.drg, "name_zh": tables.drg_names.get(weight.drg), "rw": decimal_e4(weight.rw_e4, 4),
                     "base_points": decimal_e4(weight.base_points_e4, 2), "cases": weight.cases,
                     "average_cost_fen": weight.average_cost_fen, "source": weight.source.value})
    return rows


def grouping_summary(grouped: list[GroupedStay]) -> dict[str, Any]:
    """How many stays grouped, and the "0000" ones by reason (the issue's closing figure)."""
    reasons = Counter(item.reason for item in grouped if item.drg == UNGROUPABLE)
    grouped_count = len(grouped) - sum(reasons.values())
    return {"stays": len(grouped), "grouped": grouped_count,
            "grouped_share_bp": round_half_up_div(grouped_count * 10_000, len(grouped)) if grouped else 0,
            "ungroupable_by_reason": dict(sorted(reasons.items()))}


def weights_json(result: HistoryWeights) -> dict[str, Any]:
    table = result.table
    return {"region": result.region, "year": result.year, "grouping": grouping_summary(result.grouped),
            "all_cases": table.all_cases if table else len(result.grouped),
            "all_cost_fen": table.all_cost_fen if table else 0,
            "weights": weight_rows(result)}


def write_weights_csv(path: Path, result: HistoryWeights) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(WEIGHT_COLUMNS)
        for row in weight_rows(result):
            writer.writerow([row[column] for column in WEIGHT_COLUMNS])


def show_weights(console: Console, result: HistoryWeights) -> None:
    summary = grouping_summary(result.grouped)
    table = output.table(f"DRG weights (病组权重) of {result.region} from its settled stays of {result.year}",
                         "DRG", "name", "RW", "base points", "cases", "average cost ¥", "from",
                         numeric=("RW", "base points", "cases", "average cost ¥"))
    for row in weight_rows(result):
        table.add_row(row["drg"], row["name_zh"] or "", row["rw"], row["base_points"], str(row["cases"]),
                      format_yuan(row["average_cost_fen"]),
                      "its ADRG (fewer than the minimum cases)" if row["source"] == "adrg" else "its own cases")
    console.print(table)
    reasons = ", ".join(f"{reason} {count}" for reason, count in summary["ungroupable_by_reason"].items())
    console.print(f"{summary['stays']} stays, {summary['grouped']} grouped "
                  f"({decimal_e4(summary['grouped_share_bp'] * 100, 2)} %); 0000: {reasons or 'none'}. "
                  "A DRG not listed has no weight: its stays are paid by item.", soft_wrap=True)


# ---- payment month REGION MONTH (computed and listed; posting to the ledger is the next step) --------------------

def readmission_exemptions(region: str) -> tuple[str, ...]:
    """AUD-READMIT's exempt prefixes of the region's rule library (放化疗 Z51…): a readmission with such a principal
    diagnosis has a reason, so the earlier stay's points are not halved. The list counts even where the audit rule
    is disabled: it names the reasons, the rule only whether the audit flags the rest."""
    path = SHIPPED_LIBRARIES / f"{region}.toml"
    library = parse_rule_library(path.read_text(encoding="utf-8")) if path.is_file() else parse_rule_library("")
    return library.settings(RuleId.READMIT).exempt


def payment_case(item: GroupedStay, exempt: tuple[str, ...]) -> PaymentCase:
    stay = item.stay.stay
    admitted, discharged = date.fromisoformat(stay.admitted_on), date.fromisoformat(stay.discharged_on)
    principal = stay.diagnoses[0] if stay.diagnoses else ""
    return PaymentCase(
        case_id=item.stay.settlement_id, hospital=stay.hospital_code, hospital_level=stay.hospital_level,
        member_key=item.stay.member_key, drg=item.drg, principal_diagnosis=principal,
        main_procedure=stay.procedures[0] if stay.procedures else "", los_days=(discharged - admitted).days,
        admitted_on=admitted, discharged_on=discharged, cost_fen=item.stay.total_fen,
        cross_region=not item.stay.local, readmission_justified=bool(principal) and is_exempt(principal, exempt),
        fund_pay_fen=min(item.stay.fund_pay_fen, item.stay.total_fen))


@dataclass(frozen=True, slots=True)
class MonthResult:
    region: str
    month: str
    weights_year: str
    payments: tuple[CasePayment, ...]
    payment: MonthPayment
    cross_region: CrossRegionBalance
    grouping: dict[str, Any]


def compute_month(config_path: Path, region: str, month: str, weights_year: str | None) -> MonthResult:
    """The month's payment per hospital: the stays of payout month `month` paid with the weights of
    `weights_year`'s history (default: the month's own year, the only history a demo has)."""
    region = check_region(region, "REGION")
    month = check_month(month, "MONTH")
    weights_year = check_year(weights_year or month[:4], "--weights-year")
    load_payment_params(region)  # a region without parameters is refused before any call
    return month_from_stays(region, month, weights_year, settled_stays(config_path, region, weights_year),
                            settled_stays(config_path, region, month))


def month_from_stays(region: str, month: str, weights_year: str, history_stays: list[ta.SettledStay],
                     month_stays: list[ta.SettledStay]) -> MonthResult:
    """`compute_month` on stays already fetched (the demo fetches them on its own channel)."""
    params = load_payment_params(region)
    history = [HistoryCase(item.drg, item.stay.total_fen) for item in group_stays(history_stays)]
    if not any(case.cost_fen > 0 for case in history):
        raise InputError("--weights-year", f"{region} has no settled stay with a cost in {weights_year}")
    table = compute_weights(history, params.weights_cases_min)
    grouped = group_stays(month_stays)
    exempt = readmission_exemptions(region)
    payments = case_payments([payment_case(item, exempt) for item in grouped], table, params)
    fund_pay = {item.stay.settlement_id: item.stay.fund_pay_fen for item in grouped}
    return MonthResult(region, month, weights_year, payments, month_payment(payments, params),
                       cross_region_balance(payments, fund_pay, params.provisional_point_value_fen,
                                            params.deducts_patients),
                       grouping_summary(grouped))


# The table's methods column, short so a hospital's row stays one line (the JSON spells them out).
METHOD_LETTERS = {"normal": "N", "high_outlier": "H", "low_outlier": "L", "by_item": "I", "fixed_price": "F",
                  "global_budget": "G"}

MONTH_COLUMNS = ("hospital", "cases", "drg_cases", "points", "patients_fen", "advance_fen", "hold_back_fen",
                 "by_item_fen", "fixed_price_fen", "global_budget_fen", "paid_fen", "cost_fen")


def month_rows(result: MonthResult) -> list[dict[str, Any]]:
    methods: dict[str, Counter[str]] = {}
    for payment in result.payments:
        methods.setdefault(payment.hospital, Counter())[payment.method.value] += 1
    return [{"hospital": item.hospital, "cases": item.cases, "drg_cases": item.drg_cases,
             "points": decimal_e4(item.points_e4, 4), "patients_fen": item.patients_fen,
             "advance_fen": item.advance_fen,
             "hold_back_fen": item.hold_back_fen, "by_item_fen": item.by_item_fen,
             "fixed_price_fen": item.fixed_price_fen, "global_budget_fen": item.global_budget_fen,
             "paid_fen": item.paid_fen, "cost_fen": item.cost_fen,
             "methods": dict(sorted(methods.get(item.hospital, Counter()).items()))}
            for item in result.payment.hospitals]


def month_json(result: MonthResult) -> dict[str, Any]:
    balance = result.cross_region
    return {"region": result.region, "month": result.month, "weights_year": result.weights_year,
            "posted": False, "hospitals": month_rows(result),
            "total": {"points": decimal_e4(result.payment.points_e4, 4), "paid_fen": result.payment.paid_fen},
            "cross_region": {"cases": balance.cases, "points": decimal_e4(balance.points_e4, 4),
                             "drg_payment_fen": balance.drg_payment_fen, "fund_pay_fen": balance.fund_pay_fen,
                             "patients_fen": balance.patients_fen, "gain_fen": balance.gain_fen},
            "grouping": result.grouping}


def write_month_csv(path: Path, result: MonthResult) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(MONTH_COLUMNS)
        for row in month_rows(result):
            writer.writerow([row[column] for column in MONTH_COLUMNS])


def show_month(console: Console, result: MonthResult) -> None:
    table = output.table(f"DRG payment (月度预拨) of {result.region}'s hospitals, {result.month} (weights from "
                         f"{result.weights_year}; computed, not posted)",
                         "hospital", "methods", "cases", "points", "advance ¥", "调剂金 ¥", "by item ¥", "单病种 ¥",
                         "总额预付 ¥", "paid ¥",
                         numeric=("cases", "points", "advance ¥", "调剂金 ¥", "by item ¥", "单病种 ¥", "总额预付 ¥",
                                  "paid ¥"))
    for row in month_rows(result):
        table.add_row(row["hospital"], " ".join(f"{METHOD_LETTERS[name]}{count}" for name, count in row["methods"].items()),
                      str(row["cases"]), row["points"], format_yuan(row["advance_fen"]),
                      format_yuan(row["hold_back_fen"]), format_yuan(row["by_item_fen"]),
                      format_yuan(row["fixed_price_fen"]), format_yuan(row["global_budget_fen"]),
                      format_yuan(row["paid_fen"]))
    table.add_section()
    table.add_row("all", "", str(len(result.payments)), decimal_e4(result.payment.points_e4, 4), "", "", "", "", "",
                  format_yuan(result.payment.paid_fen))
    console.print(table)
    console.print("methods: " + ", ".join(f"{letter} {name}" for name, letter in METHOD_LETTERS.items()), soft_wrap=True)
    balance = result.cross_region
    verdict = "gains" if balance.gain_fen > 0 else "loses" if balance.gain_fen < 0 else "breaks even"
    summary = result.grouping
    reasons = ", ".join(f"{reason} {count}" for reason, count in summary["ungroupable_by_reason"].items())
    console.print(f"grouped {summary['grouped']} of {summary['stays']} stays "
                  f"({decimal_e4(summary['grouped_share_bp'] * 100, 2)} %); 0000: {reasons or 'none'}", soft_wrap=True)
    console.print(f"cross-region DRG stays: {balance.cases}, {decimal_e4(balance.points_e4, 4)} points; the insured "
                  f"regions paid {format_yuan(balance.fund_pay_fen)} yuan through clearing, the hospitals earn "
                  f"{format_yuan(balance.drg_payment_fen)} yuan from the fund at the provisional point value (their "
                  f"patients' {format_yuan(balance.patients_fen)} yuan deducted): the DRG budget "
                  f"{verdict} {format_yuan(abs(balance.gain_fen))} yuan (the provisional point value is illustrative "
                  "— docs/hospital-payment.md)", soft_wrap=True)
