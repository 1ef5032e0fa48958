"""Monthly netting (SPEC §7): `clearing/netting.py`, worked by hand.

Every expected number below is written out in the comments; none is computed with the code under test.
"""

from __future__ import annotations

import pytest

from clearing.errors import InvalidField
from clearing.netting import (
    CLEARING_HOUSE, Cell, GrossMatrix, NettingReport, Transfer, assert_settles, direct_plan, hub_plan,
    make_gross_matrix, net_positions, netting_report, province_distribution, province_matrix, province_of,
    province_transfers, remaining_positions,
)

CHANGSHA, GUANGZHOU, CHENGDU = "430100", "440100", "510100"

# Three regions in three provinces. G[i][t] = what insured i owes treating t (fen).
#              → 430100  → 440100  → 510100
#   430100        —        1000      300      owes 1300
#   440100       200        —        500      owes  700
#   510100       400       100        —       owes  500
#   owed to      600      1100       800      gross 2500
THREE = [(CHANGSHA, GUANGZHOU, 1000), (CHANGSHA, CHENGDU, 300), (GUANGZHOU, CHANGSHA, 200),
         (GUANGZHOU, CHENGDU, 500), (CHENGDU, CHANGSHA, 400), (CHENGDU, GUANGZHOU, 100)]


# --- the matrix ---------------------------------------------------------------------------------

def test_matrix_is_sorted_and_sums_duplicate_pairs() -> None:
    matrix = make_gross_matrix([(GUANGZHOU, CHANGSHA, 150), (CHANGSHA, GUANGZHOU, 70), (GUANGZHOU, CHANGSHA, 50)])
    # 150 + 50 = 200 for 440100 → 430100; sorted by (insured, treating)
    assert matrix.cells == (Cell(CHANGSHA, GUANGZHOU, 70), Cell(GUANGZHOU, CHANGSHA, 200))
    assert matrix.amount_fen(GUANGZHOU, CHANGSHA) == 200
    assert matrix.amount_fen(CHANGSHA, CHENGDU) == 0  # no cell
    assert matrix.regions == (CHANGSHA, GUANGZHOU)


def test_a_pair_summing_to_zero_keeps_its_regions() -> None:
    matrix = make_gross_matrix([(CHANGSHA, GUANGZHOU, 500), (CHANGSHA, GUANGZHOU, -500)])
    assert matrix.cells == (Cell(CHANGSHA, GUANGZHOU, 0),)
    assert net_positions(matrix) == {CHANGSHA: 0, GUANGZHOU: 0}
    assert hub_plan(net_positions(matrix)) == ()
    assert direct_plan(net_positions(matrix)) == ()


