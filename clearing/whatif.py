"""Policy what-if for fund supervision (基金监管, SPEC §12.5): replay recorded settlements under a draft policy.

`replay` takes the recorded settlements of a region (each with its classified lines, the stay, the member as
the live adjudication saw it, and the order in which it and its cancel or reversal were recorded) and a choice
of policy per settlement, and adjudicates them again with `adjudicate`, the same function the live path calls.
The year-to-date accumulators are rebuilt the way the live agency moves them:

* per member and policy year (the discharge year), from zero at the start of the year: the caller passes every
  settlement of the years it replays, not just the months it reports (a March stay's ratio depends on January's);
* in recording order (`sequence`, the order the agency took the member's accumulator lock in), not by discharge
  date: a stay discharged earlier but settled later saw the later one's accumulators;
* a cancel (撤销) or reversal (冲正) takes the settlement's own delta back off at its place in that order
  (`undone_sequence`), exactly as the agency subtracts the recorded delta. A stay settled between the two keeps
  the accumulators it saw. An undone settlement is replayed (it moved the accumulators for a while) but pays
  nothing in the report.

Replayed under the policy versions in force, every split equals the recorded one (`self_check`): that is the
proof that the replay is the live adjudication. `compare` then aggregates the baseline and the draft replay of
the reported settlements: fund pay by fund, by scheme and by band, and the members whose own share moves most.
Pure: no I/O; money in fen, ratios in bp.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from operator import attrgetter

from clearing.adjudicate import Adjudication, StayFacts, adjudicate
from clearing.classify import LineClass, new_line_class
from clearing.member import Member, Ytd
from clearing.policy import Policy
from clearing.values import compile_constructor

# A condensed stay's one line carries the five sums of its lines; attrgetter reads each part without a Python loop.
LINE_AMOUNT = attrgetter("line.amount_fen")
FULAMT_OWNPAY = attrgetter("fulamt_ownpay_fen")
OVERLMT_SELFPAY = attrgetter("overlmt_selfpay_fen")
PRESELFPAY = attrgetter("preselfpay_fen")
INSCP = attrgetter("inscp_fen")

# The split fields the self-check compares (SPEC §5.3 output keys, `ytd_after` aside).
CHECKED_FIELDS = (
    "total_fen", "inscp_fen", "deductible_fen", "eligible_fen", "hifp_fen", "burden_fen", "hifmi_fen",
    "assist_base_fen", "maf_fen", "fund_pay_fen", "psn_pay_fen",
)
FUNDS = (("basic", "hifp_fen"), ("critical", "hifmi_fen"), ("assistance", "maf_fen"))  # 统筹, 大病, 救助
MEMBERS_LISTED = 10


@dataclass(frozen=True, slots=True)
class Recorded:
    """One settlement as the insured agency recorded it, with what the replay needs."""

    settlement_id: str
    member: Member  # scheme, flags, tier and the filing status the live adjudication used
    stay: StayFacts
    lines: tuple[LineClass, ...]  # its classified lines, best `condensed` when loaded (the replay runs twice)
    sequence: int  # when it was recorded, in the agency's order of recording
    undone_sequence: int | None  # when it was cancelled or reversed; None while it stands
    split: dict[str, int]  # the recorded split, CHECKED_FIELDS at least
    ytd_before: Ytd  # the recorded accumulators it saw (for the self-check's message)

    @property
    def year_key(self) -> tuple[str, int]:
        return self.member.member_id, self.stay.discharged_on.year

    @property
    def month(self) -> str:
        return self.stay.discharged_on.isoformat()[:7]


@dataclass(frozen=True, slots=True)
class Replayed:
    """A settlement's replayed adjudication and its basic-fund pay by band (before the annual cap)."""

    recorded: Recorded
    result: Adjudication
    band_fen: tuple[tuple[int, int], ...]  # (band index, paid) per band part of the stay


new_replayed = compile_constructor(Replayed)  # once per settlement and replay: without the dataclass __init__


