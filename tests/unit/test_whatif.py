"""Policy what-if (SPEC §12.5): `clearing/whatif.py`, replayed on hand-built settlements.

Unless a test says otherwise the stays are at level-3 hospitals in 440100 for members of 430100 (filed as
residents, so no cut), 10,000.00 yuan wholly in scope each, under a policy with no deductible and two basic
bands: 0–50,000.00 yuan at 80 %, above at 90 %.
"""

from __future__ import annotations

from datetime import date

import pytest

from conftest import classified, member, policy, stay

from clearing.adjudicate import adjudicate
from clearing.errors import InvalidField
from clearing.member import Ytd
from clearing.policy import Policy, Scheme
from clearing.whatif import Recorded, as_draft, compare, policy_years, replay, self_check

BANDS = ((5_000_000, 8000), (None, 9000))
IN_FORCE = policy(bands=BANDS)


def recorded_year(stays: list[tuple[str, int, date]], pol: Policy = IN_FORCE,
                  undone: dict[int, int] | None = None) -> list[Recorded]:
    """Settlements (member id, inscp fen, discharge day) adjudicated the live way, one after another in the
    given order (sequence 10, 20, …); `undone` maps a position to the sequence its cancel came at. The recorded
    split is what the live adjudication answered."""
    ytds: dict[tuple[str, int], Ytd] = {}
    out, deltas = [], {}
    events = sorted([(10 * (i + 1), 0, i) for i in range(len(stays))]
                    + [(seq, 1, i) for i, seq in (undone or {}).items()])
    results = {}
    for _, undo, i in events:
        member_id, inscp_fen, discharged_on = stays[i]
        key = (member_id, discharged_on.year)
        if undo:
            ytds[key] = ytds[key].minus(deltas[i])
            continue
        mem = member_with_id(member_id)
        facts = stay(admitted_on=discharged_on, discharged_on=discharged_on)
        lines = (classified(inscp_fen=inscp_fen),)
        result = adjudicate(lines, facts, mem, pol, ytds.get(key, Ytd()))
        ytds[key], deltas[i] = result.ytd_after, result.ytd_delta
        results[i] = (mem, facts, lines, result)
    for i, (mem, facts, lines, result) in sorted(results.items()):
        out.append(Recorded(f"s{i}", mem, facts, lines, 10 * (i + 1), (undone or {}).get(i),
                            {name: getattr(result, name) for name in (
                                "total_fen", "inscp_fen", "deductible_fen", "eligible_fen", "hifp_fen", "burden_fen",
                                "hifmi_fen", "assist_base_fen", "maf_fen", "fund_pay_fen", "psn_pay_fen")},
                            result.ytd_before))
    return out


def member_with_id(member_id: str):  # noqa: ANN201
    from dataclasses import replace
    return replace(member(), member_id=member_id)


MARCH = ("2026-03", "2026-03")


def test_replay_under_the_policy_in_force_reproduces_every_split() -> None:
    # M1: 30,000 in January, 40,000 in March (crosses the band end at 50,000); M2: 10,000 in March.
    settled = recorded_year([("M1", 3_000_000, date(2026, 1, 5)), ("M1", 4_000_000, date(2026, 3, 5)),
                             ("M2", 1_000_000, date(2026, 3, 6))])
    replayed = replay(settled, lambda item: IN_FORCE)
    assert self_check(replayed) == []
    # The March stay of M1: 20,000 at 80 % + 20,000 at 90 % = 16,000 + 18,000 = 34,000.00 yuan, because January's
    # 30,000 was replayed first (the replay starts at the beginning of the policy year).
    assert replayed["s1"].result.hifp_fen == 3_400_000
    assert replayed["s1"].band_fen == ((0, 1_600_000), (1, 1_800_000))


def test_a_replay_from_the_reported_month_alone_would_not_reproduce() -> None:
    # Why the caller passes the whole year: without January, M1's March stay would sit at the start of the axis.
    settled = recorded_year([("M1", 3_000_000, date(2026, 1, 5)), ("M1", 4_000_000, date(2026, 3, 5))])
    mismatches = self_check(replay(settled[1:], lambda item: IN_FORCE))
    assert [(m.settlement_id, m.field, m.recorded_fen, m.replayed_fen) for m in mismatches] == [
        ("s1", "hifp_fen", 3_400_000, 3_200_000)]  # 40,000 × 80 % = 32,000.00