@pytest.mark.parametrize(("cells", "field"), [
    ([(CHANGSHA, CHANGSHA, 100)], "cells[0].treating_region"),  # same region never reaches us
    ([(CHANGSHA, GUANGZHOU, 1), ("4301", GUANGZHOU, 100)], "cells[1].insured_region"),
    ([(CHANGSHA, "44010A", 100)], "cells[0].treating_region"),
    ([(CHANGSHA, GUANGZHOU, 1.5)], "cells[0].amount_fen"),  # never floats
    ([(CHANGSHA, GUANGZHOU, True)], "cells[0].amount_fen"),
    ([(CHANGSHA, GUANGZHOU, 2**63)], "cells[0].amount_fen"),
    ([(CHANGSHA, GUANGZHOU)], "cells[0]"),
    ([[CHANGSHA, GUANGZHOU, 1]], "cells[0]"),
])
def test_bad_cells_are_refused_with_the_field(cells, field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        make_gross_matrix(cells)
    assert caught.value.field == field


def test_matrix_asserts_its_own_invariants() -> None:
    with pytest.raises(AssertionError):
        GrossMatrix((Cell(CHANGSHA, CHANGSHA, 1),))
    with pytest.raises(AssertionError):
        GrossMatrix((Cell(GUANGZHOU, CHANGSHA, 1), Cell(CHANGSHA, GUANGZHOU, 1)))  # unsorted


# --- three regions by hand -----------------------------------------------------------------------

def test_three_regions_positions() -> None:
    # 430100: owed 200 + 400 = 600, owes 1000 + 300 = 1300 → −700
    # 440100: owed 1000 + 100 = 1100, owes 200 + 500 = 700 → +400
    # 510100: owed 300 + 500 = 800, owes 400 + 100 = 500 → +300;  −700 + 400 + 300 = 0
    assert net_positions(make_gross_matrix(THREE)) == {CHANGSHA: -700, GUANGZHOU: 400, CHENGDU: 300}


def test_three_regions_report() -> None:
    # gross 1000+300+200+500+400+100 = 2500; net = 400 + 300 = 700; saved = 10000 × 1800 / 2500 = 7200 bp
    assert netting_report(make_gross_matrix(THREE)) == NettingReport(2500, 700, 7200)


def test_three_regions_hub_plan() -> None:
    # the one debtor pays in first, then the creditors are paid in region order: 3 transfers ≤ N = 3
    assert hub_plan({CHANGSHA: -700, GUANGZHOU: 400, CHENGDU: 300}) == (
        Transfer(CHANGSHA, CLEARING_HOUSE, 700),
        Transfer(CLEARING_HOUSE, GUANGZHOU, 400),
        Transfer(CLEARING_HOUSE, CHENGDU, 300),
    )


def test_three_regions_direct_plan() -> None:
    # largest debtor 430100 (700) × largest creditor 440100 (400) → 400; 430100 has 300 left
    # 430100 (300) × 510100 (300) → 300; both zero: 2 transfers = N − 1
    assert direct_plan({CHANGSHA: -700, GUANGZHOU: 400, CHENGDU: 300}) == (
        Transfer(CHANGSHA, GUANGZHOU, 400),
        Transfer(CHANGSHA, CHENGDU, 300),
    )


def test_cell_order_does_not_change_anything() -> None:
    forward = make_gross_matrix(THREE)
    backward = make_gross_matrix(list(reversed(THREE)))
    assert forward == backward
    assert direct_plan(net_positions(forward)) == direct_plan(net_positions(backward))


# --- ties, zeros, negative cells -----------------------------------------------------------------

def test_direct_ties_go_to_the_lower_region_code() -> None:
    # debtors 110100 and 120100 both −100, creditors 310100 and 320100 both +100:
    # 110100 (lower) pays 310100 (lower) first, then 120100 pays 320100
    positions = {"120100": -100, "110100": -100, "320100": 100, "310100": 100}
    assert direct_plan(positions) == (Transfer("110100", "310100", 100), Transfer("120100", "320100", 100))


def test_direct_ties_among_remainders() -> None:
    # A=110100 −300, B=120100 −100, C=310100 +200, D=320100 +200
    # 1. A (300) × C (200, ties D, lower code) → 200; A has 100 left
    # 2. debtors A 100, B 100 tie → A; creditor D 200 → 100; D has 100 left
    # 3. B (100) × D (100) → 100: 3 transfers = N − 1
    positions = {"110100": -300, "120100": -100, "310100": 200, "320100": 200}
    assert direct_plan(positions) == (
        Transfer("110100", "310100", 200),
        Transfer("110100", "320100", 100),
        Transfer("120100", "320100", 100),
    )


def test_hub_orders_by_region_code_not_by_amount() -> None:
    positions = {"510100": -1, "110100": -9, "440100": 3, "120100": 7}
    assert hub_plan(positions) == (
        Transfer("110100", CLEARING_HOUSE, 9), Transfer("510100", CLEARING_HOUSE, 1),
        Transfer(CLEARING_HOUSE, "120100", 7), Transfer(CLEARING_HOUSE, "440100", 3),
    )


def test_zero_position_makes_no_transfer() -> None:
    # 430100 owes 440100 5, 440100 owes 510100 5: 440100 passes it on and nets to 0
    matrix = make_gross_matrix([(CHANGSHA, GUANGZHOU, 5), (GUANGZHOU, CHENGDU, 5)])
    positions = net_positions(matrix)
    assert positions == {CHANGSHA: -5, GUANGZHOU: 0, CHENGDU: 5}
    assert hub_plan(positions) == (Transfer(CHANGSHA, CLEARING_HOUSE, 5), Transfer(CLEARING_HOUSE, CHENGDU, 5))
    assert direct_plan(positions) == (Transfer(CHANGSHA, CHENGDU, 5),)
    # gross 10, net 5 → saved 5000 bp
    assert netting_report(matrix) == NettingReport(10, 5, 5000)


def test_negative_cell_moves_money_back() -> None:
    # 430100 → 440100 is −300 (reversals exceeded settlements), 440100 → 430100 is +100
    # 430100: owed 100, owes −300 → 100 − (−300) = +400;  440100: owed −300, owes 100 → −400
    matrix = make_gross_matrix([(CHANGSHA, GUANGZHOU, -300), (GUANGZHOU, CHANGSHA, 100)])
    positions = net_positions(matrix)
    assert positions == {CHANGSHA: 400, GUANGZHOU: -400}
    # the same as if the −300 were written 440100 → 430100 +300
    assert positions == net_positions(make_gross_matrix([(GUANGZHOU, CHANGSHA, 400)]))
    assert direct_plan(positions) == (Transfer(GUANGZHOU, CHANGSHA, 400),)
    # gross counts cells by size: |−300| + 100 = 400; net 400; saved 0
    assert netting_report(matrix) == NettingReport(400, 400, 0)


def test_lone_negative_cell_keeps_net_within_gross() -> None:
    # only positive cells would give gross 0 and net 5; by size gross is 5
    assert netting_report(make_gross_matrix([(CHANGSHA, GUANGZHOU, -5)])) == NettingReport(5, 5, 0)


def test_empty_month() -> None:
    matrix = make_gross_matrix([])
    assert net_positions(matrix) == {}
    assert hub_plan({}) == ()
    assert direct_plan({}) == ()
    assert netting_report(matrix) == NettingReport(0, 0, 0)  # 0 when gross is 0


@pytest.mark.parametrize(("cells", "saved_bp"), [
    # gross 3, net 1: 10000 × 2 / 3 = 6666.67 → 6667
    ([(CHANGSHA, GUANGZHOU, 2), (GUANGZHOU, CHANGSHA, 1)], 6667),
    # gross 20000, net 1: 10000 × 19999 / 20000 = 9999.5 → 10000 (half up)
    ([(CHANGSHA, GUANGZHOU, 10_000), (GUANGZHOU, CHANGSHA, 9_999), (GUANGZHOU, CHENGDU, 1)], 10000),
    # one cell: nothing saved
    ([(CHANGSHA, GUANGZHOU, 12_345)], 0),
])
def test_liquidity_saved_rounds_half_up(cells, saved_bp: int) -> None:
    assert netting_report(make_gross_matrix(cells)).liquidity_saved_bp == saved_bp


# --- the settlement check ------------------------------------------------------------------------

def test_remaining_positions_applies_transfers() -> None:
    positions = {CHANGSHA: -700, GUANGZHOU: 400, CHENGDU: 300}
    # only the first hub transfer: 430100 has paid in, the clearing house holds 700
    assert remaining_positions(positions, [Transfer(CHANGSHA, CLEARING_HOUSE, 700)]) == {
        CHANGSHA: 0, CHENGDU: 300, GUANGZHOU: 400, CLEARING_HOUSE: -700}
    with pytest.raises(AssertionError):
        assert_settles(positions, (Transfer(CHANGSHA, GUANGZHOU, 400),))
    assert_settles(positions, (Transfer(CHANGSHA, GUANGZHOU, 400), Transfer(CHANGSHA, CHENGDU, 300)))


def test_transfers_are_never_zero() -> None:
    with pytest.raises(AssertionError):
        Transfer(CHANGSHA, GUANGZHOU, 0)
    with pytest.raises(AssertionError):
        Transfer(CHANGSHA, CHANGSHA, 1)


@pytest.mark.parametrize(("positions", "field"), [
    ({CHANGSHA: -1, GUANGZHOU: 2}, "positions"),  # does not sum to 0
    ({CLEARING_HOUSE: -1, GUANGZHOU: 1}, f"positions[{CLEARING_HOUSE!r}]"),
    ({CHANGSHA: -1.0, GUANGZHOU: 1}, f"positions[{CHANGSHA!r}]"),
])
def test_bad_positions_are_refused(positions, field: str) -> None:
    for plan in (hub_plan, direct_plan):
        with pytest.raises(InvalidField) as caught:
            plan(positions)
        assert caught.value.field == field


# --- two levels: national between provinces, provincial to cities --------------------------------

# Province 430000 (cities 430100, 430200) and province 440000 (cities 440100, 440300).
TWO_LEVEL = [
    ("430100", "430200", 50),  # inside 430000: drops out nationally
    ("430100", "440100", 300),
    ("430200", "440300", 100),
    ("440100", "430100", 120),
    ("440300", "430200", 80),
    ("440100", "440300", 40),  # inside 440000
]


def test_province_of() -> None:
    assert province_of("440305") == "440000"
    assert province_of("110000") == "110000"


def test_two_level_city_positions() -> None:
    # 430100: owed 120, owes 50 + 300 = 350 → −230
    # 430200: owed 50 + 80 = 130, owes 100 → +30
    # 440100: owed 300, owes 120 + 40 = 160 → +140
    # 440300: owed 100 + 40 = 140, owes 80 → +60;   −230 + 30 + 140 + 60 = 0
    assert net_positions(make_gross_matrix(TWO_LEVEL)) == {"430100": -230, "430200": 30, "440100": 140, "440300": 60}


def test_two_level_national_netting() -> None:
    # 430000 → 440000: 300 + 100 = 400;  440000 → 430000: 120 + 80 = 200; the 50 and 40 stay inside
    national = province_matrix(make_gross_matrix(TWO_LEVEL))
    assert national.cells == (Cell("430000", "440000", 400), Cell("440000", "430000", 200))
    positions = net_positions(national)
    assert positions == {"430000": -200, "440000": 200}  # 200 − 400, 400 − 200
    assert hub_plan(positions) == (Transfer("430000", CLEARING_HOUSE, 200), Transfer(CLEARING_HOUSE, "440000", 200))
    assert direct_plan(positions) == (Transfer("430000", "440000", 200),)
    # gross 600, net 200: saved 10000 × 400 / 600 = 6666.67 → 6667
    assert netting_report(national) == NettingReport(600, 200, 6667)


def test_two_level_province_distribution() -> None:
    matrix = make_gross_matrix(TWO_LEVEL)
    assert province_distribution(matrix, "430000") == {"430100": -230, "430200": 30}  # Σ −200 = national
    assert province_distribution(matrix, "440000") == {"440100": 140, "440300": 60}  # Σ 200 = national
    assert province_distribution(matrix, "510000") == {}  # no city in the month


def test_two_level_province_transfers() -> None:
    matrix = make_gross_matrix(TWO_LEVEL)
    # 430000 collects 230 from 430100, pays 30 to 430200 and 200 to the nation: 230 = 30 + 200
    assert province_transfers(matrix, "430000") == (Transfer("430100", "430000", 230), Transfer("430000", "430200", 30))
    # 440000 receives 200 from the nation and pays 140 + 60 to its cities
    assert province_transfers(matrix, "440000") == (Transfer("440000", "440100", 140), Transfer("440000", "440300", 60))


def test_two_levels_together_settle_every_city() -> None:
    matrix = make_gross_matrix(TWO_LEVEL)
    national = direct_plan(net_positions(province_matrix(matrix)))
    local = province_transfers(matrix, "430000") + province_transfers(matrix, "440000")
    start = {**net_positions(matrix), "430000": 0, "440000": 0}  # provinces only pass money on
    assert set(remaining_positions(start, national + local).values()) == {0}


def test_municipality_is_its_own_province() -> None:
    # 110000 (北京市) is both a pooling region and its province; 110100 is another region of it
    matrix = make_gross_matrix([("110000", "440100", 100), ("440100", "110100", 30), ("110100", "110000", 10)])
    # 110000: owed 10, owes 100 → −90;  110100: owed 30, owes 10 → +20;  440100: +100 − 30 = +70
    assert province_distribution(matrix, "110000") == {"110000": -90, "110100": 20}  # Σ −70
    # the province's own agency makes no transfer to itself; it pays 110100 its 20
    assert province_transfers(matrix, "110000") == (Transfer("110000", "110100", 20),)
    national = hub_plan(net_positions(province_matrix(matrix)))
    assert national == (Transfer("110000", CLEARING_HOUSE, 70), Transfer(CLEARING_HOUSE, "440000", 70))
    local = province_transfers(matrix, "110000") + province_transfers(matrix, "440000")
    start = {**net_positions(matrix), "440000": 0}  # 110000 already holds its city position
    assert set(remaining_positions(start, national + local).values()) == {0}


@pytest.mark.parametrize("province", ["440100", "44", 440000, "44000a"])
def test_bad_province_is_refused(province) -> None:
    with pytest.raises(InvalidField) as caught:
        province_distribution(make_gross_matrix(TWO_LEVEL), province)
    assert caught.value.field == "province"
