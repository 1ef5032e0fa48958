"""Months of the clearing house and of the treating agency's payout lists: the next month, and the first open
month a late posting counts in (clearing.dates)."""

from __future__ import annotations

import pytest

from clearing.dates import first_open_month, next_month


@pytest.mark.parametrize(("month", "after"), [("2026-03", "2026-04"), ("2026-12", "2027-01"), ("0001-01", "0001-02"),
                                              ("2099-11", "2099-12")])
def test_next_month(month: str, after: str) -> None:
    assert next_month(month) == after


@pytest.mark.parametrize(("month", "closed", "expected"), [
    ("2026-03", set(), "2026-03"),
    ("2026-03", {"2026-02"}, "2026-03"),  # an earlier closed month does not matter
    ("2026-03", {"2026-03"}, "2026-04"),
    ("2026-12", {"2026-12", "2027-01"}, "2027-02"),  # over a year's end, past every closed month in a row
    ("2026-03", {"2026-03", "2026-05"}, "2026-04"),  # the first gap
])
def test_a_late_posting_counts_in_the_first_open_month(month: str, closed: set[str], expected: str) -> None:
    assert first_open_month(month, closed) == expected
