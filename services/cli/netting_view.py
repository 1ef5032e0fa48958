"""Rendering a closed month for operators: the gross matrix, net positions and transfers (SPEC §7)."""

from __future__ import annotations

from clearinghouse.v1 import clearing_house_pb2 as ch
from rich.console import Console
from rich.table import Table

from clearing.money import format_yuan
from services.common.regions import chart_label, load_regions


def show_closing(console: Console, closing: ch.MonthClosing) -> None:
    names = {code: region.name for code, region in load_regions().items()}
    regions = sorted({p.region for p in closing.positions})
    amounts = {(c.insured_region, c.treating_region): c.amount_fen for c in closing.cells}
    matrix = Table(title=f"Gross matrix {closing.month}: insured region (row) owes treating region (column), ¥")
    matrix.add_column("insured ↓ / treating →")
    for region in regions:
        matrix.add_column(names.get(region, region), justify="right")
    for insured in regions:
        matrix.add_row(names.get(insured, insured), *(
            "—" if insured == treating else format_yuan(amounts.get((insured, treating), 0)) for treating in regions))
    console.print(matrix)
    positions = Table(title="Net positions (+ receives, − pays)")
    positions.add_column("region")
    positions.add_column("net ¥", justify="right")
    for item in closing.positions:
        positions.add_row(f"{names.get(item.region, item.region)} {item.region}", format_yuan(item.net_fen))
    console.print(positions)
    names["clearinghouse"] = "清算中心 clearing house"
    transfers = Table(title=f"Hub transfers, the ones paid and confirmed ({len(closing.hub_transfers)}; a direct "
                            f"plan would need {len(closing.direct_transfers)})")
    transfers.add_column("payer")
    transfers.add_column("payee")
    transfers.add_column("¥", justify="right")
    for item in closing.hub_transfers:
        transfers.add_row(names.get(item.payer, item.payer), names.get(item.payee, item.payee),
                          format_yuan(item.amount_fen))
    console.print(transfers)
    saved = closing.liquidity_saved_bp
    console.print(f"gross {format_yuan(closing.gross_total_fen)} ¥ · net {format_yuan(closing.net_total_fen)} ¥ · "
                  f"liquidity saved {saved // 100}.{saved % 100:02d} %")


def write_chart(path: str, closing: ch.MonthClosing) -> None:
    """Net positions as a bar chart (PNG or SVG by the file's suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    regions = [chart_label(p.region) for p in closing.positions]
    values = [p.net_fen / 100 for p in closing.positions]  # yuan, for display only
    figure, axes = plt.subplots(figsize=(9, 4.5))
    axes.bar(regions, values, color=["tab:green" if v >= 0 else "tab:red" for v in values])
    axes.axhline(0, color="black", linewidth=0.8)
    axes.set_xlabel("region")
    axes.set_ylabel("yuan")
    axes.set_title(f"Net positions, clearing month {closing.month} (+ receives, − pays)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
