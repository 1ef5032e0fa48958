"""`clearing-admin payment …`: the treating agency's payments to its hospitals (医保支付, issue 13 items 3–6).

`payment validate FILE…` is offline: it parses each region's `[hospital_payment]` section
(services/regions/payment/<region>.toml) with the core's parser and prints a summary; a broken file is one
`error: payment FILE: hospital_payment.KEY: …` line and exit 2, nothing printed for the others.
`payment month` and `payment year` ask the region's treating agency (CloseHospitalPaymentMonth/Year), which
computes them from its own settled stays: without `--post` a preview (validate_only), with it posted once.
"""

from __future__ import annotations

import csv
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import treating_agency_pb2_grpc
from rich.console import Console

from clearing.bill import check_region
from clearing.dates import check_month, check_year
from clearing.hospital_payment import HistoryCase, PaymentParams, WeightTable, compute_weights
from clearing.money import format_yuan, round_half_up_div
from services.cli import online, output
from services.cli.offline import InputError, blamed_on, read_text
from services.common.hospital_payment import GroupedStay, group_stays, grouping_summary
from services.common.regions import load_payment_params, load_regions, parse_region_payment_params
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

def settled_stays(config_path: Path, region: str, period: str) -> list[ta.SettledStay]:
    """The stays settled at `region`'s hospitals counting in payout month or year `period` (ListSettledStays)."""
    config = online.load_config(config_path)
    answer = online.call(config, online.region_address(config, region, "REGION"),
                         lambda channel: treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel).ListSettledStays(
                             ta.ListSettledStaysRequest(period=period), timeout=online.CALL_TIMEOUT_S))
    return list(answer.stays)


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


# ---- payment month REGION MONTH [--post] (CloseHospitalPaymentMonth at the treating agency) ------------------------

def month_request(region: str, month: str, weights_year: str | None, special_review: list[str],
                  post: bool) -> ta.CloseHospitalPaymentMonthRequest:
    """Checked here first, so a typo is one line naming the option before any call; the agency checks again."""
    check_region(region, "REGION")
    month = check_month(month, "MONTH")
    weights_year = check_year(weights_year, "--weights-year") if weights_year else ""
    for case_id in special_review:
        try:
            if str(uuid.UUID(case_id)) != case_id:
                raise ValueError
        except ValueError:
            raise InputError("--special-review", f"{case_id} is not a settlement id (a UUID)") from None
    return ta.CloseHospitalPaymentMonthRequest(month=month, weights_year=weights_year,
                                               special_review_case_ids=special_review, validate_only=not post)


def close_month(config_path: Path, region: str, request: ta.CloseHospitalPaymentMonthRequest
                ) -> ta.CloseHospitalPaymentMonthResponse:
    """The month computed (validate_only) or posted by the region's treating agency."""
    config = online.load_config(config_path)
    return online.call(config, online.region_address(config, region, "REGION"),
                       lambda channel: treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel)
                       .CloseHospitalPaymentMonth(request, timeout=online.CALL_TIMEOUT_S))


# The table's methods column, short so a hospital's row stays one line (the JSON spells them out).
METHOD_LETTERS = {"drg": "D", "high_outlier": "H", "low_outlier": "L", "by_item": "I", "fixed_price": "F",
                  "global_budget": "G"}

MONTH_COLUMNS = ("hospital", "cases", "drg_cases", "points", "patients_fen", "advance_fen", "hold_back_fen",
                 "by_item_fen", "fixed_price_fen", "global_budget_fen", "visits_fen", "paid_fen", "receivable_fen",
                 "cost_fen")


