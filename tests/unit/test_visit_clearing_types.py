"""Visits (med_type 14) as their own clearing type: the 3201 totals keep them apart from stays (and stays-only days
look as before), and the year summary adds up the months' visit figures (services/clearinghouse/statements.py)."""

from __future__ import annotations

from clearinghouse.v1 import clearing_house_pb2 as pb

from clearing.reconcile import DailyTotals, DetailLine, daily_totals, totals_agree
from services.clearinghouse import statements


def test_daily_totals_split_stays_and_visits_and_a_stays_only_day_is_unchanged():
    stays = [DetailLine("a", "settled", False, 1000, 600, 400), DetailLine("b", "pending", True)]
    assert daily_totals(stays) == (DailyTotals("cross_region", 1, 1000, 600, 400, 0),
                                   DailyTotals("local", 0, 0, 0, 0, 1))
    visit = DetailLine("c", "settled", False, 500, 450, 50, med_type=14)
    assert daily_totals([*stays, visit]) == (DailyTotals("cross_region", 1, 1000, 600, 400, 0),
                                             DailyTotals("cross_region", 1, 500, 450, 50, 0, med_type=14),
                                             DailyTotals("local", 0, 0, 0, 0, 1))
    # The same money as a stay on one side and a visit on the other does not agree.
    as_stay = DetailLine("c", "settled", False, 500, 450, 50)
    assert not totals_agree(daily_totals([visit]), daily_totals([as_stay]))
    assert totals_agree(daily_totals([visit]), daily_totals([visit]))


def totals(visits: int = 0, **figures: int) -> dict[str, int]:
    values = {key: 0 for key in statements.TOTAL_KEYS}
    values.update(figures)
    values.update({f"visit_{key}": visits for key in statements.VISIT_KEYS})
    return values


def test_year_totals_add_the_months_visit_figures_and_stays_only_months_carry_none():
    closing = pb.MonthClosing(month="2026-03", positions=[pb.NetPosition(region="430100", net_fen=-700)])
    with_visits = statements.month_summary("430100", closing, totals(visits=0, owed_by_fen=700) | {
        "visit_entries_as_insured": 2, "visit_owed_by_fen": 300})
    stays_only = statements.month_summary("430100", pb.MonthClosing(month="2026-04"), totals())
    assert with_visits.outpatient_special.owed_by_fen == 300 and not stays_only.HasField("outpatient_special")
    year = statements.add_up([with_visits, stays_only])
    assert (year.outpatient_special.entries_as_insured, year.outpatient_special.owed_by_fen) == (2, 300)
    assert year.owed_by_fen == 700
    statements.check_totals(year, totals(owed_by_fen=700) | {"visit_entries_as_insured": 2, "visit_owed_by_fen": 300})
    assert statements.add_up([stays_only]) == pb.StatementTotals(closed_months=1)
