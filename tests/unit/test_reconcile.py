"""The reconciliation rules (clearing/reconcile.py), pair of states by pair of states."""

import pytest

from clearing.reconcile import DailyTotals, DetailLine, Repair, compare, daily_totals, judge, totals_agree


def line(status: str, *, fund: int = 0, psn: int = 0, stale: bool = False, reversing: bool = False,
         local: bool = False) -> DetailLine:
    return DetailLine("S1", status, local, fund + psn, fund, psn, reversing, stale)


SETTLED = line("settled", fund=700, psn=300)


@pytest.mark.parametrize(("up", "down", "repair"), [
    (line("pending", stale=True), None, Repair.REVERSE_STALE_PENDING),
    (line("pending", stale=True), SETTLED, Repair.REVERSE_STALE_PENDING),
    (line("pending"), SETTLED, Repair.WAIT),
    (line("settled", fund=700, psn=300, reversing=True), SETTLED, Repair.FINISH_REVERSAL),
    (None, SETTLED, Repair.REVERSE_ORPHAN),
    (line("failed"), SETTLED, Repair.REVERSE_ORPHAN),
    (line("reversed"), line("pending", stale=True), Repair.REVERSE_ORPHAN),
    (line("reversed"), line("pending"), Repair.WAIT),
    (SETTLED, line("cancelled", fund=700, psn=300), Repair.FINISH_CANCEL),
    (SETTLED, line("settled", fund=701, psn=299), Repair.REPORT),
    (SETTLED, None, Repair.REPORT),
    (line("cancelled", fund=700, psn=300), SETTLED, Repair.REPORT),
])
def test_each_difference_gets_its_rule(up, down, repair):
    assert judge(up, down)[0] is repair


@pytest.mark.parametrize(("up", "down"), [
    (SETTLED, SETTLED), (line("failed"), None), (line("failed"), line("failed")), (line("reversed"), None),
    (line("reversed"), line("reversed")), (line("cancelled"), line("cancelled")), (None, line("reversed")),
    (line("reversed"), line("cancelled")),
])
def test_views_that_agree_need_nothing(up, down):
    assert judge(up, down) is None


def test_compare_lists_every_key_of_either_side_in_order():
    ups = {"b": DetailLine("b", "settled", False, 10, 7, 3), "a": DetailLine("a", "pending", stale=True)}
    downs = {"b": DetailLine("b", "settled", False, 10, 7, 3), "c": DetailLine("c", "settled", False, 5, 5, 0)}
    assert [(d.key, d.repair) for d in compare(ups, downs)] == [("a", Repair.REVERSE_STALE_PENDING),
                                                                 ("c", Repair.REVERSE_ORPHAN)]


def test_daily_totals_count_only_what_stands_settled_and_what_is_pending():
    lines = [DetailLine("1", "settled", False, 1000, 700, 300), DetailLine("2", "settled", True, 500, 100, 400),
             DetailLine("3", "cancelled", False, 800, 800, 0), DetailLine("4", "pending"),
             DetailLine("5", "settled", False, 200, 150, 50)]
    assert daily_totals(lines) == (DailyTotals("cross_region", 2, 1200, 850, 350, 1),
                                   DailyTotals("local", 1, 500, 100, 400, 0))


def test_totals_agree_only_when_equal_and_nothing_is_pending():
    settled = (DailyTotals("cross_region", 2, 1200, 850, 350),)
    assert totals_agree(settled, settled)
    assert not totals_agree(settled, (DailyTotals("cross_region", 2, 1200, 851, 349),))
    assert not totals_agree((DailyTotals("cross_region", 2, 1200, 850, 350, pending=1),), settled)
    assert totals_agree((), (DailyTotals("local"),)), "an empty bucket is no difference"


def test_a_line_whose_shares_do_not_add_up_is_refused():
    with pytest.raises(AssertionError):
        DetailLine("1", "settled", False, 1000, 700, 299)