def month_rows(answer: ta.CloseHospitalPaymentMonthResponse) -> list[dict[str, Any]]:
    return [{"hospital": item.hospital_code, "cases": item.cases, "drg_cases": item.drg_cases,
             "points": decimal_e4(item.points_e4, 4), "patients_fen": item.patients_fen,
             "advance_fen": item.advance_fen, "hold_back_fen": item.hold_back_fen, "by_item_fen": item.by_item_fen,
             "fixed_price_fen": item.fixed_price_fen, "global_budget_fen": item.global_budget_fen,
             "visits_fen": item.visits_fen, "paid_fen": item.paid_fen, "receivable_fen": item.receivable_fen,
             "cost_fen": item.cost_fen,
             "methods": {name: count for name, count in (
                 ("drg", item.drg_cases), ("high_outlier", item.high_outlier_cases),
                 ("low_outlier", item.low_outlier_cases), ("by_item", item.by_item_cases),
                 ("fixed_price", item.fixed_price_cases), ("global_budget", item.global_budget_cases)) if count}}
            for item in answer.hospitals]


def month_json(region: str, answer: ta.CloseHospitalPaymentMonthResponse) -> dict[str, Any]:
    return {"region": region, "month": answer.month, "weights_year": answer.weights_year,
            "special_review_case_ids": list(answer.special_review_case_ids), "budget_form": answer.budget_form,
            "provisional_point_value_fen": answer.provisional_point_value_fen,
            "posted": answer.posted, "hospitals": month_rows(answer),
            "grouping": {"stays": answer.stays, "grouped": answer.grouped,
                         "ungroupable_by_reason": dict(sorted(answer.ungroupable_by_reason.items()))},
            "total": {"points": decimal_e4(sum(item.points_e4 for item in answer.hospitals), 4),
                      "paid_fen": answer.paid_fen},
            "cross_region": cross_region_json(answer.cross_region)}


def cross_region_json(balance: ta.CrossRegionGainLoss) -> dict[str, Any]:
    return {"cases": balance.cases, "points": decimal_e4(balance.points_e4, 4),
            "drg_payment_fen": balance.drg_payment_fen, "fund_pay_fen": balance.fund_pay_fen,
            "patients_fen": balance.patients_fen, "gain_fen": balance.gain_fen}


def write_rows_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row[column] for column in columns])


def write_month_csv(path: Path, answer: ta.CloseHospitalPaymentMonthResponse) -> None:
    write_rows_csv(path, MONTH_COLUMNS, month_rows(answer))


def show_month(console: Console, region: str, answer: ta.CloseHospitalPaymentMonthResponse) -> None:
    state = "posted" if answer.posted else "computed, not posted (--post posts it)"
    table = output.table(f"DRG payment (月度预拨) of {region}'s hospitals, {answer.month} (weights from "
                         f"{answer.weights_year}; {state})",
                         "hospital", "methods", "cases", "points", "advance ¥", "调剂金 ¥", "by item ¥", "单病种 ¥",
                         "总额预付 ¥", "visits ¥", "paid ¥",
                         numeric=("cases", "points", "advance ¥", "调剂金 ¥", "by item ¥", "单病种 ¥", "总额预付 ¥",
                                  "visits ¥", "paid ¥"))
    rows = month_rows(answer)
    for row in rows:
        table.add_row(row["hospital"], " ".join(f"{METHOD_LETTERS[name]}{count}" for name, count in row["methods"].items()),
                      str(row["cases"]), row["points"], format_yuan(row["advance_fen"]),
                      format_yuan(row["hold_back_fen"]), format_yuan(row["by_item_fen"]),
                      format_yuan(row["fixed_price_fen"]), format_yuan(row["global_budget_fen"]),
                      format_yuan(row["visits_fen"]), format_yuan(row["paid_fen"]))
    table.add_section()
    table.add_row("all", "", str(sum(row["cases"] for row in rows)),
                  decimal_e4(sum(item.points_e4 for item in answer.hospitals), 4), "", "", "", "", "", "",
                  format_yuan(answer.paid_fen))
    console.print(table)
    console.print("methods: " + ", ".join(f"{letter} {name}" for name, letter in METHOD_LETTERS.items())
                  + f"; budget form {answer.budget_form}", soft_wrap=True)
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(answer.ungroupable_by_reason.items()))
    share = decimal_e4(round_half_up_div(answer.grouped * 1_000_000, answer.stays), 2) if answer.stays else "0.00"
    console.print(f"grouped {answer.grouped} of {answer.stays} stays ({share} %); 0000: {reasons or 'none'}",
                  soft_wrap=True)
    balance = answer.cross_region
    verdict = "gains" if balance.gain_fen > 0 else "loses" if balance.gain_fen < 0 else "breaks even"
    console.print(f"cross-region DRG stays: {balance.cases}, {decimal_e4(balance.points_e4, 4)} points; the insured "
                  f"regions paid {format_yuan(balance.fund_pay_fen)} yuan through clearing, the fund pays the "
                  f"hospitals {format_yuan(balance.drg_payment_fen)} yuan for them at the provisional point value "
                  f"(their patients' {format_yuan(balance.patients_fen)} yuan deducted): the DRG budget {verdict} "
                  f"{format_yuan(abs(balance.gain_fen))} yuan (the provisional point value is illustrative — "
                  "docs/hospital-payment.md)", soft_wrap=True)


