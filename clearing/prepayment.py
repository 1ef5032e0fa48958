"""Prepayment (预付金) of an insured region at the clearing house: sizing, usage and draws — SPEC §7.

Each insured region keeps a prepayment sized from its recent monthly outflow; every cross-region
settlement draws its `fund_pay` from it. At the warning threshold (70 % used by default) the
operator and the region are warned and a top-up is requested. A draw **never** blocks a
settlement: the balance may go negative, and the prepayment is then flagged as exhausted.

Decisions, in integer fen and basis points:

* required = round_half_up(average of the last up to 3 months' outflow × `months`), where a month
  whose reversals exceeded its settlements counts as 0 outflow (refunds must not shrink the buffer
  for the settlements still to come). No history gives 0: the operator sets a new region's first
  prepayment.
* used = required − balance; usage_bp = round_half_up(used × 10000 / required), never below 0 (a
  balance above the required amount is 0 % used), above 10000 once the balance is negative, and at
  most USAGE_BP_MAX (a tiny required amount under a deep deficit; the proto field is an int32). With
  a required amount of 0, usage is 0 while the balance is positive and 10000 otherwise.
* exhausted: balance ≤ 0. The threshold is crossed when usage_bp ≥ threshold_bp or exhausted.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearing.errors import InvalidField
from clearing.money import BP_WHOLE, round_half_up_div

PREPAYMENT_MONTHS_DEFAULT = 2  # SPEC §7: two months of outflow
PREPAYMENT_MONTHS_MAX = 12
OUTFLOW_WINDOW_MONTHS = 3  # "recent": the last up to three closed months
WARNING_THRESHOLD_BP_DEFAULT = 7_000  # SPEC §7: warn at 70 % used
USAGE_BP_MAX = 10_000 * BP_WHOLE  # usage beyond 10000 × the required amount is reported as that

assert 1 <= PREPAYMENT_MONTHS_DEFAULT <= PREPAYMENT_MONTHS_MAX
assert 0 < WARNING_THRESHOLD_BP_DEFAULT <= BP_WHOLE


@dataclass(frozen=True, slots=True)
class PrepaymentState:
    """How much of the required prepayment is used, and whether to warn or flag."""

    usage_bp: int
    threshold_crossed: bool
    exhausted: bool


@dataclass(frozen=True, slots=True)
class Draw:
    """The result of one settlement drawing on the prepayment.

    `crossed_threshold` is True only for the draw that moves the prepayment from below the warning
    threshold to at or above it (so the warning and top-up request fire once per crossing);
    `exhausted` is the state after the draw (balance ≤ 0), flagged on every such draw.
    """

    balance_fen: int
    usage_bp: int
    crossed_threshold: bool
    exhausted: bool


def required_prepayment_fen(monthly_outflows_fen: list[int], months: int = PREPAYMENT_MONTHS_DEFAULT) -> int:
    """Prepayment (预付金) an insured region should hold, in fen, from its monthly outflows (oldest first).

    Average of the last up to 3 months (negative months count as 0) × `months`, rounded half up
    once; never negative; 0 without history. Raises `InvalidField` for a non-integer outflow or
    `months` outside 1..12.
    """
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= PREPAYMENT_MONTHS_MAX:
        raise InvalidField("months", f"must be an integer from 1 to {PREPAYMENT_MONTHS_MAX}")
    for index, outflow_fen in enumerate(monthly_outflows_fen):
        _check_fen(outflow_fen, f"monthly_outflows_fen[{index}]")
    recent = [max(outflow_fen, 0) for outflow_fen in monthly_outflows_fen[-OUTFLOW_WINDOW_MONTHS:]]
    if not recent:
        return 0
    required_fen = round_half_up_div(sum(recent) * months, len(recent))
    assert required_fen >= 0
    assert required_fen <= max(recent) * months, "an average never exceeds its largest month"
    return required_fen


def prepayment_state(balance_fen: int, required_fen: int,
                     threshold_bp: int = WARNING_THRESHOLD_BP_DEFAULT) -> PrepaymentState:
    """Usage of the prepayment in bp (10000 = all of the required amount used) and its two flags."""
    _check_fen(balance_fen, "balance_fen")
    _check_fen(required_fen, "required_fen")
    if required_fen < 0:
        raise InvalidField("required_fen", "must not be negative")
    _check_threshold(threshold_bp)
    exhausted = balance_fen <= 0
    if required_fen == 0:
        usage_bp = BP_WHOLE if exhausted else 0
    else:
        usage_bp = min(max(round_half_up_div((required_fen - balance_fen) * BP_WHOLE, required_fen), 0), USAGE_BP_MAX)
    assert usage_bp >= 0
    assert not exhausted or usage_bp >= BP_WHOLE, "an exhausted prepayment is fully used"
    return PrepaymentState(usage_bp, exhausted or usage_bp >= threshold_bp, exhausted)


def draw(balance_fen: int, amount_fen: int, required_fen: int,
         threshold_bp: int = WARNING_THRESHOLD_BP_DEFAULT) -> Draw:
    """One settlement's `fund_pay` drawn from the prepayment: never refused, the balance may go negative.

    Raises `InvalidField("amount_fen", …)` for a negative amount (a reversal credits the
    prepayment back instead), and like `prepayment_state` for the other arguments.
    """
    _check_fen(amount_fen, "amount_fen")
    if amount_fen < 0:
        raise InvalidField("amount_fen", "must not be negative; a reversal credits the prepayment instead")
    before = prepayment_state(balance_fen, required_fen, threshold_bp)
    after = prepayment_state(balance_fen - amount_fen, required_fen, threshold_bp)
    assert after.usage_bp >= before.usage_bp, "a draw never lowers usage"
    return Draw(balance_fen - amount_fen, after.usage_bp,
                after.threshold_crossed and not before.threshold_crossed, after.exhausted)


def _check_fen(value: object, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(field, "must be an integer number of fen")


def _check_threshold(threshold_bp: object) -> None:
    if isinstance(threshold_bp, bool) or not isinstance(threshold_bp, int) or not 0 < threshold_bp <= BP_WHOLE:
        raise InvalidField("threshold_bp", f"must be an integer from 1 to {BP_WHOLE}")
