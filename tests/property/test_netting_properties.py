"""Properties of monthly netting (SPEC §7) over random gross matrices: `clearing/netting.py`.

Matrices of up to 12 regions across four provinces (a municipality-style code such as 110000
included), cells up to ±10^12 fen, negative cells and repeated pairs included. A small test-side
model (TB's auditor) recomputes positions and applies transfers with its own loops. Runs are
repeatable (`derandomize=True`, no example database) and bounded (`max_examples=200`).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.money import BP_WHOLE
from clearing.netting import (
    CLEARING_HOUSE, Transfer, direct_plan, hub_plan, make_gross_matrix, net_positions, netting_report,
    province_distribution, province_matrix, province_transfers,
)

NETTING = settings(max_examples=200, derandomize=True, deadline=None, database=None)

PROVINCE_PREFIXES = ("11", "43", "44", "51")
CITY_SUFFIXES = ("0000", "0100", "0200", "0300")  # "0000": a region coded like its province (110000 北京市)
REGION_POOL = tuple(prefix + suffix for prefix in PROVINCE_PREFIXES for suffix in CITY_SUFFIXES)
AMOUNT_FEN_MAX = 10**12

amounts_fen = st.one_of(st.integers(0, AMOUNT_FEN_MAX), st.integers(-AMOUNT_FEN_MAX, AMOUNT_FEN_MAX),
                        st.sampled_from([0, 1, -1, 100]))


@st.composite
def raw_cells(draw) -> list[tuple[str, str, int]]:
    """Cells between 2–12 regions; a pair may repeat (settlements and reversals arrive separately)."""
    regions = draw(st.lists(st.sampled_from(REGION_POOL), min_size=2, max_size=12, unique=True))
    pairs = st.tuples(st.sampled_from(regions), st.sampled_from(regions)).filter(lambda pair: pair[0] != pair[1])
    return draw(st.lists(st.tuples(pairs, amounts_fen).map(lambda item: (*item[0], item[1])), max_size=40))


def model_positions(cells: list[tuple[str, str, int]]) -> dict[str, int]:
    """Auditor: Σ owed to r − Σ owed by r, straight from the raw cells."""
    positions: dict[str, int] = {}
    for insured_region, treating_region, amount_fen in cells:
        positions[treating_region] = positions.get(treating_region, 0) + amount_fen
        positions[insured_region] = positions.get(insured_region, 0) - amount_fen
    return positions


def model_apply(start: dict[str, int], transfers: tuple[Transfer, ...]) -> dict[str, int]:
    """Auditor: what each party is still owed after the transfers (paying raises, receiving lowers)."""
    left = dict(start)
    for transfer in transfers:
        assert transfer.amount_fen > 0
        left[transfer.payer] = left.get(transfer.payer, 0) + transfer.amount_fen
        left[transfer.payee] = left.get(transfer.payee, 0) - transfer.amount_fen
    return left


def province(region: str) -> str:
    return region[:2] + "0000"


@NETTING
@given(raw_cells())
def test_positions_match_the_model_and_sum_to_zero(cells) -> None:
    positions = net_positions(make_gross_matrix(cells))
    assert sum(positions.values()) == 0
    assert list(positions) == sorted(positions)
    expected = model_positions(cells)
    assert positions == expected  # every region that appears, zero positions included


@NETTING
@given(raw_cells())
def test_plans_settle_every_position_exactly(cells) -> None:
    positions = net_positions(make_gross_matrix(cells))
    parties = len(positions)
    hub = hub_plan(positions)
    direct = direct_plan(positions)
    assert set(model_apply(positions, hub).values()) <= {0}
    assert model_apply(positions, hub).get(CLEARING_HOUSE, 0) == 0
    assert set(model_apply(positions, direct).values()) <= {0}
    assert len(hub) <= parties
    assert len(direct) <= max(parties - 1, 0)
    assert len(hub) == sum(1 for position in positions.values() if position != 0)
    # direct: debtors only pay, creditors only receive, never through the clearing house
    assert all(positions[transfer.payer] < 0 < positions[transfer.payee] for transfer in direct)


@NETTING
@given(raw_cells(), st.randoms(use_true_random=False))
def test_same_cells_in_any_order_give_the_same_plans(cells, random) -> None:
    shuffled = list(cells)
    random.shuffle(shuffled)
    matrix = make_gross_matrix(cells)
    again = make_gross_matrix(shuffled)
    assert again == matrix
    assert hub_plan(net_positions(again)) == hub_plan(net_positions(matrix))
    assert direct_plan(net_positions(again)) == direct_plan(net_positions(matrix))
    # positions handed over in another key order plan the same too
    reordered = dict(reversed(list(net_positions(matrix).items())))
    assert direct_plan(reordered) == direct_plan(net_positions(matrix))
    assert hub_plan(reordered) == hub_plan(net_positions(matrix))


@NETTING
@given(raw_cells())
def test_net_total_never_exceeds_gross_total(cells) -> None:
    matrix = make_gross_matrix(cells)
    report = netting_report(matrix)
    assert 0 <= report.net_total_fen <= report.gross_total_fen
    assert 0 <= report.liquidity_saved_bp <= BP_WHOLE
    assert report.net_total_fen == sum(transfer.amount_fen for transfer in direct_plan(net_positions(matrix)))
    if report.gross_total_fen == 0:
        assert report.liquidity_saved_bp == 0


@NETTING
@given(raw_cells())
def test_two_levels_distribute_and_settle_exactly(cells) -> None:
    matrix = make_gross_matrix(cells)
    national = net_positions(province_matrix(matrix))
    assert sum(national.values()) == 0
    assert all(region == province(region) for region in national)
    provinces = sorted({province(region) for region in matrix.regions})
    distributed: dict[str, int] = {}
    local: tuple[Transfer, ...] = ()
    for code in provinces:
        cities = province_distribution(matrix, code)
        assert sum(cities.values()) == national.get(code, 0)
        assert all(province(city) == code for city in cities)
        distributed.update(cities)
        local += province_transfers(matrix, code)
    assert distributed == model_positions(cells)  # every city, in exactly one province
    # national plan + provincial transfers settle every city; a province only passes money on
    start = {**{code: 0 for code in provinces}, **distributed}  # a 110000-style city is its province's agency
    for plan in (hub_plan, direct_plan):
        assert set(model_apply(start, plan(national) + local).values()) <= {0}



@NETTING
@given(raw_cells())
def test_settling_then_clearing_every_region_leaves_every_account_where_it_started(cells) -> None:
    """Post every cell as settlements (issue 9 item 2), then each region's clearing: every payable, receivable,
    draw and the hub account are back at zero, whatever the matrix (cancels included as negative cells)."""
    from clearing.ledger import clearing_postings, settlement_postings

    distinct = [(insured, treating, amount) for insured, treating, amount in cells if insured != treating]
    balances: dict[str, int] = {}
    for insured, treating, amount in distinct:
        for posting in settlement_postings(treating, insured, abs(amount)):
            balances[posting.account] = balances.get(posting.account, 0) + posting.amount_fen * (1 if amount >= 0 else -1)
    regions = {region for insured, treating, _ in distinct for region in (insured, treating)}
    hub_total = 0
    for region in sorted(regions):
        postings = clearing_postings(region, distinct)
        assert sum(posting.amount_fen for posting in postings) == 0
        for posting in postings:
            balances[posting.account] = balances.get(posting.account, 0) + posting.amount_fen
            if posting.account == "clearinghouse/transfers":
                hub_total += posting.amount_fen
        positions = model_positions(distinct)
        assert sum(p.amount_fen for p in postings if p.account == "clearinghouse/transfers") == positions.get(region, 0)
    assert hub_total == 0
    assert {account: fen for account, fen in balances.items() if fen} == {}
