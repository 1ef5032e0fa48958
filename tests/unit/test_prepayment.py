"""Prepayment (预付金, SPEC §7): `clearing/prepayment.py`, worked by hand."""

from __future__ import annotations

import pytest

from clearing.errors import InvalidField
from clearing.prepayment import USAGE_BP_MAX, Draw, PrepaymentState, draw, prepayment_state, required_prepayment_fen


@pytest.mark.parametrize(("outflows_fen", "months", "expected_fen"), [
    ([300, 600, 900], 2, 1200),  # (300 + 600 + 900) / 3 = 600 × 2
    ([10_000, 300, 600, 900], 2, 1200),  # only the last three months count
    ([100, 200], 2, 300),  # (100 + 200) / 2 = 150 × 2
    ([100], 2, 200),
    ([1, 1, 2], 1, 1),  # 4 / 3 = 1.33 → 1
    ([1, 1, 3], 1, 2),  # 5 / 3 = 1.67 → 2
    ([1, 2], 1, 2),  # 3 / 2 = 1.5 → 2 (half up)
    ([1, 1, 3], 2, 3),  # 5 × 2 / 3 = 3.33 → 3: one rounding, after the × months (not round(1.67) × 2 = 4)
    ([600, -900, 300], 2, 600),  # a month of net reversals counts 0: (600 + 0 + 300) / 3 = 300 × 2
    ([-5, -7], 2, 0),  # never negative
    ([], 2, 0),  # no history: the operator sets the first prepayment
    ([300, 600, 900], 1, 600),
])
def test_required_prepayment(outflows_fen: list[int], months: int, expected_fen: int) -> None:
    assert required_prepayment_fen(outflows_fen, months) == expected_fen


def test_required_prepayment_defaults_to_two_months() -> None:
    assert required_prepayment_fen([1_000_000]) == 2_000_000


@pytest.mark.parametrize(("outflows_fen", "months", "field"), [
    ([100], 0, "months"),
    ([100], 13, "months"),
    ([100], True, "months"),
    ([100, 1.5], 2, "monthly_outflows_fen[1]"),
])
def test_required_prepayment_bad_input(outflows_fen, months, field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        required_prepayment_fen(outflows_fen, months)
    assert caught.value.field == field


@pytest.mark.parametrize(("balance_fen", "required_fen", "threshold_bp", "expected"), [
    (1000, 1000, 7000, PrepaymentState(0, False, False)),  # untouched
    (1500, 1000, 7000, PrepaymentState(0, False, False)),  # topped up beyond: 0 %, not negative
    (301, 1000, 7000, PrepaymentState(6990, False, False)),  # 699 / 1000
    (300, 1000, 7000, PrepaymentState(7000, True, False)),  # exactly 70 % used: warn
    (1, 1000, 7000, PrepaymentState(9990, True, False)),
    (0, 1000, 7000, PrepaymentState(10000, True, True)),  # exhausted at 0
    (-500, 1000, 7000, PrepaymentState(15000, True, True)),  # (1000 + 500) / 1000
    (2, 3, 7000, PrepaymentState(3333, False, False)),  # 1 / 3 = 3333.3 → 3333
    (1, 3, 7000, PrepaymentState(6667, False, False)),  # 2 / 3 = 6666.7 → 6667
    (500, 1000, 5000, PrepaymentState(5000, True, False)),  # configurable threshold
    (500, 1000, 10000, PrepaymentState(5000, False, False)),
    (1, 0, 7000, PrepaymentState(0, False, False)),  # nothing required, something held
    (0, 0, 7000, PrepaymentState(10000, True, True)),
    (-1, 0, 7000, PrepaymentState(10000, True, True)),
    # Regression: a tiny required amount under a deep deficit overflowed the proto's int32 usage_bp
    # (INTERNAL from ListPrepayments); usage stops at 10000 × the required amount.
    (-10**12, 1, 7000, PrepaymentState(USAGE_BP_MAX, True, True)),
    (-(USAGE_BP_MAX // 10000 - 2), 1, 7000, PrepaymentState(USAGE_BP_MAX - 10000, True, True)),
])
def test_prepayment_state(balance_fen: int, required_fen: int, threshold_bp: int, expected: PrepaymentState) -> None:
    assert prepayment_state(balance_fen, required_fen, threshold_bp) == expected


@pytest.mark.parametrize(("arguments", "field"), [
    ((100, -1, 7000), "required_fen"),
    ((100, 1000, 0), "threshold_bp"),
    ((100, 1000, 10001), "threshold_bp"),
    ((100.0, 1000, 7000), "balance_fen"),
])
def test_prepayment_state_bad_input(arguments, field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        prepayment_state(*arguments)
    assert caught.value.field == field


def test_draws_warn_once_then_flag_exhaustion_and_never_block() -> None:
    required_fen = 1000
    # 1000 − 600 = 400 left: 6000 bp, below 70 %
    first = draw(1000, 600, required_fen)
    assert first == Draw(400, 6000, crossed_threshold=False, exhausted=False)
    # 400 − 150 = 250: 7500 bp, crosses 70 % now
    second = draw(first.balance_fen, 150, required_fen)
    assert second == Draw(250, 7500, crossed_threshold=True, exhausted=False)
    # 250 − 100 = 150: still above 70 %, already warned
    third = draw(second.balance_fen, 100, required_fen)
    assert third == Draw(150, 8500, crossed_threshold=False, exhausted=False)
    # 150 − 400 = −250: the settlement still goes through; exhausted, 12500 bp
    fourth = draw(third.balance_fen, 400, required_fen)
    assert fourth == Draw(-250, 12500, crossed_threshold=False, exhausted=True)
    # and again: still flagged
    assert draw(fourth.balance_fen, 1, required_fen) == Draw(-251, 12510, crossed_threshold=False, exhausted=True)


def test_one_draw_can_cross_and_exhaust() -> None:
    # 1000 − 1000 = 0: from 0 % to 100 % in one settlement
    assert draw(1000, 1000, 1000) == Draw(0, 10000, crossed_threshold=True, exhausted=True)


def test_zero_draw_changes_nothing() -> None:
    assert draw(300, 0, 1000) == Draw(300, 7000, crossed_threshold=False, exhausted=False)


def test_draw_with_configurable_threshold() -> None:
    # 1000 − 500 = 500: 5000 bp crosses a 50 % threshold
    assert draw(1000, 500, 1000, threshold_bp=5000) == Draw(500, 5000, crossed_threshold=True, exhausted=False)


def test_draw_refuses_a_negative_amount() -> None:
    with pytest.raises(InvalidField) as caught:
        draw(1000, -1, 1000)
    assert caught.value.field == "amount_fen"
