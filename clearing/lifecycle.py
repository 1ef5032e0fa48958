"""Which state a settlement must be in for a step (SPEC §8): one rule, used by every party."""

from __future__ import annotations

from clearing.errors import PreconditionFailed


def check_cancellable(status: str) -> None:
    """Only a settled settlement can be cancelled (撤销 2305); a cancelled, pending or failed one cannot."""
    if status == "cancelled":
        raise PreconditionFailed("settlement_id", "the settlement is already cancelled")
    if status != "settled":
        raise PreconditionFailed("settlement_id", f"the settlement is {status}, not settled")
