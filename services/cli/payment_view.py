"""`clearing-admin payment …`: the treating agency's payments to its hospitals (医保支付, issue 13 items 3–6).

`payment validate FILE…` is offline: it parses each region's `[hospital_payment]` section
(services/regions/payment/<region>.toml) with the core's parser and prints a summary; a broken file is one
`error: payment FILE: hospital_payment.KEY: …` line and exit 2, nothing printed for the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from clearing.hospital_payment import PaymentParams
from services.cli.offline import blamed_on, read_text
from services.common.regions import load_regions, parse_region_payment_params


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
