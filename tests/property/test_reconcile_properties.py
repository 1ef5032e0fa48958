"""Reconciliation rules (clearing/reconcile.py) over random pairs of views: no rule ever pays, each acts only
in the state it is for, and identical views are never a difference."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from clearing.reconcile import STATUSES, DetailLine, Repair, compare

detail_lines = st.builds(lambda status, fund, psn, stale, reversing: DetailLine(
    "k", status, False, fund + psn, fund, psn, reversing and status in ("pending", "settled"), stale and status == "pending"),
    st.sampled_from(STATUSES), st.integers(0, 10**6), st.integers(0, 10**6), st.booleans(), st.booleans())


@given(st.dictionaries(st.sampled_from("abcdef"), st.one_of(st.none(), detail_lines)),
       st.dictionaries(st.sampled_from("abcdef"), st.one_of(st.none(), detail_lines)))
def test_reconciliation_never_acts_on_agreeing_lines_and_never_pays(up_views, down_views):
    ups = {key: replace(value, key=key) for key, value in up_views.items() if value is not None}
    downs = {key: replace(value, key=key) for key, value in down_views.items() if value is not None}
    differences = compare(ups, downs)
    assert [d.key for d in differences] == sorted({d.key for d in differences}), "one verdict per key, in order"
    for difference in differences:
        up, down = ups.get(difference.key), downs.get(difference.key)
        # No rule ever creates a payment: repairs only reverse, finish a reversal or finish a cancel.
        assert difference.repair in Repair
        if difference.repair is Repair.REVERSE_ORPHAN:
            assert up is None or up.status in ("failed", "reversed"), "an orphan has nothing standing upstream"
        if difference.repair is Repair.REVERSE_STALE_PENDING:
            assert up.status == "pending" and up.stale, "only an abandoned pending is reversed"
        if difference.repair is Repair.FINISH_CANCEL:
            assert (up.status, down.status) == ("settled", "cancelled")
    for key in ups.keys() & downs.keys():
        if ups[key] == downs[key] and not ups[key].reversing and ups[key].status != "pending":
            assert key not in {d.key for d in differences}, "identical views are never a difference"

