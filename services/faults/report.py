"""What a harness run reports: the run, the faults injected, what the HIS saw, and every invariant."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from services.faults.invariants import Check


@dataclass
class Report:
    seed: int
    duration_s: float
    faults: bool
    concurrency: int
    elapsed_s: float = 0.0
    discharges: int = 0
    abandoned: int = 0  # admit or upload never went through, no settlement requested
    visits: int = 0  # of the discharges, outpatient special-disease visits (门诊慢特病, med_type 14)
    attempted: int = 0  # settlement request ids sent
    succeeded: int = 0  # the HIS holds the settlement (not cancelled)
    failed: int = 0
    cancelled: int = 0
    reversed: int = 0
    unknown: int = 0  # still unknown at the end (an invariant failure, unless the HIS walked away)
    walked_away: int = 0  # unknown requests the HIS never resent (left to reconciliation)
    resolved_after_unknown: int = 0
    local: int = 0
    kills: int = 0
    kills_by_role: dict[str, int] = field(default_factory=dict)
    cuts: int = 0
    delays: int = 0
    stalls: int = 0
    refused_connections: int = 0
    repairs: int = 0
    disputes: int = 0  # disputes the run raised (SPEC §12.3), each driven to accepted, upheld or rejected
    dispute_retries: int = 0  # dispute steps resent with the same content after no answer
    disputes_refused: int = 0  # refused definitely (none expected)
    dispute_states: dict[str, int] = field(default_factory=dict)  # how the disputes ended
    codes: dict[str, int] = field(default_factory=dict)  # non-OK status codes the HIS received
    invariants: list[Check] = field(default_factory=list)
    work_dir: str = ""  # kept (with every service's log) when an invariant fails

    @property
    def ok(self) -> bool:
        return bool(self.invariants) and all(check.ok for check in self.invariants)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def failing(self) -> list[Check]:
        return [check for check in self.invariants if not check.ok]

    def counts(self) -> list[tuple[str, str]]:
        """The figures, in order, as (label, value) for a table or a log line."""
        kills = ", ".join(f"{role} {count}" for role, count in sorted(self.kills_by_role.items()))
        return [
            ("seed", str(self.seed)),
            ("faults", "on" if self.faults else "off"),
            ("duration (s)", f"{self.duration_s:g} of discharging, {self.elapsed_s:.0f} in all"),
            ("concurrency", str(self.concurrency)),
            ("discharges started", str(self.discharges)),
            ("abandoned before settle", str(self.abandoned)),
            ("outpatient special-disease visits among the discharges", str(self.visits)),
            ("settlements attempted", str(self.attempted)),
            ("succeeded", str(self.succeeded)),
            ("failed (definite refusal)", str(self.failed)),
            ("cancelled (撤销)", str(self.cancelled)),
            ("reversed (冲正)", str(self.reversed)),
            ("resolved after unknown", str(self.resolved_after_unknown)),
            ("still unknown", str(self.unknown)),
            ("walked away from by the HIS (for reconciliation)", str(self.walked_away)),
            ("same-region", str(self.local)),
            ("kills (SIGKILL)", f"{self.kills}" + (f" ({kills})" if kills else "")),
            ("connections cut", str(self.cuts)),
            ("chunks delayed (≤ 0.3 s)", str(self.delays)),
            ("chunks stalled (≤ 3 s)", str(self.stalls)),
            ("connections refused (target down)", str(self.refused_connections)),
            ("repairs (reconciliation)", str(self.repairs)),
            ("disputes (拒付): raised, steps resent, refused", f"{self.disputes}, {self.dispute_retries}, "
                                                            f"{self.disputes_refused}"),
            ("disputes ended", ", ".join(f"{name.removeprefix('DISPUTE_STATE_').lower()} {count}"
                                         for name, count in sorted(self.dispute_states.items())) or "none"),
            ("error codes seen by the HIS", ", ".join(f"{code} {count}" for code, count in sorted(self.codes.items()))
             or "none"),
        ]
