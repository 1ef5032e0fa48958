"""The demo's written report: a markdown table per region pair and a PNG chart of who paid."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from clearing.money import format_yuan
from services.common.regions import load_regions

if TYPE_CHECKING:
    from services.cli.demo import PairRow


def write_markdown(path: Path, rows: list[PairRow], month: str, wall_s: float) -> None:
    names = {code: region.name for code, region in load_regions().items()}
    lines = [f"# Cross-region settlements, {month}", "",
             f"Demo run: {sum(r.stays for r in rows)} discharges settled at discharge, wall time {wall_s:.0f} s.", "",
             "| treating region | insured region | stays | total (¥) | fund paid (¥) | patient paid (¥) | spared |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {names.get(row.treating)} {row.treating} | {names.get(row.insured)} {row.insured} | "
                     f"{row.stays} | {format_yuan(row.total_fen)} | {format_yuan(row.fund_pay_fen)} | "
                     f"{format_yuan(row.psn_pay_fen)} | {row.spared_bp / 100:.2f} % |")
    total_fen = sum(r.total_fen for r in rows)
    fund_fen = sum(r.fund_pay_fen for r in rows)
    lines += ["", f"Patients advanced only their own share: the funds paid {format_yuan(fund_fen)} of "
              f"{format_yuan(total_fen)} yuan directly, money the patients no longer had to front and claim back "
              "months later in their home region (双重周期).", "", "![fund and patient shares](report.png)", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_chart(path: Path, rows: list[PairRow], month: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_insured: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        by_insured[row.insured][0] += row.fund_pay_fen
        by_insured[row.insured][1] += row.psn_pay_fen
    regions = sorted(by_insured)
    fund = [by_insured[r][0] / 100 for r in regions]  # yuan, for display only
    patient = [by_insured[r][1] / 100 for r in regions]
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
