"""The dispute state machine and its deadlines (SPEC §12.3; clearing/disputes.py): hand-worked steps and a
property over any sequence of steps."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing import disputes
from clearing.disputes import Answer, Decision, State, Step
from clearing.errors import InvalidField, PreconditionFailed

T0 = datetime(2026, 9, 10, 2, 0, tzinfo=UTC)


def step(month: str, by: str = "agency/460100", days: int = 0) -> Step:
    return Step(by=by, at=T0 + timedelta(days=days), month=month)


def raised(amount_fen: int = 3000, month: str = "2026-09", claimed_fen: int = 0, fund_pay_fen: int = 10_000,
           rule_id: str = "AUD-DAYQTY", reason: str = "") -> disputes.Dispute:
    return disputes.raise_dispute(
        dispute_key="k1", settlement_id="s1", insured_region="460100", treating_region="440100",
        hospital_code="H44010000001", settlement_month="2026-08", fund_pay_fen=fund_pay_fen,
        claimed_fen=claimed_fen, amount_fen=amount_fen, rule_id=rule_id, reason=reason, step=step(month))


def test_months_and_deadlines_count_clearing_months_across_a_year_end():
    assert disputes.months_after("2026-11", "2027-02") == 3
    assert disputes.raise_deadline("2026-11") == "2027-02"
    assert disputes.answer_deadline("2026-12") == "2027-01"
    assert disputes.months_after("2027-01", "2026-12") == -1


def test_a_raise_is_allowed_up_to_three_clearing_months_after_the_settlement_and_not_in_the_fourth():
    assert raised(month="2026-11").state is State.RAISED  # settled in 2026-08: 08 + 3 = 11
    with pytest.raises(PreconditionFailed, match="up to 2026-11, it is 2026-12") as caught:
        raised(month="2026-12")
    assert caught.value.subject == "settlement_id"


def test_the_amount_is_one_fen_to_fund_pay_minus_what_earlier_disputes_claim():
    assert raised(amount_fen=10_000).amount_fen == 10_000
    assert raised(amount_fen=1).amount_fen == 1
    with pytest.raises(InvalidField, match="amount_fen: must be a positive"):
        raised(amount_fen=0)
    with pytest.raises(InvalidField, match="amount_fen: exceeds the settlement's fund pay"):
        raised(amount_fen=10_001)
    assert raised(amount_fen=4000, claimed_fen=6000).amount_fen == 4000
    with pytest.raises(PreconditionFailed, match="at most 4000 is left"):
        raised(amount_fen=4001, claimed_fen=6000)


def test_a_dispute_by_hand_needs_a_reason_one_from_a_finding_does_not():
    assert raised(rule_id="", reason=" 重复收费 ").reason == "重复收费"
    with pytest.raises(InvalidField, match="reason: is required"):
        raised(rule_id="", reason="  ")
    with pytest.raises(InvalidField, match="reason: holds a control character"):
        raised(rule_id="", reason="a\x00b")


def test_claimed_counts_every_dispute_but_a_rejected_one():
    first = raised(amount_fen=1000)
    appealed = disputes.answer(replace(first, dispute_key="k2"), Answer.APPEAL, "charged per day", step("2026-10"))
    rejected = disputes.decide(appealed, Decision.REJECTED, step("2026-10", "operator/admin", 1))
    assert disputes.claimed_fen([first, appealed]) == 2000
    assert disputes.claimed_fen([first, rejected]) == 1000


def test_accept_within_the_month_after_the_raise_owes_the_adjustment_once():
    dispute = disputes.answer(raised(), Answer.ACCEPT, "", step("2026-10", "agency/440100", 20))
    assert dispute.state is State.ACCEPTED and dispute.answered.by == "agency/440100"
    assert dispute.adjustment_owed
    adjusted = disputes.mark_adjusted(dispute, "2026-10")
    assert not adjusted.adjustment_owed and adjusted.adjusted_month == "2026-10"
    with pytest.raises(AssertionError):
        disputes.mark_adjusted(adjusted, "2026-11")


def test_an_answer_two_months_after_the_raise_is_too_late_and_the_dispute_has_lapsed():
    with pytest.raises(PreconditionFailed, match="ended in 2026-10: the dispute lapsed") as caught:
        disputes.answer(raised(), Answer.APPEAL, "no", step("2026-11", days=60))
    assert caught.value.subject == "dispute"
    assert disputes.lapse(raised(), "2026-10").state is State.RAISED
    lapsed = disputes.lapse(raised(), "2026-11")
    assert lapsed.state is State.LAPSED and lapsed.lapsed_month == "2026-11" and lapsed.adjustment_owed
    assert lapsed.answered is None


def test_repeating_an_answer_returns_the_first_a_different_one_is_refused():
    appealed = disputes.answer(raised(), Answer.APPEAL, "billed per day as allowed", step("2026-09", days=1))
    assert disputes.answer(appealed, Answer.APPEAL, "billed per day as allowed", step("2026-10", days=5)) is appealed
    with pytest.raises(PreconditionFailed, match="answered already") as caught:
        disputes.answer(appealed, Answer.ACCEPT, "", step("2026-10", days=5))
    assert caught.value.subject == "answer"
    with pytest.raises(PreconditionFailed):
        disputes.answer(appealed, Answer.APPEAL, "another text", step("2026-10", days=5))


def test_an_appeal_needs_a_text_and_an_accept_takes_none():
    with pytest.raises(InvalidField, match="appeal_text: is required"):
        disputes.answer(raised(), Answer.APPEAL, " ", step("2026-09"))
    with pytest.raises(InvalidField, match="appeal_text: is given only with an appeal"):
        disputes.answer(raised(), Answer.ACCEPT, "why", step("2026-09"))


def test_only_an_appealed_dispute_is_decided_once():
    with pytest.raises(PreconditionFailed, match="only an appealed dispute"):
        disputes.decide(raised(), Decision.UPHELD, step("2026-09", "operator/admin"))
    appealed = disputes.answer(raised(), Answer.APPEAL, "text", step("2026-09", days=1))
    upheld = disputes.decide(appealed, Decision.UPHELD, step("2026-12", "operator/admin", 90))
    assert upheld.state is State.UPHELD and upheld.adjustment_owed and upheld.decided.by == "operator/admin"
    assert disputes.decide(upheld, Decision.UPHELD, step("2026-12", "operator/other", 91)) is upheld
    with pytest.raises(PreconditionFailed, match="decided already: upheld") as caught:
        disputes.decide(upheld, Decision.REJECTED, step("2026-12", "operator/admin", 91))
    assert caught.value.subject == "decision"
    rejected = disputes.decide(appealed, Decision.REJECTED, step("2026-12", "operator/admin", 90))
    assert not rejected.adjustment_owed


def test_a_repeated_raise_names_the_first_field_that_differs():
    dispute = raised(reason="")
    assert disputes.same_raise(dispute, settlement_id="s1", amount_fen=3000, rule_id="AUD-DAYQTY", reason="") is None
    assert disputes.same_raise(dispute, settlement_id="s1", amount_fen=3001, rule_id="AUD-DAYQTY",
                               reason="") == "amount_fen"
    assert disputes.same_raise(dispute, settlement_id="s2", amount_fen=3001, rule_id="",
                               reason="") == "settlement_id"


# -- property: any sequence of steps leaves a valid dispute, and the adjustment is posted at most once ---------

MONTHS = ["2026-09", "2026-10", "2026-11", "2026-12"]
steps = st.lists(st.tuples(st.sampled_from(["accept", "appeal", "upheld", "rejected", "lapse", "post"]),
                           st.sampled_from(MONTHS), st.sampled_from(["", "text", "other"])), max_size=12)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_any_sequence_of_steps_leaves_a_valid_state_and_posts_at_most_once(sequence):
    dispute = raised()
    posted = 0
    month_index = 0
    for action, month, text in sequence:
        # clearing months only move forward: a step is taken in the latest month seen so far or later
        month_index = max(month_index, MONTHS.index(month))
        now = step(MONTHS[month_index], days=30 * month_index + 1)
        before = dispute
        try:
            if action in ("accept", "appeal"):
                dispute = disputes.answer(dispute, Answer(action), text if action == "appeal" else "", now)
            elif action in ("upheld", "rejected"):
                dispute = disputes.decide(dispute, Decision(action), replace(now, by="operator/admin"))
            elif action == "lapse":
                dispute = disputes.lapse(dispute, now.month)
            elif dispute.adjustment_owed:
                dispute = disputes.mark_adjusted(dispute, now.month)
                posted += 1
        except (PreconditionFailed, InvalidField):
            assert dispute is before, "a refused step changes nothing"
        disputes.check_invariants(dispute)
        if before.state in disputes.FINAL:
            assert dispute.state is before.state, "a final state never changes"
        if before.adjusted_month is not None:
            assert dispute.adjusted_month == before.adjusted_month
    assert posted <= 1
    assert posted == (dispute.adjusted_month is not None)
