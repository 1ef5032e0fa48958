"""Undoing a visit (cancel 2305 or reversal 2601) gives the disease's accumulators back (services/insured/store.py
`special_restored`): exactly what they were before it when nothing moved them since, and otherwise what they would
be had the visit never been settled while the later visits keep what they were paid."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from clearing.outpatient.member import SpecialYtd
from services.insured.store import special_restored

amounts = st.integers(min_value=0, max_value=10**9)
months = st.sampled_from(["2026-03", "2026-04", "2026-05"])


def moved(before: SpecialYtd, deductible_fen: int, pay_fen: int, month: str) -> SpecialYtd:
    """A visit of `month` by the §13.4 rule."""
    return SpecialYtd(before.deductible_fen + deductible_fen, before.paid_fen + pay_fen, month,
                      before.paid_in(month) + pay_fen)


def row_of(before: SpecialYtd, after: SpecialYtd) -> dict:
    return {"special_delta": json.dumps({"before": before.as_dict(), "after": after.as_dict()})}


@given(amounts, amounts, st.one_of(st.none(), months), amounts, amounts, amounts, months)
def test_undoing_the_last_visit_restores_exactly(deductible_fen, paid_fen, month, month_paid_fen, visit_deductible,
                                                  pay_fen, visit_month):
    before = SpecialYtd(deductible_fen, paid_fen + month_paid_fen, month, month_paid_fen if month else 0)
    if before.month is not None and before.month > visit_month:
        return  # refused online: visits of a disease settle in month order
    after = moved(before, visit_deductible, pay_fen, visit_month)
    assert special_restored(row_of(before, after), after) == before


@given(amounts, amounts, amounts, amounts, months, amounts, amounts, st.booleans())
def test_undoing_an_earlier_visit_keeps_the_later_ones(paid_fen, visit_deductible, pay_fen, later_deductible,
                                                       month, later_pay, month_paid_fen, later_same_month):
    before = SpecialYtd(0, paid_fen + month_paid_fen, month, month_paid_fen)
    after = moved(before, visit_deductible, pay_fen, month)
    later_month = month if later_same_month else "2026-06"
    now = moved(after, later_deductible, later_pay, later_month)
    never = moved(before, later_deductible, later_pay, later_month)  # had the visit never been settled
    restored = special_restored(row_of(before, after), now)
    assert restored == never
    assert min(restored.deductible_fen, restored.paid_fen, restored.month_paid_fen) >= 0