def test_changing_one_band_ratio_changes_the_fund_pay_by_the_hand_computed_figure() -> None:
    settled = recorded_year([("M1", 3_000_000, date(2026, 1, 5)), ("M1", 4_000_000, date(2026, 3, 5)),
                             ("M2", 1_000_000, date(2026, 3, 6))])
    draft = policy(bands=((5_000_000, 8000), (None, 9500)))  # the upper band 90 % → 95 %
    baseline = replay(settled, lambda item: IN_FORCE)
    report = compare(baseline, replay(settled, lambda item: draft), MARCH)
    # Reported: March only (2 stays). Only M1's 20,000 above 50,000 is in the upper band: +5 % of 20,000 = +1,000.
    assert report.settlements == 2 and report.replayed == 3
    assert report.by_fund.baseline["basic"] == 3_400_000 + 800_000  # 34,000 + M2's 10,000 × 80 %
    assert report.by_fund.change("basic") == 100_000
    assert report.by_fund.change("fund_pay_fen") == 100_000
    assert report.by_fund.change("psn_pay_fen") == -100_000
    assert report.by_fund.change("critical") == 0 and report.by_fund.change("assistance") == 0
    assert report.by_band.change("band 1") == 100_000 and report.by_band.change("band 0") == 0
    assert report.by_scheme["employee"].change("fund_pay_fen") == 100_000
    assert report.by_scheme["employee"].change("basic") == 100_000
    assert [(c.member_id, c.change_fen) for c in report.falls] == [("M1", -100_000)]
    assert report.rises == ()


def test_a_lower_band_ratio_moves_later_stays_of_the_year_too() -> None:
    # The lower band 80 % → 70 %: January's 30,000 pays 3,000 less (not reported), March's first 20,000 of M1
    # pays 2,000 less and M2's 10,000 pays 1,000 less: −3,000.00 yuan reported; M1's share rises most.
    settled = recorded_year([("M1", 3_000_000, date(2026, 1, 5)), ("M1", 4_000_000, date(2026, 3, 5)),
                             ("M2", 1_000_000, date(2026, 3, 6))])
    draft = policy(bands=((5_000_000, 7000), (None, 9000)))
    report = compare(replay(settled, lambda item: IN_FORCE), replay(settled, lambda item: draft), MARCH)
    assert report.by_fund.change("basic") == -300_000
    assert report.by_band.change("band 0") == -300_000
    assert [(c.member_id, c.change_fen) for c in report.rises] == [("M1", 200_000), ("M2", 100_000)]


def test_a_cancelled_stay_moves_the_accumulators_until_its_cancel_and_pays_nothing() -> None:
    # M1: A 40,000 (seq 10), B 20,000 (seq 20) — B saw A: 10,000 at 80 % + 10,000 at 90 % = 17,000 —, A cancelled
    # (seq 25), C 20,000 (seq 30) on 40,000 − 40,000 + 20,000 = 20,000: all at 80 % = 16,000.
    settled = recorded_year([("M1", 4_000_000, date(2026, 3, 1)), ("M1", 2_000_000, date(2026, 3, 2)),
                             ("M1", 2_000_000, date(2026, 3, 3))], undone={0: 25})
    replayed = replay(settled, lambda item: IN_FORCE)
    assert self_check(replayed) == []
    assert [replayed[s].result.hifp_fen for s in ("s0", "s1", "s2")] == [3_200_000, 1_700_000, 1_600_000]
    report = compare(replayed, replay(settled, lambda item: IN_FORCE), MARCH)
    assert report.settlements == 2 and report.by_fund.baseline["basic"] == 3_300_000  # A is not paid


def test_order_is_the_recording_order_not_the_discharge_order() -> None:
    # B (discharged 3-01) was recorded after A (discharged 3-09): B saw A's 60,000 and pays 90 % of all of it.
    settled = recorded_year([("M1", 6_000_000, date(2026, 3, 9)), ("M1", 1_000_000, date(2026, 3, 1))])
    replayed = replay(settled, lambda item: IN_FORCE)
    assert self_check(replayed) == []
    assert replayed["s1"].result.hifp_fen == 900_000


def test_each_policy_year_starts_from_zero() -> None:
    settled = recorded_year([("M1", 6_000_000, date(2026, 12, 20)), ("M1", 1_000_000, date(2027, 1, 3))])
    replayed = replay(settled, lambda item: IN_FORCE)
    assert self_check(replayed) == []
    assert replayed["s1"].result.hifp_fen == 800_000  # 2027's first 10,000 at 80 %


def test_a_draft_without_the_members_scheme_is_an_error_naming_it() -> None:
    settled = recorded_year([("M1", 1_000_000, date(2026, 3, 1))])
    draft = policy(scheme="resident")
    with pytest.raises(InvalidField, match="member.scheme"):
        replay(settled, lambda item: draft)


def test_the_self_check_names_the_first_field_that_differs() -> None:
    settled = recorded_year([("M1", 1_000_000, date(2026, 3, 1))])
    other = policy(bands=((None, 7000),))
    mismatches = self_check(replay(settled, lambda item: other))
    assert [(m.field, m.recorded_fen, m.replayed_fen) for m in mismatches] == [("hifp_fen", 800_000, 700_000)]


def test_months_to_read_are_whole_policy_years_and_a_draft_applies_to_every_stay() -> None:
    assert policy_years(("2026-03", "2027-02")) == ("2026-01", "2027-12")
    draft = as_draft(policy(effective_from="2027-01-01", bands=BANDS), date(2026, 1, 1))
    assert draft.effective_from == date(2026, 1, 1)
    assert draft.schemes[Scheme.EMPLOYEE] == IN_FORCE.schemes[Scheme.EMPLOYEE]
