"""事后: the insured agency's monthly audit of its members' cross-region stays (SPEC §12.2 stages, §12.3), pure.

Per stay, the findings under the *insured* region's rule library:

* the line rules (SEX AGE LEVEL DAYQTY BEDDAYS EXCL IDLE) as the treating agency found them at settlement (事中,
  recorded with the settlement: the same pure `line_findings`, knowledge base and bill). The insured agency keeps
  neither the bill's catalogue nor the member's birth date (only a keyed hash of the ID number, SPEC §9), so it
  takes those findings and applies its own library to them: a rule it disables is dropped, its action is the
  insured library's. A rule the treating library disabled was not recorded and is not found again here.
* the cross-stay rules (OVERLAP READMIT) computed afresh against the member's other live stays in every region.

`disputes_to_raise` turns the definite findings whose action is `dispute` into disputes: one per (settlement,
rule), its amount the rule's definite amounts added up, capped at what the settlement's fund pay still leaves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date

from clearing.smart_audit.library import RULE_ORDER, Action, Result, RuleId, RuleLibrary
from clearing.smart_audit.model import Finding, OtherStay
from clearing.smart_audit.rules import cross_stay_findings

LINE_RULES = frozenset({RuleId.SEX, RuleId.AGE, RuleId.LEVEL, RuleId.DAYQTY, RuleId.BEDDAYS, RuleId.EXCL,
                        RuleId.IDLE})


@dataclass(frozen=True, slots=True)
class MonthStay:
    """One settled cross-region stay of a member, as the 事后 audit sees it."""

    settlement_id: str
    member_id: str
    treating_region: str
    fund_pay_fen: int
    admitted_on: date
    discharged_on: date
    diagnoses: tuple[str, ...]
    recorded: tuple[Finding, ...]  # the treating agency's 事中 line findings


@dataclass(frozen=True, slots=True)
class DisputeClaim:
    """A dispute the audit raises: (settlement, rule) is its key."""

    settlement_id: str
    rule_id: RuleId
    amount_fen: int


def stay_findings(stay: MonthStay, history: Sequence[OtherStay], library: RuleLibrary) -> tuple[Finding, ...]:
    """The stay's findings under `library`, in the rule table's order (a sort that keeps each rule's own order)."""
    lines = [replace(item, action=library.settings(item.rule_id).action) for item in stay.recorded
             if item.rule_id in LINE_RULES and library.enabled(item.rule_id)]
    others = [item for item in history if item.settlement_id != stay.settlement_id]
    cross = cross_stay_findings(stay.admitted_on, stay.discharged_on, stay.diagnoses, others, library)
    return tuple(sorted((*lines, *cross), key=lambda item: RULE_ORDER[item.rule_id]))


def disputes_to_raise(audited: Sequence[tuple[MonthStay, tuple[Finding, ...]]], claimed_fen: Mapping[str, int],
                      raised: set[tuple[str, str]]) -> tuple[DisputeClaim, ...]:
    """The disputes to raise: per stay, per rule in table order, the definite `dispute` findings' amounts added up,
    capped at the fund pay left after the settlement's disputes so far (`claimed_fen`, those not rejected). A
    (settlement, rule) already raised (`raised`) is skipped, so a second run raises nothing new."""
    claims: list[DisputeClaim] = []
    for stay, findings in audited:
        left_fen = stay.fund_pay_fen - claimed_fen.get(stay.settlement_id, 0)
        assert left_fen >= 0
        for rule_id in RuleId:
            if (stay.settlement_id, rule_id.value) in raised:
                continue
            amount_fen = sum(item.amount_fen for item in findings if item.rule_id is rule_id
                             and item.result is Result.DEFINITE and item.action is Action.DISPUTE)
            amount_fen = min(amount_fen, left_fen)
            if amount_fen > 0:
                claims.append(DisputeClaim(stay.settlement_id, rule_id, amount_fen))
                left_fen -= amount_fen
    return tuple(claims)
