"""The demo's written report: a markdown table per region pair and a PNG chart of who paid."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from clearinghouse.v1 import clearing_house_pb2 as ch

from clearing.money import format_yuan
from services.common.regions import chart_label, load_regions

if TYPE_CHECKING:
    from services.cli.demo import DemoResult, PairRow


def write_markdown(path: Path, result: DemoResult) -> None:
    names = {code: region.name for code, region in load_regions().items()}
    rows, month, closing = result.rows, result.month, result.closing

    def region(code: str) -> str:
        return f"{names.get(code, code)} {code}"

    lines = [f"# Cross-region settlements of {month}", "",
             f"Demo run: {sum(r.stays for r in rows)} stays discharged in {month}, wall time {result.wall_s:.0f} s.", "",
             "**Two months, one here.** A stay's *discharge month* is the month of its discharge day; its *clearing "
             "month* is the month its settlement committed in (Asia/Shanghai; docs/architecture.md, the services' clock). A hospital settles at "
             f"discharge (即时结算), so here both are {month}; a settlement retried or recorded days later (after a "
             "lost answer, a reversal and a new settle) would clear in the month it finally committed in.", "",
             "## The month's stays, by region pair", "",
             "| treating region | insured region | stays | total (¥) | fund paid (¥) | patient paid (¥) | spared |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {region(row.treating)} | {region(row.insured)} | "
                     f"{row.stays} | {format_yuan(row.total_fen)} | {format_yuan(row.fund_pay_fen)} | "
                     f"{format_yuan(row.psn_pay_fen)} | {row.spared_bp / 100:.2f} % |")
    total_fen = sum(r.total_fen for r in rows)
    fund_fen = sum(r.fund_pay_fen for r in rows)
    lines += ["", f"Patients advanced only their own share: the funds paid {format_yuan(fund_fen)} of "
              f"{format_yuan(total_fen)} yuan directly, money the patients no longer had to front and claim back "
              "months later in their home region (双重周期).", "", "![fund and patient shares](report.png)", ""]
    saved = closing.liquidity_saved_bp
    lines += [f"## Clearing month {month}: closed, netted, paid", "",
              f"The clearing house closed {month} once it was over. Netting turned gross obligations of "
              f"{format_yuan(closing.gross_total_fen)} yuan between regions into net transfers of "
              f"{format_yuan(closing.net_total_fen)} yuan ({saved // 100}.{saved % 100:02d} % less money moving).", "",
              "| region | net position (¥) | hub transfer | paid | reference |", "|---|---:|---|---|---|"]
    for item in result.status.transfers:
        direction = ("pays the clearing house" if item.net_fen < 0 else "is paid by the clearing house") \
            if item.HasField("transfer") else "nothing to move"
        lines.append(f"| {region(item.region)} | {format_yuan(item.net_fen)} | {direction} | "
                     f"{'yes' if item.cleared else 'no'} | {item.reference} |")
    state = "settled: every region's obligations of the month are cleared (已清算)" \
        if result.status.state == ch.MONTH_STATE_SETTLED else "awaiting payment (待拨付)"
    lines += ["", f"Month state: **{state}**.", "", "![net positions](netting.png)", "",
              "## Prepayments (预付金)", "",
              "Every settlement draws its fund share on the insured region's prepayment; when the region's transfer "
              "is confirmed, the month's draws are given back and the prepayment is re-sized from its recent outflow.",
              "", "| insured region | balance before the close (¥) | used | after the month is cleared (¥) | "
              "required (¥) | used |", "|---|---:|---:|---:|---:|---:|"]
    after = {item.insured_region: item for item in result.prepayments_after}
    for item in result.prepayments_before:
        later = after.get(item.insured_region, item)
        lines.append(f"| {region(item.insured_region)} | {format_yuan(item.balance_fen)} | {item.usage_bp / 100:.2f} % | "
                     f"{format_yuan(later.balance_fen)} | {format_yuan(later.required_fen)} | "
                     f"{later.usage_bp / 100:.2f} % |")
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def write_chart(path: Path, rows: list[PairRow], month: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_insured: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        by_insured[row.insured][0] += row.fund_pay_fen
        by_insured[row.insured][1] += row.psn_pay_fen
    codes = sorted(by_insured)
    regions = [chart_label(code) for code in codes]
    fund = [by_insured[r][0] / 100 for r in codes]  # yuan, for display only
    patient = [by_insured[r][1] / 100 for r in codes]
    figure, axes = plt.subplots(figsize=(9, 4.5))
    axes.bar(regions, fund, label="paid by the funds")
    axes.bar(regions, patient, bottom=fund, label="paid by patients")
    axes.set_xlabel("insured region")
    axes.set_ylabel("yuan")
    axes.set_title(f"Who paid for the stays settled in {month}, by insured region")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
