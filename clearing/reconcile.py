"""Reconciliation between neighbouring parties (对账): daily totals (3201) and line detail (3202).

The upstream party (the one that called) compares its view of a day's settlements with its downstream
neighbour's and decides, line by line, how each difference is repaired. The rules follow from the
settlement protocol (docs/settlement-protocol.md): every party commits its own row before it calls
downstream and marks it final only after downstream answered, so

* an upstream row still `pending` after the grace period is one its caller never got an answer for:
  it is reversed (冲正) through the protocol, wherever it reached;
* a downstream row that stands (pending or settled) while upstream has nothing standing is an orphan
  nobody upstream believes is paid: it is reversed downstream;
* a downstream cancel (撤销) that upstream never recorded is rolled forward upstream;
* an unfinished reversal upstream is driven again;
* anything else that differs (amounts, impossible pairs of states) is reported, never guessed at.

Which day a settlement is reconciled on (`DayKey`): by default its **settlement day**, the day the treating
agency made the settlement id and recorded it pending. The day travels downstream in the claim and every
party stores it, so each party of a pair puts a settlement — pending, settled, and later cancelled or
reversed — on the same day, however late a hop recorded it. A day's totals are those of the settlements made
that day, in their state now: a cancel or reversal on a later day changes the totals of the settlement's own
day, at both ends alike. The discharge day remains as a second key, for looking back at a day's stays.

Pure: lines in, differences out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

STANDING = ("pending", "settled")  # states in which a party may still pay
STATUSES = ("pending", "settled", "failed", "cancelled", "reversed")
MED_INPATIENT, MED_OUTPATIENT_SPECIAL = 21, 14  # 医疗类别 (med_type): a stay, an outpatient special-disease visit


class DayKey(StrEnum):
    """Which day of a settlement a reconciliation is keyed on."""

    SETTLEMENT = "settlement"  # the day the treating agency made it (Claim.settlement_day): 3201's day
    DISCHARGE = "discharge"  # the day the stay was discharged (Stay.discharged_on)


@dataclass(frozen=True, slots=True)
class DetailLine:
    """One settlement as one party recorded it (3202). Amounts are 0 unless it was settled."""

    key: str  # the id both parties know: the settlement id (or the HIS request id for hospital ↔ agency)
    status: str
    local: bool = False
    total_fen: int = 0
    fund_pay_fen: int = 0
    psn_pay_fen: int = 0
    reversing: bool = False  # a reversal is recorded here and not finished
    stale: bool = False  # pending longer than the grace period
    cancel_request_id: str = ""  # the cancel's request id, when cancelled
    med_type: int = MED_INPATIENT  # 21 a stay, 14 an outpatient special-disease visit

    def __post_init__(self) -> None:
        assert self.status in STATUSES, self.status
        assert self.fund_pay_fen + self.psn_pay_fen == self.total_fen, "fund + patient = total"


@dataclass(frozen=True, slots=True)
class DailyTotals:
    """3201: one clearing type's day — the settlements that stand settled, and those still pending."""

    clearing_type: str  # "local" or "cross_region"
    settled: int = 0
    total_fen: int = 0
    fund_pay_fen: int = 0
    psn_pay_fen: int = 0
    pending: int = 0
    med_type: int = MED_INPATIENT  # stays and visits are totalled apart


def daily_totals(lines: Iterable[DetailLine]) -> tuple[DailyTotals, ...]:
    """Totals per clearing type (local or cross-region, and stay or visit) over the day's lines; cancelled,
    reversed and failed ones count nowhere."""
    sums: dict[tuple[str, int], list[int]] = {}
    for line in lines:
        bucket = sums.setdefault(("local" if line.local else "cross_region", line.med_type), [0, 0, 0, 0, 0])
        if line.status == "settled":
            bucket[0] += 1
            bucket[1] += line.total_fen
            bucket[2] += line.fund_pay_fen
            bucket[3] += line.psn_pay_fen
        elif line.status == "pending":
            bucket[4] += 1
    totals = tuple(DailyTotals(kind, *values, med_type=med_type)
                   for (kind, med_type), values in sorted(sums.items(), key=lambda item: (item[0][0], -item[0][1])))
    for item in totals:
        assert item.fund_pay_fen + item.psn_pay_fen == item.total_fen
    return totals