# ---- payment year REGION YEAR [--post] (CloseHospitalPaymentYear at the treating agency) --------------------------

def close_year(config_path: Path, region: str, year: str, post: bool) -> ta.CloseHospitalPaymentYearResponse:
    """The year end computed (validate_only: a year-to-date preview while the year is unfinished) or posted."""
    check_region(region, "REGION")
    request = ta.CloseHospitalPaymentYearRequest(year=check_year(year, "YEAR"), validate_only=not post)
    config = online.load_config(config_path)
    return online.call(config, online.region_address(config, region, "REGION"),
                       lambda channel: treating_agency_pb2_grpc.TreatingAgencyServiceStub(channel)
                       .CloseHospitalPaymentYear(request, timeout=online.CALL_TIMEOUT_S))


YEAR_COLUMNS = ("hospital", "global_budget", "points", "cost_fen", "payment_fen", "retained_fen", "shared_fen",
                "final_fen", "patients_fen", "fund_final_fen", "advances_paid_fen", "held_back_fen", "settlement_fen")


def year_rows(answer: ta.CloseHospitalPaymentYearResponse) -> list[dict[str, Any]]:
    return [{"hospital": item.hospital_code, "global_budget": item.global_budget,
             "points": decimal_e4(item.points_e4, 4), "cost_fen": item.cost_fen, "payment_fen": item.payment_fen,
             "retained_fen": item.retained_fen, "shared_fen": item.shared_fen, "final_fen": item.final_fen,
             "patients_fen": item.patients_fen, "fund_final_fen": item.fund_final_fen,
             "advances_paid_fen": item.advances_paid_fen, "held_back_fen": item.held_back_fen,
             "settlement_fen": item.settlement_fen} for item in answer.hospitals]


def year_json(region: str, answer: ta.CloseHospitalPaymentYearResponse) -> dict[str, Any]:
    return {"region": region, "year": answer.year, "year_to_date": answer.year_to_date,
            "months_posted": answer.months_posted, "budget_form": answer.budget_form,
            "fund_budget_fen": answer.fund_budget_fen, "gross_budget_fen": answer.gross_budget_fen,
            "point_value": {"exact_fen": answer.point_value_exact,
                            "fen": decimal_e4(answer.point_value_fen_e4, 4)},
            "posted": answer.posted, "hospitals": year_rows(answer),
            "cross_region": cross_region_json(answer.cross_region)}


def write_year_csv(path: Path, answer: ta.CloseHospitalPaymentYearResponse) -> None:
    write_rows_csv(path, YEAR_COLUMNS, year_rows(answer))


