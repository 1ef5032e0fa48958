"""Properties of the policy what-if replay (SPEC §12.5, clearing/whatif.py).

A "live" history is built the way the insured agency builds it: stays of a few members adjudicated one after
another in a drawn recording order, some cancelled later (the agency subtracts the recorded delta). Replaying
that history under the same policy is the identity on every split, with the lines as recorded or `condensed`;
comparing a replay with itself changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from test_core_properties import CORE, classified_lines, members, policies, stays

from clearing.adjudicate import adjudicate
from clearing.member import Ytd
from clearing.whatif import CHECKED_FIELDS, Recorded, compare, condensed, replay, self_check


@st.composite
def histories(draw):
    """(policy, settlements as recorded): 1–3 members, 2–8 stays, each possibly cancelled later."""
    policy = draw(policies())
    people = [replace(draw(members(policy)), member_id=f"M{index}") for index in range(draw(st.integers(1, 3)))]
    count = draw(st.integers(2, 8))
    plans = []
    for index in range(count):
        stay = draw(stays())
        stay = replace(stay, discharged_on=stay.discharged_on + timedelta(days=draw(st.integers(0, 200))))
        # A cancel comes after the stay, possibly after later stays: between stay sequences 10·(i+1) and the end.
        cancel_at = draw(st.one_of(st.none(), st.integers(10 * (index + 1) + 1, 10 * count + 5)))
        plans.append((draw(st.sampled_from(people)), stay, draw(classified_lines()), cancel_at))
    events = sorted([(10 * (i + 1), 0, i) for i in range(count)]
                    + [(plan[3], 1, i) for i, plan in enumerate(plans) if plan[3] is not None])
    ytds: dict[tuple[str, int], Ytd] = {}
    recorded: dict[int, Recorded] = {}
    deltas = {}
    for sequence, undo, i in events:
        member, stay, lines, cancel_at = plans[i]
        key = (member.member_id, stay.discharged_on.year)
        if undo:
            ytds[key] = ytds[key].minus(deltas[i])
            continue
        result = adjudicate(lines, stay, member, policy, ytds.get(key, Ytd()))
        ytds[key], deltas[i] = result.ytd_after, result.ytd_delta
        recorded[i] = Recorded(f"s{i}", member, stay, lines, sequence, cancel_at,
                               {name: getattr(result, name) for name in CHECKED_FIELDS}, result.ytd_before)
    return policy, list(recorded.values())


@CORE
@given(histories(), st.booleans(), st.randoms(use_true_random=False))
def test_replay_under_the_recorded_policy_is_the_identity_on_splits(case, condense, shuffler) -> None:
    policy, settlements = case
    if condense:
        settlements = [replace(item, lines=condensed(item.lines)) for item in settlements]
    shuffler.shuffle(settlements)  # the order given does not matter: the recorded sequence does
    replayed = replay(settlements, lambda item: policy)
    assert self_check(replayed) == []
    assert replayed.keys() == {item.settlement_id for item in settlements}


@CORE
@given(histories())
def test_a_draft_equal_to_the_policy_changes_nothing(case) -> None:
    policy, settlements = case
    baseline = replay(settlements, lambda item: policy)
    report = compare(baseline, replay(settlements, lambda item: replace(policy)), ("2026-01", "2026-12"))
    for totals in (report.by_fund, report.by_band, *report.by_scheme.values()):
        assert all(totals.change(key) == 0 for key in totals.baseline | totals.draft)
    assert report.rises == () and report.falls == ()
    standing = [item for item in settlements if item.undone_sequence is None and item.month <= "2026-12"]
    assert report.settlements == len(standing)
    assert report.by_fund.baseline.get("fund_pay_fen", 0) == sum(item.split["fund_pay_fen"] for item in standing)
    # The band rows (with the annual cap's row) add up to the basic fund.
    assert sum(report.by_band.baseline.values()) == report.by_fund.baseline.get("basic", 0)