def totals_agree(upstream: Iterable[DailyTotals], downstream: Iterable[DailyTotals]) -> bool:
    """3201 passes when both sides report the same settled totals and nothing is left pending."""
    def settled(items: Iterable[DailyTotals]) -> dict[tuple[str, int], tuple[int, int, int, int]]:
        return {(t.clearing_type, t.med_type): (t.settled, t.total_fen, t.fund_pay_fen, t.psn_pay_fen) for t in items
                if t.settled or t.total_fen}

    upstream, downstream = tuple(upstream), tuple(downstream)
    pending = sum(t.pending for t in upstream) + sum(t.pending for t in downstream)
    return pending == 0 and settled(upstream) == settled(downstream)


class Repair(StrEnum):
    """How a difference is repaired (and by whom: always the upstream party, through the protocol)."""

    REVERSE_STALE_PENDING = "reverse_stale_pending"  # upstream pending past the grace period
    FINISH_REVERSAL = "finish_reversal"  # upstream recorded a reversal that did not finish
    REVERSE_ORPHAN = "reverse_orphan"  # downstream stands, upstream has nothing standing
    FINISH_CANCEL = "finish_cancel"  # downstream cancelled, upstream still settled
    WAIT = "wait"  # in flight (pending within the grace period): looked at again next run
    REPORT = "report"  # cannot be repaired by a rule: amounts differ or the pair of states is impossible


@dataclass(frozen=True, slots=True)
class Difference:
    key: str
    upstream: str | None  # status upstream (None: no row)
    downstream: str | None
    repair: Repair
    note: str


def same_amounts(first: DetailLine, second: DetailLine) -> bool:
    return (first.total_fen, first.fund_pay_fen, first.psn_pay_fen) == \
        (second.total_fen, second.fund_pay_fen, second.psn_pay_fen)


def judge(up: DetailLine | None, down: DetailLine | None) -> tuple[Repair, str] | None:
    """The repair one pair of lines needs, or None when they agree."""
    assert up is not None or down is not None
    up_status = up.status if up else None
    down_status = down.status if down else None
    if up is not None and up.reversing:
        return Repair.FINISH_REVERSAL, "a reversal recorded upstream has not finished"
    if up_status == "pending":
        if up.stale:
            return Repair.REVERSE_STALE_PENDING, "pending past the grace period: its caller never got an answer"
        return Repair.WAIT, "in flight"
    if down_status in STANDING and up_status in (None, "failed", "reversed"):
        if down_status == "pending" and not down.stale:
            return Repair.WAIT, "in flight downstream"
        return Repair.REVERSE_ORPHAN, f"stands downstream while upstream is {up_status or 'absent'}"
    if up_status == "settled" and down_status == "cancelled":
        return Repair.FINISH_CANCEL, "cancelled downstream, the cancel never completed upstream"
    if up_status == down_status == "settled":
        return None if same_amounts(up, down) else (Repair.REPORT, "the amounts differ")
    if up_status == down_status:
        return None
    undone = (None, "failed", "reversed", "cancelled")
    if up_status in undone and down_status in undone:
        return None  # nothing stands on either side: nothing is paid
    return Repair.REPORT, f"{up_status or 'absent'} upstream but {down_status or 'absent'} downstream"


def compare(upstream: Mapping[str, DetailLine], downstream: Mapping[str, DetailLine]) -> list[Difference]:
    """Every key on which the two views disagree, with its repair, ordered by key."""
    differences = []
    for key in sorted(upstream.keys() | downstream.keys()):
        up, down = upstream.get(key), downstream.get(key)
        verdict = judge(up, down)
        if verdict is not None:
            differences.append(Difference(key, up.status if up else None, down.status if down else None, *verdict))
    return differences
