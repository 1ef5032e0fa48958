"""The demo regions' outpatient sections at work (services/regions/policies): a dialysis patient's month of
sessions three times a week meets each region's monthly 定额 exactly, and the next month starts afresh."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from opd_cases import in_scope, member

from clearing.member import Ytd
from clearing.outpatient.adjudicate import VisitFacts, adjudicate_visit
from clearing.outpatient.member import Recognition
from clearing.policy import Disease, parse_policy
from services.common.regions import REGIONS_DIR, demo_region_codes

SESSION_FEN = 80_000  # 800.00 yuan a haemodialysis session, all in scope
# Mondays, Wednesdays and Fridays of March 2026 (1 March is a Sunday): 13 sessions.
MARCH_SESSIONS = [date(2026, 3, 1) + timedelta(days=offset) for offset in range(31)
                  if (date(2026, 3, 1) + timedelta(days=offset)).weekday() in (0, 2, 4)]


@pytest.mark.parametrize("region", demo_region_codes())
def test_a_month_of_dialysis_meets_the_regions_monthly_limit(region: str) -> None:
    policy = parse_policy((REGIONS_DIR / "policies" / f"{region}_2026.toml").read_text(encoding="utf-8"))
    section = policy.outpatient_special[Disease.DIALYSIS]
    assert section.monthly_limit_fen and len(MARCH_SESSIONS) == 13
    insured = member(region=region)
    recognitions = (Recognition(Disease.DIALYSIS, date(2025, 1, 1), None),)
    treating = "440100" if region != "440100" else "430100"
    special, ytd, paid = {}, Ytd(), []
    for day in [*MARCH_SESSIONS, date(2026, 4, 1)]:
        result = adjudicate_visit((in_scope(SESSION_FEN, on=day),), VisitFacts(treating, 3, day, Disease.DIALYSIS),
                                  insured, recognitions, policy, ytd, special)
        special, ytd = {Disease.DIALYSIS: result.special_after}, result.ytd_after
        paid.append(result.fund_pay_fen)
    # 13 sessions at 80–90 % of 800.00 are more than any region's 定额 (4,000–6,000.00): March pays it exactly.
    assert sum(paid[:-1]) == section.monthly_limit_fen
    full_fen = SESSION_FEN * section.ratio_bp[3] // 10_000  # the ratios are whole percentages: no rounding
    assert paid[0] == full_fen and paid[-2] == 0
    assert paid[-1] == full_fen  # 1 April: a new month
    assert special[Disease.DIALYSIS].month == "2026-04"
    assert special[Disease.DIALYSIS].paid_fen == section.monthly_limit_fen + full_fen
    assert ytd.hifp_fen == (special[Disease.DIALYSIS].paid_fen if section.shares_inpatient_cap else 0)


def test_guangzhou_dialysis_worked_by_hand() -> None:
    # 440100: 90 % of 800.00 = 720.00 a session; 8 sessions = 5,760.00, the 9th gets the 240.00 the 6,000.00 定额
    # leaves, the other four nothing.
    policy = parse_policy((REGIONS_DIR / "policies" / "440100_2026.toml").read_text(encoding="utf-8"))
    special, paid = {}, []
    for day in MARCH_SESSIONS:
        result = adjudicate_visit((in_scope(SESSION_FEN, on=day),), VisitFacts("430100", 3, day, Disease.DIALYSIS),
                                  member(region="440100"), (Recognition(Disease.DIALYSIS, date(2025, 1, 1), None),),
                                  policy, Ytd(), special)
        special = {Disease.DIALYSIS: result.special_after}
        paid.append(result.fund_pay_fen)
    assert paid == [72_000] * 8 + [24_000] + [0] * 4
