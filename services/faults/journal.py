"""The HIS's own journal of its settlement requests: what it SAW for each request id, which is the
truth the invariants hold every party's database to.

An answer is one of three kinds. A SettleResponse is `succeeded` (its fund split is kept); a
definite refusal (INVALID_ARGUMENT, FAILED_PRECONDITION, NOT_FOUND, ALREADY_EXISTS,
PERMISSION_DENIED) is `failed`; anything else (UNAVAILABLE, DEADLINE_EXCEEDED, a cut connection, an
unexpected code) leaves the request `unknown`: the HIS does not know whether it went through and
must retry the same id — or, once the reversal RPC exists, reverse it (冲正 2601, outcome `reversed`).
A settlement the HIS later cancels (撤销 2305) is `cancelled`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

import grpc

DEFINITE_CODES = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.PERMISSION_DENIED,
})


class Outcome(StrEnum):
    UNKNOWN = "unknown"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REVERSED = "reversed"


class Intent(StrEnum):
    """What the HIS will do about an unknown request: send it again, reverse it (冲正), or nothing —
    it walked away, and only reconciliation (对账) can settle the request's fate."""

    SETTLE = "settle"
    REVERSE = "reverse"
    ABANDON = "abandon"


@dataclass(frozen=True)
class Split:
    """The fund split the HIS was told (fen)."""

    total_fen: int
    fund_pay_fen: int
    psn_pay_fen: int
    hifp_fen: int
    hifmi_fen: int
    maf_fen: int


@dataclass
class Entry:
    """One settlement request id and everything the HIS saw about it."""

    request_id: str
    index: int
    treating_region: str
    insured_region: str
    hospital_code: str
    member_id: str
    encounter_id: str
    discharged_on: str = ""
    procedures: tuple[str, ...] = ()  # the stay's 病案首页 facts sent with the Settle (docs/stay-facts.md)
    discharge_status: str = ""
    requested_on: str = ""  # the day the HIS first sent the Settle (the services' clock, Asia/Shanghai)
    settlement_day: str = ""  # the settlement day the agency's answer named (Claim.settlement_day)
    outcome: Outcome = Outcome.UNKNOWN
    intent: Intent = Intent.SETTLE
    settlement_id: str = ""
    split: Split | None = None
    error: str = ""
    attempts: int = 0
    unknown_answers: int = 0
    cancel_request_id: str = ""
    cancel_unknown: bool = False  # a cancel was sent and its answer is not known yet

    @property
    def local(self) -> bool:
        return self.treating_region == self.insured_region

    @property
    def day(self) -> str:
        """The day the HIS reconciles the request on: the settlement day its answer named, else the day it first
        sent it — on or before the agency's day for it (the agency makes the day when the Settle arrives)."""
        return self.settlement_day or self.requested_on

    @property
    def resolved_after_unknown(self) -> bool:
        return self.unknown_answers > 0 and self.outcome is not Outcome.UNKNOWN

    @property
    def saw_success(self) -> bool:
        """The HIS was handed a settlement for it (even if it cancelled it later)."""
        return self.outcome in (Outcome.SUCCEEDED, Outcome.CANCELLED)


@dataclass
class Journal:
    entries: dict[str, Entry] = field(default_factory=dict)
    codes: Counter = field(default_factory=Counter)  # every non-OK status code the HIS received

    def add(self, entry: Entry) -> Entry:
        assert entry.request_id not in self.entries, "one entry per request id"
        self.entries[entry.request_id] = entry
        return entry

    def with_outcome(self, *outcomes: Outcome) -> list[Entry]:
        return [entry for entry in self.entries.values() if entry.outcome in outcomes]

    def unresolved(self) -> list[Entry]:
        """Requests (or cancels) whose fate the HIS still does not know and still pursues."""
        return [entry for entry in self.entries.values()
                if (entry.outcome is Outcome.UNKNOWN and entry.intent is not Intent.ABANDON) or entry.cancel_unknown]

    def abandoned(self) -> list[Entry]:
        """Unknown requests the HIS walked away from (left to reconciliation)."""
        return [entry for entry in self.entries.values()
                if entry.outcome is Outcome.UNKNOWN and entry.intent is Intent.ABANDON]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for entry in self.entries.values() if entry.outcome is outcome)