def replay(settlements: Iterable[Recorded], policy_for: Callable[[Recorded], Policy]) -> dict[str, Replayed]:
    """Adjudicate every settlement again, in recording order, on accumulators rebuilt from zero per member and
    year; settlement id → its replay. A `DomainError` of the policy (a scheme or tier it lacks) propagates."""
    events: list[tuple[int, int, Recorded]] = []  # (sequence, 0 settle / 1 undo, settlement)
    for item in settlements:
        events.append((item.sequence, 0, item))
        if item.undone_sequence is not None:
            assert item.undone_sequence > item.sequence, "a settlement is undone after it was recorded"
            events.append((item.undone_sequence, 1, item))
    events.sort(key=event_order)
    ytds: dict[tuple[str, int], Ytd] = {}
    replayed: dict[str, Replayed] = {}
    empty = Ytd()
    for _, undo, item in events:
        key = item.year_key
        if undo:
            ytds[key] = ytds[key].minus(replayed[item.settlement_id].result.ytd_delta)
            continue
        assert item.settlement_id not in replayed, "a settlement is recorded once"
        result = adjudicate(item.lines, item.stay, item.member, policy_for(item), ytds.get(key, empty))
        ytds[key] = result.ytd_after
        replayed[item.settlement_id] = new_replayed(item, result, basic_bands(result))
    return replayed


def condensed(lines: tuple[LineClass, ...]) -> tuple[LineClass, ...]:
    """The stay's lines as one line carrying their sums. The adjudication reads of its lines only the five sums
    (total, 全自费, 超限价, 先行自付, in scope) and explains them line by line; the replay needs the split, not
    the line-by-line explanation, which took a third of its time (the split is the same, the self-check proves
    it). Done once when the settlements are loaded, not in each replay."""
    if len(lines) == 1:
        return lines
    first = lines[0]
    amount_fen = sum(map(LINE_AMOUNT, lines))
    line = replace(first.line, line_id="*", amount_fen=amount_fen)
    return (new_line_class(line, first.catalogue_region, "*", "", None, None, None, "", 0, 0,
                           sum(map(FULAMT_OWNPAY, lines)), sum(map(OVERLMT_SELFPAY, lines)),
                           sum(map(PRESELFPAY, lines)), sum(map(INSCP, lines)), None, ""),)


def event_order(event: tuple[int, int, Recorded]) -> tuple[int, int]:
    return event[0], event[1]


def basic_bands(result: Adjudication) -> tuple[tuple[int, int], ...]:
    """The stay's basic-fund pay per band from its explanation (`basic_band` steps), before the annual cap."""
    return tuple((step.facts["band"], step.amount_fen) for step in result.explanation if step.key == "basic_band")


@dataclass(frozen=True)
class Mismatch:
    """A settlement whose replay under the policy in force differs from its record: the first field that does."""

    settlement_id: str
    field: str
    recorded_fen: int
    replayed_fen: int


def self_check(replayed: dict[str, Replayed]) -> list[Mismatch]:
    """Every replayed split against its record; empty when the replay reproduces every settlement exactly."""
    mismatches = []
    for settlement_id, item in replayed.items():
        for name in CHECKED_FIELDS:
            recorded_fen, replayed_fen = item.recorded.split[name], getattr(item.result, name)
            if recorded_fen != replayed_fen:
                mismatches.append(Mismatch(settlement_id, name, recorded_fen, replayed_fen))
                break
    return mismatches


@dataclass
class Totals:
    """Fund pay and the patients' share of a group of settlements, baseline and draft, in fen."""

    settlements: int = 0
    baseline: dict[str, int] = field(default_factory=dict)
    draft: dict[str, int] = field(default_factory=dict)

    def add(self, side: str, key: str, amount_fen: int) -> None:
        book = self.baseline if side == "baseline" else self.draft
        book[key] = book.get(key, 0) + amount_fen

    def change(self, key: str) -> int:
        return self.draft.get(key, 0) - self.baseline.get(key, 0)