def year_label(answer: ta.CloseHospitalPaymentYearResponse) -> str:
    if answer.year_to_date:
        return f"year-to-date preview after {answer.months_posted} posted month(s), against the budget × k ÷ 12"
    return "posted" if answer.posted else "computed, not posted (--post posts it)"


def show_year(console: Console, region: str, answer: ta.CloseHospitalPaymentYearResponse) -> None:
    table = output.table(f"Year-end clearing (年终清算) of {region}'s hospitals, {answer.year} ({year_label(answer)})",
                         "hospital", "points", "cost ¥", "payment ¥", "结余留用 ¥", "超支分担 ¥", "final ¥",
                         "patients ¥", "advances ¥", "settlement ¥",
                         numeric=("points", "cost ¥", "payment ¥", "结余留用 ¥", "超支分担 ¥", "final ¥", "patients ¥",
                                  "advances ¥", "settlement ¥"))
    for item in answer.hospitals:
        table.add_row(item.hospital_code + (" 总额预付" if item.global_budget else ""), decimal_e4(item.points_e4, 4),
                      format_yuan(item.cost_fen), format_yuan(item.payment_fen), format_yuan(item.retained_fen),
                      format_yuan(item.shared_fen), format_yuan(item.final_fen), format_yuan(item.patients_fen),
                      format_yuan(item.advances_paid_fen),
                      format_yuan(item.settlement_fen) + (" 追回" if item.settlement_fen < 0 else ""))
    console.print(table)
    preview = f"year-to-date preview ({answer.months_posted} month(s) posted): " if answer.year_to_date else ""
    console.print(f"{preview}point value {decimal_e4(answer.point_value_fen_e4, 4)} fen a point (exactly "
                  f"{answer.point_value_exact}); fund budget {format_yuan(answer.fund_budget_fen)} yuan, gross "
                  f"{format_yuan(answer.gross_budget_fen)} yuan (budget form {answer.budget_form})", soft_wrap=True)
    balance = answer.cross_region
    verdict = "gains" if balance.gain_fen > 0 else "loses" if balance.gain_fen < 0 else "breaks even"
    console.print(f"cross-region DRG stays of the year: {balance.cases}; the insured regions paid "
                  f"{format_yuan(balance.fund_pay_fen)} yuan, the fund pays {format_yuan(balance.drg_payment_fen)} "
                  f"yuan for them at the year's point value: the DRG budget {verdict} "
                  f"{format_yuan(abs(balance.gain_fen))} yuan", soft_wrap=True)


def write_year_chart(path: Path, region: str, answer: ta.CloseHospitalPaymentYearResponse) -> None:
    """Per DRG hospital: its points (left axis) and its cost and payment (right axis, yuan; display only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = [item for item in answer.hospitals if not item.global_budget]
    codes = [item.hospital_code for item in items]
    positions = list(range(len(codes)))
    figure, points_axis = plt.subplots(figsize=(max(6, 1.6 * len(codes) + 3), 4.5))
    points_axis.bar([x - 0.27 for x in positions], [item.points_e4 / 10_000 for item in items], width=0.27,
                    color="tab:gray", label="points")
    points_axis.set_ylabel("points")
    money_axis = points_axis.twinx()
    money_axis.bar(positions, [item.cost_fen / 100 for item in items], width=0.27, color="tab:orange", label="cost")
    money_axis.bar([x + 0.27 for x in positions], [item.final_fen / 100 for item in items], width=0.27,
                   color="tab:blue", label="payment (final)")
    money_axis.set_ylabel("yuan")
    points_axis.set_xticks(positions, codes)
    handles = points_axis.get_legend_handles_labels()[0] + money_axis.get_legend_handles_labels()[0]
    points_axis.legend(handles, [handle.get_label() for handle in handles], loc="upper left", fontsize=8)
    points_axis.set_title(f"{region} {answer.year}: points, cost and payment per hospital ({year_label(answer)})",
                          fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
