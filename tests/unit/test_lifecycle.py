"""The cancel precondition shared by the treating agency and the clearing house."""

import pytest

from clearing.errors import PreconditionFailed
from clearing.lifecycle import check_cancellable


def test_a_settled_settlement_can_be_cancelled():
    check_cancellable("settled")


@pytest.mark.parametrize(("status", "reason"), [("cancelled", "already cancelled"), ("pending", "is pending"),
                                                ("failed", "is failed")])
def test_any_other_state_is_a_precondition_failure_naming_settlement_id(status, reason):
    with pytest.raises(PreconditionFailed, match=reason) as caught:
        check_cancellable(status)
    assert caught.value.subject == "settlement_id"
