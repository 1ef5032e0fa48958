"""The life-cycle rules shared by every party: cancel precondition, reversal outcomes."""

import pytest

from clearing.errors import PreconditionFailed
from clearing.lifecycle import ReversalOutcome, check_cancellable, check_not_reversed, reversal_outcome


def test_a_settled_settlement_can_be_cancelled():
    check_cancellable("settled")


@pytest.mark.parametrize(("status", "reason"), [("cancelled", "already cancelled"), ("pending", "is pending"),
                                                ("failed", "is failed")])
def test_any_other_state_is_a_precondition_failure_naming_settlement_id(status, reason):
    with pytest.raises(PreconditionFailed, match=reason) as caught:
        check_cancellable(status)
    assert caught.value.subject == "settlement_id"


@pytest.mark.parametrize(("status", "outcome"), [
    (None, ReversalOutcome.NOTHING_RECORDED), ("failed", ReversalOutcome.ALREADY_UNDONE),
    ("cancelled", ReversalOutcome.ALREADY_UNDONE), ("pending", ReversalOutcome.REVERSED),
    ("settled", ReversalOutcome.REVERSED), ("reversed", ReversalOutcome.REVERSED)])
def test_what_a_reversal_does_in_each_state(status, outcome):
    assert reversal_outcome(status) is outcome


def test_an_unknown_state_is_a_bug_not_an_outcome():
    with pytest.raises(AssertionError):
        reversal_outcome("archived")


def test_a_reversed_id_never_settles_again():
    check_not_reversed(False)
    with pytest.raises(PreconditionFailed) as refused:
        check_not_reversed(True)
    assert refused.value.subject == "request_id"
