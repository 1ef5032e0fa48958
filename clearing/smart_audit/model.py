"""The values smart audit takes and returns (SPEC §12.2, §12.4): the member's facts, the member's other stays,
a finding (疑点, the shape of national interfaces 3101/3102) and the result of one audit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from clearing.smart_audit.library import Action, Result, RuleId


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """What the rules need to know about the member: `sex` (`M`/`F`) and the birth date (出生日期)."""

    sex: str
    birth_date: date


@dataclass(frozen=True, slots=True)
class OtherStay:
    """Another live stay of the member (any region), for AUD-OVERLAP and AUD-READMIT."""

    settlement_id: str
    admitted_on: date
    discharged_on: date
    diagnoses: tuple[str, ...]  # the first is the principal diagnosis (主诊断)


@dataclass(frozen=True, slots=True)
class Finding:
    """One finding (疑点): lines marked violating (违规项) or involved (涉及项), amount in fen."""

    rule_id: RuleId
    rule_name: str
    result: Result
    action: Action
    amount_fen: int  # 0 for OVERLAP, READMIT and IDLE
    violating_line_ids: tuple[str, ...]  # in line order (SPEC §12.6 leaves the order free)
    involved_line_ids: tuple[str, ...]
    evidence: str  # free text; names the other settlement for OVERLAP and READMIT


@dataclass(frozen=True, slots=True)
class AuditResult:
    """Every finding of the enabled rules in SPEC order, and the libraries' versions that produced them."""

    findings: tuple[Finding, ...]
    knowledge_version: str
    rules_version: str

    @property
    def definite_amount_fen(self) -> int:
        """Σ amounts of the definite findings. A line can be counted by several rules (SEX and AGE on one
        line), so this may exceed the bill's total; each finding's own amount never does."""
        return sum(item.amount_fen for item in self.findings if item.result is Result.DEFINITE)
