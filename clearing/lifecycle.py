"""Which state a settlement must be in for a step (SPEC §8): one rule, used by every party."""

from __future__ import annotations

from enum import StrEnum

from clearing.errors import PreconditionFailed


def check_cancellable(status: str) -> None:
    """Only a settled settlement can be cancelled (撤销 2305); a cancelled, pending or failed one cannot."""
    if status == "cancelled":
        raise PreconditionFailed("settlement_id", "the settlement is already cancelled")
    if status != "settled":
        raise PreconditionFailed("settlement_id", f"the settlement is {status}, not settled")


class ReversalOutcome(StrEnum):
    """What a reversal (冲正 2601) finds and does at one party."""

    REVERSED = "reversed"  # something was recorded (pending or settled) and is now undone
    NOTHING_RECORDED = "nothing_recorded"  # nothing under the id: the id is blocked from now on
    ALREADY_UNDONE = "already_undone"  # refused or cancelled before: nothing was paid, nothing changes


def reversal_outcome(status: str | None) -> ReversalOutcome:
    """The outcome of reversing a settlement in `status` (None: this party never recorded it)."""
    if status is None:
        return ReversalOutcome.NOTHING_RECORDED
    if status in ("failed", "cancelled"):
        return ReversalOutcome.ALREADY_UNDONE
    if status in ("pending", "settled", "reversed"):
        return ReversalOutcome.REVERSED
    raise AssertionError(f"unknown settlement status {status!r}")


def check_not_reversed(reversed_: bool) -> None:
    """A settlement id that was reversed can never settle again (SPEC §8: at none of the parties)."""
    if reversed_:
        raise PreconditionFailed("request_id", "was reversed (冲正); settle again with a new request_id")