@dataclass(frozen=True)
class MemberChange:
    """One member's own share (个人负担 psn_pay) over the reported settlements, baseline and draft."""

    member_id: str
    settlements: int
    baseline_psn_fen: int
    draft_psn_fen: int

    @property
    def change_fen(self) -> int:
        return self.draft_psn_fen - self.baseline_psn_fen


@dataclass(frozen=True)
class WhatIf:
    """The report of SPEC §12.5 over the reported settlements (standing ones, discharged in the months)."""

    months: tuple[str, str]
    settlements: int  # reported: discharged in the months and not undone
    replayed: int  # every settlement replayed, the earlier months of the years and undone ones included
    by_fund: Totals  # keys basic / critical / assistance / fund_pay / psn_pay / total
    by_scheme: dict[str, Totals]  # scheme → the same keys as by_fund
    by_band: Totals  # basic fund by band ("band 0", …, and "annual cap" for what the cap took off)
    rises: tuple[MemberChange, ...]  # own share rises most first
    falls: tuple[MemberChange, ...]  # own share falls most first


def reported(item: Recorded, months: tuple[str, str]) -> bool:
    return item.undone_sequence is None and months[0] <= item.month <= months[1]


def compare(baseline: dict[str, Replayed], draft: dict[str, Replayed], months: tuple[str, str],
            members_listed: int = MEMBERS_LISTED) -> WhatIf:
    """Aggregate the two replays of the same settlements over the reported ones."""
    assert baseline.keys() == draft.keys(), "both replays cover the same settlements"
    by_fund, by_band, by_scheme = Totals(), Totals(), {}
    shares: dict[str, list[int]] = {}  # member → [settlements, baseline psn, draft psn]
    count = 0
    for settlement_id, before in baseline.items():
        if not reported(before.recorded, months):
            continue
        count += 1
        after = draft[settlement_id]
        scheme = by_scheme.setdefault(before.recorded.member.scheme.value, Totals())
        for side, item in (("baseline", before), ("draft", after)):
            result = item.result
            for name, key in FUNDS:
                by_fund.add(side, name, getattr(result, key))
                scheme.add(side, name, getattr(result, key))
            for key in ("fund_pay_fen", "psn_pay_fen", "total_fen"):
                by_fund.add(side, key, getattr(result, key))
                scheme.add(side, key, getattr(result, key))
            banded = 0
            for band, paid_fen in item.band_fen:
                by_band.add(side, f"band {band}", paid_fen)
                banded += paid_fen
            by_band.add(side, "annual cap", result.hifp_fen - banded)
        scheme.settlements += 1
        share = shares.setdefault(before.recorded.member.member_id, [0, 0, 0])
        share[0] += 1
        share[1] += before.result.psn_pay_fen
        share[2] += after.result.psn_pay_fen
    by_fund.settlements = by_band.settlements = count
    changes = [MemberChange(member_id, *share) for member_id, share in shares.items()]
    rises = heapq.nsmallest(members_listed, (c for c in changes if c.change_fen > 0),
                            key=lambda c: (-c.change_fen, c.member_id))
    falls = heapq.nsmallest(members_listed, (c for c in changes if c.change_fen < 0),
                            key=lambda c: (c.change_fen, c.member_id))
    return WhatIf(months, count, len(baseline), by_fund, dict(sorted(by_scheme.items())), by_band,
                  tuple(rises), tuple(falls))


def policy_years(months: tuple[str, str]) -> tuple[str, str]:
    """The months the replay must read to report `months`: whole policy years (calendar years, as the
    accumulators), since a stay's ratios depend on the year's earlier stays and on stays settled before it."""
    return f"{months[0][:4]}-01", f"{months[1][:4]}-12"


def as_draft(policy: Policy, first_day: date) -> Policy:
    """The draft as if it had been in force all along: its `effective_from` moved back to `first_day`, so the
    replay applies it to every stay (a draft is usually dated in the future)."""
    return replace(policy, effective_from=min(policy.effective_from, first_day))
