"""RW and base points from history, the ADRG fallback and its own fallback (clearing/hospital_payment/weights.py)."""

from __future__ import annotations

import pytest

from clearing.errors import InvalidField
from clearing.hospital_payment import HistoryCase, WeightSource, compute_weights


def history() -> list[HistoryCase]:
    """15 cases, 350,000 fen: the all-cases average is 23,333.33 fen.

    ER31  5 cases 30,000 50,000 40,000 40,000 40,000  S = 200,000  avg 40,000
    ER33  5 cases 10,000 each                         S =  50,000  avg 10,000
    ER35  2 cases 10,000 20,000                       S =  30,000  < 5 → ADRG ER3: S = 280,000, n = 12
    GB11  1 case  60,000                              < 5, and GB1 has 1 case → no weight
    0000  2 cases 5,000 each                          count in the all-cases average only
    """
    cases = [HistoryCase("ER31", cost) for cost in (30_000, 50_000, 40_000, 40_000, 40_000)]
    cases += [HistoryCase("ER33", 10_000)] * 5
    cases += [HistoryCase("ER35", 10_000), HistoryCase("ER35", 20_000)]
    cases += [HistoryCase("GB11", 60_000), HistoryCase("0000", 5_000), HistoryCase("0000", 5_000)]
    return cases


def test_hand_worked_weights() -> None:
    table = compute_weights(history())
    assert (table.all_cases, table.all_cost_fen) == (15, 350_000)
    er31 = table.weights["ER31"]
    # RW = (200000/5) / (350000/15) = 40000 / 23333.33 = 1.714285… → 1.7143; base points 171.43
    assert (er31.rw_e4, er31.base_points_e4, er31.average_cost_fen) == (17_143, 1_714_300, 40_000)
    assert er31.source is WeightSource.DRG and er31.cases == 5
    # RW = 10000 / 23333.33 = 0.428571… → 0.4286
    assert table.weights["ER33"].rw_e4 == 4_286
    # ER35 has 2 cases: ADRG ER3's 280000/12 = 23333.33 → RW exactly 1.0000, average 23,333 fen
    er35 = table.weights["ER35"]
    assert (er35.rw_e4, er35.average_cost_fen, er35.cases, er35.source) == (10_000, 23_333, 12, WeightSource.ADRG)
    assert "GB11" not in table.weights  # its ADRG has fewer than 5 cases too: paid by item
    assert "0000" not in table.weights
    assert list(table.weights) == sorted(table.weights)


def test_cases_min_is_a_parameter() -> None:
    table = compute_weights(history(), cases_min=1)
    assert table.weights["GB11"].source is WeightSource.DRG
    # ER35 on its own: 15000 / 23333.33 = 0.642857… → 0.6429
    assert table.weights["ER35"].rw_e4 == 6_429


def test_rw_rounds_half_up() -> None:
    # 3 cases of 1, 1, 2 fen: all-cases average 4/3; RW(AA11: 1 fen) = 0.75, RW(AA13: 2 fen) = 1.5, exactly.
    table = compute_weights([HistoryCase("AA11", 1), HistoryCase("AA11", 1), HistoryCase("AA13", 2)], cases_min=1)
    assert table.weights["AA11"].rw_e4 == 7_500
    assert table.weights["AA13"].rw_e4 == 15_000
    # 3 cases 1, 1, 1 and one of 0: average 3/4; RW(BB11: 1) = 4/3 = 1.33333 → 13333; BB13 averages 0 fen: no weight
    table = compute_weights([HistoryCase("BB11", 1)] * 3 + [HistoryCase("BB13", 0)], cases_min=1)
    assert table.weights["BB11"].rw_e4 == 13_333
    assert "BB13" not in table.weights


@pytest.mark.parametrize(("cases", "field"), [
    ([], "history"),
    ([HistoryCase("ER31", 0)], "history"),
    ([HistoryCase("ER31", -1)], "history[0].cost_fen"),
    ([HistoryCase("ER31", 1), HistoryCase("ER3", 1)], "history[1].drg"),
    ([("ER31", 1)], "history[0]"),
])
def test_bad_history(cases: list, field: str) -> None:
    with pytest.raises(InvalidField) as raised:
        compute_weights(cases)
    assert raised.value.field == field
