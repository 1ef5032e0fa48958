"""DRG weights from a region's own history (病组权重与基准点数), issue 13 item 3.

    RW(g)            = average cost of g's cases ÷ average cost of all cases      (病组权重)
    base points(g)   = RW(g) × 100                                               (基准点数)

Exactness and roundings (all integer):
* RW is kept to 4 decimals, as published tables are: `rw_e4 = round_half_up(S_g × N × 10000 / (n_g × S))`
  from the exact sums (S_g, n_g: the group's total cost and cases; S, N: every case's), never from rounded
  averages. So base points have 2 decimals and `base_points_e4` (ten-thousandths of a point) = `rw_e4 × 100`.
* A group's average cost (次均费用), which the outlier tests compare against, is
  `round_half_up(S_g / n_g)` fen.
* A group with fewer than `cases_min` (5) history cases takes its ADRG's figures: the ADRG is the DRG code's
  first three characters (ER31 → ER3), pooled over every DRG of that ADRG. If the ADRG also has fewer than
  `cases_min` cases, the group gets no weight: its stays are paid by item (按项目) until history accrues, the
  same as an ungroupable stay. (A region may instead decide such groups by 特病单议; that is an operator's act.)
* A group whose average cost rounds to 0 fen gets no weight either.
* Ungroupable stays ("0000") count in the all-cases average (they are cases of the region) but get no weight.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from clearing.drg import UNGROUPABLE
from clearing.errors import InvalidField
from clearing.money import BP_WHOLE, round_half_up_div

POINTS_SCALE = 10_000  # points are integer ten-thousandths (points_e4)
BASE_POINTS_PER_RW = 100  # 基准点数 = RW × 100
HISTORY_CASES_MAX = 50_000_000
COST_FEN_MAX = 10**12  # one stay of ten billion yuan is a typo


class WeightSource(StrEnum):
    DRG = "drg"  # the group's own history
    ADRG = "adrg"  # fewer than cases_min cases: the ADRG's pooled history


@dataclass(frozen=True, slots=True)
class HistoryCase:
    """One settled stay of the history: its DRG (or "0000") and its total cost (医疗总费用) in fen."""

    drg: str
    cost_fen: int


@dataclass(frozen=True, slots=True)
class Weight:
    """One DRG's published figures."""

    drg: str
    rw_e4: int  # RW × 10000, rounded half up
    average_cost_fen: int  # 次均费用 of the cases the weight comes from, rounded half up
    cases: int  # history cases the weight comes from (the ADRG's when source is ADRG)
    source: WeightSource

    @property
    def base_points_e4(self) -> int:
        """基准点数 in ten-thousandths of a point: RW × 100, exact from the 4-decimal RW."""
        return self.rw_e4 * BASE_POINTS_PER_RW


@dataclass(frozen=True, slots=True)
class WeightTable:
    """The region's weights (DRG code → Weight, sorted) and the all-cases figures they were computed from."""

    weights: Mapping[str, Weight]
    all_cases: int
    all_cost_fen: int

    def weight_of(self, drg: str) -> Weight | None:
        return self.weights.get(drg)


def adrg_of(drg: str) -> str:
    """ADRG of a CHS-DRG code: its first three characters (ER31 → ER3)."""
    assert len(drg) == 4 and drg != UNGROUPABLE
    return drg[:3]


def compute_weights(history: Iterable[HistoryCase], cases_min: int = 5) -> WeightTable:
    """RW and base points of every DRG that has history (see the module docstring for the roundings).

    Raises `InvalidField("history[k]…")` for a malformed case and `InvalidField("history")` when there are
    no cases or their total cost is 0 (no average to divide by)."""
    assert cases_min >= 1
    sums: dict[str, list[int]] = {}  # drg → [cost_fen, cases]
    all_cases = 0
    all_cost_fen = 0
    for index, case in enumerate(history):
        if index >= HISTORY_CASES_MAX:
            raise InvalidField("history", f"must have at most {HISTORY_CASES_MAX} cases")
        drg, cost_fen = check_history_case(case, f"history[{index}]")
        all_cases += 1
        all_cost_fen += cost_fen
        if drg != UNGROUPABLE:
            totals = sums.setdefault(drg, [0, 0])
            totals[0] += cost_fen
            totals[1] += 1
    if all_cases == 0 or all_cost_fen == 0:
        raise InvalidField("history", "needs at least one case with a positive cost")
    adrg_sums: dict[str, list[int]] = {}
    for drg, (cost_fen, cases) in sums.items():
        totals = adrg_sums.setdefault(adrg_of(drg), [0, 0])
        totals[0] += cost_fen
        totals[1] += cases
    weights: dict[str, Weight] = {}
    for drg in sorted(sums):
        cost_fen, cases = sums[drg]
        source = WeightSource.DRG
        if cases < cases_min:
            cost_fen, cases = adrg_sums[adrg_of(drg)]
            source = WeightSource.ADRG
            if cases < cases_min:
                continue  # no weight: paid by item (module docstring)
        if round_half_up_div(cost_fen, cases) == 0:
            continue  # an average cost of 0 fen: nothing to weigh or to measure outliers against
        weights[drg] = Weight(
            drg=drg,
            rw_e4=round_half_up_div(cost_fen * all_cases * BP_WHOLE, cases * all_cost_fen),
            average_cost_fen=round_half_up_div(cost_fen, cases),
            cases=cases,
            source=source,
        )
    return WeightTable(weights, all_cases, all_cost_fen)


def check_history_case(case: object, field: str) -> tuple[str, int]:
    if not isinstance(case, HistoryCase):
        raise InvalidField(field, "must be a HistoryCase")
    if not isinstance(case.drg, str) or len(case.drg) != 4:
        raise InvalidField(f"{field}.drg", 'must be a 4-character CHS-DRG code such as ER31, or "0000"')
    cost_fen = case.cost_fen
    if isinstance(cost_fen, bool) or not isinstance(cost_fen, int) or not 0 <= cost_fen <= COST_FEN_MAX:
        raise InvalidField(f"{field}.cost_fen", f"must be an integer number of fen between 0 and {COST_FEN_MAX}")
    return case.drg, cost_fen


assert BP_WHOLE == POINTS_SCALE  # rw_e4 × 100 = base points in e4 relies on both scales being 10^4
