"""Monthly netting of inter-region obligations into net positions and transfers — SPEC §7.

The gross matrix `G[i][t]` of a closed month is what insured region i owes treating region t: the
`fund_pay` of i's members' settlements at t's hospitals, net of the reversals and adjustments
committed in that month. A cell can therefore be negative (reversals of earlier months exceed the
month's settlements); a negative `G[i][t] = −x` means t owes i back `x` and is, for every net
position, exactly the same as `G[t][i] = +x`. Nothing below assumes a cell is positive.

From the matrix this module derives, all in integer fen and all deterministic (sorted iteration,
ties broken by region code):

* net positions: Σ owed to r − Σ owed by r (> 0: r receives; < 0: r pays); they sum to exactly 0;
* two transfer plans, `hub_plan` (through the clearing house, ≤ N transfers) and `direct_plan`
  (largest debtor to largest creditor, ≤ N − 1 transfers), each asserted to settle every position;
* a `NettingReport`: gross total, net total and the liquidity saved in basis points;
* the two levels of "国家统一清分、省级统一清算": `province_matrix` keeps only the cells between
  provinces (first two digits + "0000") for national netting; `province_distribution` gives each
  city its position toward its province, and `province_transfers` the province's own transfers.
  The model: a province is the clearing hub of its cities. A city's position toward its province
  is its full net position (every cell, inside and across provinces); cells inside one province
  cancel in the province's sum, so Σ city positions = the province's national position, exactly.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from clearing.bill import check_region
from clearing.errors import InvalidField
from clearing.money import BP_WHOLE, round_half_up_div

CLEARING_HOUSE = "clearinghouse"  # the hub party of `hub_plan`; never a 6-digit region code
CELL_FEN_ABS_MAX = 2**63 - 1  # a cell comes from a Postgres bigint sum


@dataclass(frozen=True, slots=True)
class Cell:
    """One entry `G[insured_region][treating_region]` in fen; negative when reversals exceed settlements."""

    insured_region: str
    treating_region: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class GrossMatrix:
    """One month's obligations between regions: one cell per ordered pair, sorted by (insured, treating).

    A cell that sums to 0 is kept: its regions still take part (with whatever position they have).
    Build it with `make_gross_matrix`, which validates and aggregates.
    """

    cells: tuple[Cell, ...]

    def __post_init__(self) -> None:
        keys = [(cell.insured_region, cell.treating_region) for cell in self.cells]
        assert keys == sorted(keys), "cells are sorted by (insured_region, treating_region)"
        assert len(set(keys)) == len(keys), "one cell per ordered pair"
        assert all(insured != treating for insured, treating in keys), "no same-region cell"

    @property
    def regions(self) -> tuple[str, ...]:
        """Every region that appears in a cell, sorted."""
        return tuple(sorted({region for cell in self.cells
                             for region in (cell.insured_region, cell.treating_region)}))

    def amount_fen(self, insured_region: str, treating_region: str) -> int:
        """`G[insured_region][treating_region]`, 0 when the pair has no cell."""
        key = (insured_region, treating_region)
        index = bisect_left(self.cells, key, key=lambda cell: (cell.insured_region, cell.treating_region))
        if index < len(self.cells) and (self.cells[index].insured_region, self.cells[index].treating_region) == key:
            return self.cells[index].amount_fen
        return 0


@dataclass(frozen=True, slots=True)
class Transfer:
    """One instruction of a plan: `payer` pays `payee` `amount_fen` (> 0)."""

    payer: str
    payee: str
    amount_fen: int

    def __post_init__(self) -> None:
        assert self.amount_fen > 0, "a plan never holds a zero or negative transfer"
        assert self.payer != self.payee


@dataclass(frozen=True, slots=True)
class NettingReport:
    """How much netting saved (SPEC §7), in fen and basis points.

    `gross_total_fen` = Σ |G[i][t]|: what would move if every cell were paid on its own (a negative
    cell is a payment from t back to i, so it counts by its size). `net_total_fen` = Σ of the positive
    net positions: what must actually move. `liquidity_saved_bp` = round_half_up(10000 × (gross − net)
    / gross), 0 when gross is 0. Counting cells by size guarantees net ≤ gross, so 0 ≤ saved ≤ 10000;
    summing only positive cells would not (a lone negative cell would have gross 0 and net > 0).
    """

    gross_total_fen: int
    net_total_fen: int
    liquidity_saved_bp: int


# ---------------------------------------------------------------------------------------------
# The matrix and net positions

def make_gross_matrix(cells: Iterable[tuple[str, str, int]]) -> GrossMatrix:
    """Gross matrix (清分矩阵) from `(insured_region, treating_region, amount_fen)` cells, in any order.

    Cells of one ordered pair are summed (settlement rows, reversals and adjustments may arrive
    separately). Raises `InvalidField("cells[k]…")` for a malformed cell, a region that is not a
    6-digit code, or a same-region cell (same-region stays never reach the clearing house, §2).
    """
    checked: list[Cell] = []
    for index, item in enumerate(cells):
        checked.append(_check_cell(item, f"cells[{index}]"))
    return GrossMatrix(_aggregate(checked))


def net_positions(matrix: GrossMatrix) -> dict[str, int]:
    """Net position (净头寸) of every region in the matrix, in fen: Σ owed to r − Σ owed by r.

    Positive: r receives; negative: r pays; 0: r neither pays nor receives. Keys are sorted.
    A negative cell simply moves money the other way. The positions sum to exactly 0.
    """
    positions = dict.fromkeys(matrix.regions, 0)
    for cell in matrix.cells:
        positions[cell.treating_region] += cell.amount_fen
        positions[cell.insured_region] -= cell.amount_fen
    assert sum(positions.values()) == 0, "net positions sum to exactly 0"
    return positions


def netting_report(matrix: GrossMatrix) -> NettingReport:
    """Gross total, net total and liquidity saved of one matrix (see `NettingReport`)."""
    gross_total_fen = sum(abs(cell.amount_fen) for cell in matrix.cells)
    positions = net_positions(matrix)
    net_total_fen = sum(position for position in positions.values() if position > 0)
    assert net_total_fen == -sum(position for position in positions.values() if position < 0)
    assert 0 <= net_total_fen <= gross_total_fen, "netting never moves more than the cells would"
    saved_bp = 0 if gross_total_fen == 0 else round_half_up_div(
        (gross_total_fen - net_total_fen) * BP_WHOLE, gross_total_fen)
    assert 0 <= saved_bp <= BP_WHOLE
    return NettingReport(gross_total_fen, net_total_fen, saved_bp)


# ---------------------------------------------------------------------------------------------
# Transfer plans

def hub_plan(positions: Mapping[str, int]) -> tuple[Transfer, ...]:
    """Transfers through the clearing house (hub): every net debtor pays it, it pays every net creditor.

    Debtors' payments come first, then the payouts, each in region-code order; a region with
    position 0 makes no transfer. At most N transfers for N regions; asserted to settle exactly.
    """
    _check_positions(positions)
    transfers = _hub_transfers(positions, CLEARING_HOUSE)
    assert len(transfers) <= len(positions)
    assert_settles(positions, transfers)
    return transfers


def direct_plan(positions: Mapping[str, int]) -> tuple[Transfer, ...]:
    """Direct transfers: repeatedly the largest debtor pays the largest creditor the smaller of the two.

    Ties in size go to the lower region code, for the remainders too. Each step zeroes at least one
    party and the last zeroes two, so N regions need at most N − 1 transfers; a debtor only pays and
    a creditor only receives. Asserted to settle every position exactly.
    """
    _check_positions(positions)
    debtors = [(position, region) for region, position in positions.items() if position < 0]
    creditors = [(-position, region) for region, position in positions.items() if position > 0]
    heapq.heapify(debtors)  # most negative first, then the lower code
    heapq.heapify(creditors)  # largest credit first (stored negated), then the lower code
    transfers: list[Transfer] = []
    for _ in range(len(positions)):  # bound: every step empties at least one heap entry
        if not debtors:
            break
        debt_fen, debtor = heapq.heappop(debtors)
        credit_fen, creditor = heapq.heappop(creditors)
        amount_fen = min(-debt_fen, -credit_fen)
        transfers.append(Transfer(debtor, creditor, amount_fen))
        if -debt_fen > amount_fen:
            heapq.heappush(debtors, (debt_fen + amount_fen, debtor))
        if -credit_fen > amount_fen:
            heapq.heappush(creditors, (credit_fen + amount_fen, creditor))
    assert not debtors, "debts and credits are equal, so they run out together"
    assert not creditors
    assert len(transfers) <= max(len(positions) - 1, 0)
    assert_settles(positions, tuple(transfers))
    return tuple(transfers)


def remaining_positions(positions: Mapping[str, int], transfers: Iterable[Transfer]) -> dict[str, int]:
    """What each party is still owed after the transfers (a party absent from `positions` starts at 0).

    Paying reduces what a party owes (its position rises by the amount), receiving reduces what it is
    owed (its position falls). A plan settles when every result is 0, the clearing house's included.
    """
    remaining = dict(positions)
    for transfer in transfers:
        remaining[transfer.payer] = remaining.get(transfer.payer, 0) + transfer.amount_fen
        remaining[transfer.payee] = remaining.get(transfer.payee, 0) - transfer.amount_fen
    return dict(sorted(remaining.items()))


def assert_settles(positions: Mapping[str, int], transfers: tuple[Transfer, ...]) -> None:
    """Assert that applying `transfers` zeroes every position and leaves every hub at 0."""
    for party, left_fen in remaining_positions(positions, transfers).items():
        assert left_fen == 0, f"{party} is left with {left_fen} fen"


# ---------------------------------------------------------------------------------------------
# Two levels: national between provinces, provincial to cities (国家统一清分、省级统一清算)

def province_of(region: str) -> str:
    """The province (省) of a region code: its first two digits + "0000" (`440100` → `440000`)."""
    assert len(region) == 6, "a region code has six digits"
    return region[:2] + "0000"


def province_matrix(matrix: GrossMatrix) -> GrossMatrix:
    """The national-level matrix: cells aggregated between provinces; cells inside one province drop out."""
    cells = [Cell(province_of(cell.insured_region), province_of(cell.treating_region), cell.amount_fen)
             for cell in matrix.cells if province_of(cell.insured_region) != province_of(cell.treating_region)]
    national = GrossMatrix(_aggregate(cells))
    assert sum(abs(cell.amount_fen) for cell in national.cells) <= sum(abs(cell.amount_fen) for cell in matrix.cells)
    return national


def province_distribution(matrix: GrossMatrix, province: str) -> dict[str, int]:
    """Each city's position toward its province (省级清算), in fen, for every city of `province` in the matrix.

    A city's position is its full net position (`net_positions` of the whole matrix): the province
    pays a positive one and collects a negative one. Σ of the cities' positions equals the
    province's national position exactly (0 when it has no cross-province cell). Raises
    `InvalidField("province", …)` unless `province` is a 6-digit code ending in "0000".
    """
    _check_province(province)
    positions = net_positions(matrix)
    cities = {region: position for region, position in positions.items() if province_of(region) == province}
    national_fen = net_positions(province_matrix(matrix)).get(province, 0)
    assert sum(cities.values()) == national_fen, "the province distributes exactly its national position"
    return cities


def province_transfers(matrix: GrossMatrix, province: str) -> tuple[Transfer, ...]:
    """The province's transfers with its cities: debtor cities pay the province, it pays creditor cities.

    Together with the national plan these settle every city: the province ends at 0. A city whose
    code is the province's own (a municipality such as 110000) is the province's agency and makes
    no transfer to itself. Raises `InvalidField("province", …)` like `province_distribution`.
    """
    cities = province_distribution(matrix, province)
    national_fen = net_positions(province_matrix(matrix)).get(province, 0)
    transfers = _hub_transfers({city: position for city, position in cities.items() if city != province}, province)
    # Locally the province's own position is −(its national position): what it collects from the
    # nation it pays out to its cities, and the other way round.
    local = dict(cities)
    local[province] = local.get(province, 0) - national_fen
    assert sum(local.values()) == 0
    assert_settles(local, transfers)
    return transfers


# ---------------------------------------------------------------------------------------------
# Helpers

def _check_cell(item: object, field: str) -> Cell:
    if not isinstance(item, tuple) or len(item) != 3:
        raise InvalidField(field, "must be (insured_region, treating_region, amount_fen)")
    insured_region = check_region(item[0], f"{field}.insured_region")
    treating_region = check_region(item[1], f"{field}.treating_region")
    amount_fen = item[2]
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int):
        raise InvalidField(f"{field}.amount_fen", "must be an integer number of fen")
    if abs(amount_fen) > CELL_FEN_ABS_MAX:
        raise InvalidField(f"{field}.amount_fen", "is beyond a 64-bit amount of fen")
    if insured_region == treating_region:
        raise InvalidField(f"{field}.treating_region",
                           "equals insured_region: same-region settlements never reach the clearing house")
    return Cell(insured_region, treating_region, amount_fen)


def _aggregate(cells: Iterable[Cell]) -> tuple[Cell, ...]:
    """One cell per ordered pair, amounts summed, sorted by (insured, treating)."""
    totals: dict[tuple[str, str], int] = {}
    for cell in cells:
        key = (cell.insured_region, cell.treating_region)
        totals[key] = totals.get(key, 0) + cell.amount_fen
    return tuple(Cell(insured, treating, amount_fen) for (insured, treating), amount_fen in sorted(totals.items()))


def _check_positions(positions: Mapping[str, int]) -> None:
    for region, position in positions.items():
        check_region(region, f"positions[{region!r}]")
        if isinstance(position, bool) or not isinstance(position, int):
            raise InvalidField(f"positions[{region!r}]", "must be an integer number of fen")
    if sum(positions.values()) != 0:
        raise InvalidField("positions", "must sum to exactly 0")


def _check_province(province: object) -> None:
    check_region(province, "province")
    assert isinstance(province, str)
    if not province.endswith("0000"):
        raise InvalidField("province", "must be a province code: two digits then 0000, such as 440000")


def _hub_transfers(positions: Mapping[str, int], hub: str) -> tuple[Transfer, ...]:
    """Debtors pay `hub` (region order), then `hub` pays creditors (region order); zeros make none."""
    ordered = sorted(positions.items())
    pay_in = [Transfer(region, hub, -position) for region, position in ordered if position < 0]
    pay_out = [Transfer(hub, region, position) for region, position in ordered if position > 0]
    return tuple(pay_in + pay_out)
