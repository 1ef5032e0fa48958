"""Disputes between regions (拒付 / 申诉, SPEC §12.3): the state machine and its deadlines, no I/O.

The insured agency raises a dispute on a settled cross-region settlement (from a definite 事后 finding whose
rule's action is `dispute`, or by hand with a reason) within `RAISE_WINDOW_MONTHS` clearing months of the
settlement's month; the treating agency answers within `ANSWER_WINDOW_MONTHS` clearing month of the raise —
accept, or appeal with a text — and no answer in time counts as accepted (LAPSED); a clearing-house operator
decides an appealed one: upheld or rejected. An ACCEPTED, LAPSED or UPHELD dispute is owed an adjustment, posted
once (`adjusted`) in the first open clearing month (the caller's ledger's business).

Months are clearing months `YYYY-MM` (Asia/Shanghai), passed in by the caller with the instant: the core has no
clock. Every step returns a new `Dispute`; repeating a step with the same content returns the dispute unchanged,
a conflicting one is `PreconditionFailed` naming the field.

    RAISED ──accept──▶ ACCEPTED ─┐
       │ ──appeal──▶ APPEALED ──upheld──▶ UPHELD ─┼─▶ adjustment posted once (adjusted_month)
       │                 └──rejected──▶ REJECTED  │
       └──(answer window over)──▶ LAPSED ─────────┘
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from clearing.dates import check_month
from clearing.errors import InvalidField, PreconditionFailed

RAISE_WINDOW_MONTHS = 3  # SPEC §12.3: "within 3 clearing months of its settlement"
ANSWER_WINDOW_MONTHS = 1  # SPEC §12.3: "answers … within 1 clearing month"
REASON_CHARS_MAX = 500
APPEAL_CHARS_MAX = 2000


class State(StrEnum):
    RAISED = "raised"  # waiting for the treating agency's answer
    ACCEPTED = "accepted"  # the treating agency accepted: adjustment owed
    APPEALED = "appealed"  # the treating agency appealed: waiting for the clearing house's decision
    UPHELD = "upheld"  # the clearing house upheld the dispute: adjustment owed
    REJECTED = "rejected"  # the clearing house rejected the dispute: nothing changes
    LAPSED = "lapsed"  # no answer within the window: counts as accepted, adjustment owed


class Answer(StrEnum):
    ACCEPT = "accept"
    APPEAL = "appeal"


class Decision(StrEnum):
    UPHELD = "upheld"
    REJECTED = "rejected"


OWED = frozenset({State.ACCEPTED, State.LAPSED, State.UPHELD})  # the adjustment is owed in these states
FINAL = frozenset({State.ACCEPTED, State.LAPSED, State.UPHELD, State.REJECTED})
# What counts against the settlement's fund pay for a later dispute: everything but a rejected one.
CLAIMING = frozenset(State) - {State.REJECTED}


# The dispute key of a dispute the 事后 audit raises from a finding: one per (settlement, rule), the same on every
# run, so running the audit twice raises nothing new (the clearing house is idempotent on the key).
FINDING_KEY_NAMESPACE = uuid.UUID("0b5e7d0c-3c2e-4f4e-9a43-6a1f1d6e1203")


def finding_dispute_key(settlement_id: str, rule_id: str) -> str:
    return str(uuid.uuid5(FINDING_KEY_NAMESPACE, f"{settlement_id}/{rule_id}"))


def months_after(earlier: str, later: str) -> int:
    """How many clearing months `later` is after `earlier` (negative when before)."""
    return (int(later[:4]) - int(earlier[:4])) * 12 + int(later[5:7]) - int(earlier[5:7])


def add_months(month: str, count: int) -> str:
    index = int(month[:4]) * 12 + int(month[5:7]) - 1 + count
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def raise_deadline(settlement_month: str) -> str:
    """The last clearing month a dispute on a settlement of `settlement_month` may be raised in."""
    return add_months(settlement_month, RAISE_WINDOW_MONTHS)


def answer_deadline(raised_month: str) -> str:
    """The last clearing month the treating agency may answer in; from the month after, the dispute lapses."""
    return add_months(raised_month, ANSWER_WINDOW_MONTHS)


@dataclass(frozen=True, slots=True)
class Step:
    """Who took a step (the caller's identity path, e.g. `agency/460100`, `operator/admin`) and when."""

    by: str
    at: datetime
    month: str  # the clearing month of `at`

    def __post_init__(self) -> None:
        assert self.by, "a step is recorded with who took it"
        assert self.at.tzinfo is not None, "instants are timezone-aware"
        check_month(self.month, "month")


@dataclass(frozen=True, slots=True)
class Dispute:
    """One dispute and every step it went through. Money in fen."""

    dispute_key: str  # the insured agency's idempotency key (a UUID)
    settlement_id: str
    insured_region: str
    treating_region: str
    hospital_code: str
    settlement_month: str  # the clearing month the settlement cleared in
    fund_pay_fen: int  # the settlement's fund pay (the cap)
    amount_fen: int  # the disputed amount
    rule_id: str  # the 事后 finding's rule, or "" for a dispute raised by hand
    reason: str
    raised: Step
    state: State = State.RAISED
    answered: Step | None = None  # accept or appeal; None while RAISED and for a LAPSED one
    appeal_text: str = ""
    decided: Step | None = None
    lapsed_month: str | None = None  # the clearing month the lapse was applied in
    adjusted_month: str | None = None  # the clearing month its adjustment was posted in

    def __post_init__(self) -> None:
        check_invariants(self)

    @property
    def adjustment_owed(self) -> bool:
        """The adjustment is owed and not posted yet."""
        return self.state in OWED and self.adjusted_month is None


def check_invariants(dispute: Dispute) -> None:
    """What every reachable dispute satisfies (asserts: a broken one is our bug)."""
    assert 0 < dispute.amount_fen <= dispute.fund_pay_fen, "1 ≤ amount ≤ fund pay"
    assert dispute.insured_region != dispute.treating_region, "disputes are between two regions"
    assert 0 <= months_after(dispute.settlement_month, dispute.raised.month) <= RAISE_WINDOW_MONTHS
    assert (dispute.answered is not None) == (dispute.state in (State.ACCEPTED, State.APPEALED, State.UPHELD,
                                                                State.REJECTED))
    assert (dispute.decided is not None) == (dispute.state in (State.UPHELD, State.REJECTED))
    assert (dispute.lapsed_month is not None) == (dispute.state is State.LAPSED)
    assert bool(dispute.appeal_text) == (dispute.state in (State.APPEALED, State.UPHELD, State.REJECTED))
    if dispute.answered is not None:
        assert months_after(dispute.raised.month, dispute.answered.month) <= ANSWER_WINDOW_MONTHS
        assert dispute.answered.at >= dispute.raised.at
    if dispute.lapsed_month is not None:
        assert dispute.lapsed_month > answer_deadline(dispute.raised.month)
    if dispute.decided is not None:
        assert dispute.answered is not None and dispute.decided.at >= dispute.answered.at
    if dispute.adjusted_month is not None:
        assert dispute.state in OWED, "only an accepted, lapsed or upheld dispute posts an adjustment"


def _text(value: str, field: str, chars_max: int) -> str:
    text = value.strip()
    if not text:
        raise InvalidField(field, "is required")
    if len(text) > chars_max:
        raise InvalidField(field, f"is longer than {chars_max} characters")
    if any(ord(char) < 32 and char not in "\n\t" for char in text):
        raise InvalidField(field, "holds a control character")
    return text


def check_reason(reason: str, rule_id: str) -> str:
    """A dispute raised by hand needs a reason; one raised from a finding may leave it empty."""
    if not reason.strip() and rule_id:
        return ""
    return _text(reason, "reason", REASON_CHARS_MAX)


def raise_dispute(*, dispute_key: str, settlement_id: str, insured_region: str, treating_region: str,
                  hospital_code: str, settlement_month: str, fund_pay_fen: int, claimed_fen: int, amount_fen: int,
                  rule_id: str, reason: str, step: Step) -> Dispute:
    """A new dispute on a settled settlement. `claimed_fen` is what the settlement's earlier disputes that are not
    rejected already claim; `amount_fen` must fit in what is left of its fund pay."""
    reason = check_reason(reason, rule_id)
    if amount_fen <= 0:
        raise InvalidField("amount_fen", "must be a positive number of fen")
    if amount_fen > fund_pay_fen:
        raise InvalidField("amount_fen", f"exceeds the settlement's fund pay ({fund_pay_fen} fen)")
    assert 0 <= claimed_fen <= fund_pay_fen
    if amount_fen > fund_pay_fen - claimed_fen:
        raise PreconditionFailed("amount_fen", f"the settlement's fund pay is {fund_pay_fen} fen and earlier disputes "
                                               f"claim {claimed_fen} fen: at most {fund_pay_fen - claimed_fen} is left")
    late = months_after(settlement_month, step.month)
    if late > RAISE_WINDOW_MONTHS:
        raise PreconditionFailed("settlement_id", f"cleared in {settlement_month}: a dispute may be raised up to "
                                                  f"{raise_deadline(settlement_month)}, it is {step.month}")
    assert late >= 0, "a settlement is disputed after it cleared"
    return Dispute(dispute_key=dispute_key, settlement_id=settlement_id, insured_region=insured_region,
                   treating_region=treating_region, hospital_code=hospital_code, settlement_month=settlement_month,
                   fund_pay_fen=fund_pay_fen, amount_fen=amount_fen, rule_id=rule_id, reason=reason, raised=step)


def same_raise(dispute: Dispute, *, settlement_id: str, amount_fen: int, rule_id: str, reason: str) -> str | None:
    """The first field in which a repeated raise under the same key differs from the first one (None: the same)."""
    reason = reason.strip()
    for field, first, again in (("settlement_id", dispute.settlement_id, settlement_id),
                                ("amount_fen", dispute.amount_fen, amount_fen), ("rule_id", dispute.rule_id, rule_id),
                                ("reason", dispute.reason, reason)):
        if first != again:
            return field
    return None


def lapse(dispute: Dispute, month: str) -> Dispute:
    """The dispute as of clearing month `month`: a RAISED one whose answer window is over LAPSES (accepted)."""
    if dispute.state is State.RAISED and month > answer_deadline(dispute.raised.month):
        return replace(dispute, state=State.LAPSED, lapsed_month=month)
    return dispute


def answer(dispute: Dispute, choice: Answer, appeal_text: str, step: Step) -> Dispute:
    """The treating agency's answer. A repeat of the same answer returns the dispute as it is."""
    text = _text(appeal_text, "appeal_text", APPEAL_CHARS_MAX) if choice is Answer.APPEAL else ""
    if choice is Answer.ACCEPT and appeal_text.strip():
        raise InvalidField("appeal_text", "is given only with an appeal")
    given = _answer_of(dispute)
    if given is not None:
        if given == (choice, text):
            return dispute
        raise PreconditionFailed("answer", f"the dispute was answered already ({given[0].value}); "
                                           f"it is {dispute.state.value}")
    dispute = lapse(dispute, step.month)
    if dispute.state is State.LAPSED:
        raise PreconditionFailed("dispute", f"the answer window ended in {answer_deadline(dispute.raised.month)}: "
                                            "the dispute lapsed and counts as accepted")
    assert dispute.state is State.RAISED
    state = State.ACCEPTED if choice is Answer.ACCEPT else State.APPEALED
    return replace(dispute, state=state, answered=step, appeal_text=text)


def _answer_of(dispute: Dispute) -> tuple[Answer, str] | None:
    if dispute.answered is None:
        return None
    return (Answer.ACCEPT, "") if dispute.state is State.ACCEPTED else (Answer.APPEAL, dispute.appeal_text)


def decide(dispute: Dispute, decision: Decision, step: Step) -> Dispute:
    """The clearing house's decision on an appealed dispute. A repeat of the same decision returns it as it is."""
    if dispute.decided is not None:
        if dispute.state.value == decision.value:
            return dispute
        raise PreconditionFailed("decision", f"the dispute was decided already: {dispute.state.value}")
    if dispute.state is not State.APPEALED:
        raise PreconditionFailed("dispute", f"only an appealed dispute is decided; this one is {dispute.state.value}")
    return replace(dispute, state=State(decision.value), decided=step)


def mark_adjusted(dispute: Dispute, month: str) -> Dispute:
    """The adjustment has been posted in clearing month `month` (exactly once: a second call is our bug)."""
    assert dispute.adjustment_owed, "an adjustment is posted once, and only when owed"
    check_month(month, "month")
    return replace(dispute, adjusted_month=month)


def claimed_fen(disputes: list[Dispute]) -> int:
    """What a settlement's disputes claim of its fund pay: all but the rejected ones."""
    return sum(item.amount_fen for item in disputes if item.state in CLAIMING)
