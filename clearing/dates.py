"""Calendar days (Asia/Shanghai) as `datetime.date`, parsed strictly from ISO text (SPEC §3)."""

from __future__ import annotations

import re
from datetime import date

from clearing.errors import InvalidField

# fromisoformat alone also takes ISO week dates (2026-W10-1).
ISO_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


def parse_day(text: object, field: str) -> date:
    """Parse `YYYY-MM-DD`; anything else is `InvalidField(field, …)`."""
    if not isinstance(text, str) or not ISO_DAY.match(text):
        raise InvalidField(field, "must be an ISO date YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidField(field, f"{text!r} is not a valid date") from None


def check_month(text: object, field: str) -> str:
    """A month `YYYY-MM` (clearing months, statement months); anything else is `InvalidField`."""
    if not isinstance(text, str) or len(text) != 7 or text[4] != "-" \
            or not (text[:4] + text[5:]).isascii() or not (text[:4] + text[5:]).isdigit() or not 1 <= int(text[5:]) <= 12 \
            or int(text[:4]) < 1:  # year 0 has no calendar days (datetime.date)
        raise InvalidField(field, "must be a month YYYY-MM")
    return text


YEAR_MIN, YEAR_MAX = 2000, 2100  # the years a policy or a clearing month can be in


def check_year(text: object, field: str) -> str:
    """A calendar year `YYYY` (year-end summaries); anything else is `InvalidField`."""
    if not isinstance(text, str) or len(text) != 4 or not text.isascii() or not text.isdigit() \
            or not YEAR_MIN <= int(text) <= YEAR_MAX:
        raise InvalidField(field, f"must be a year YYYY from {YEAR_MIN} to {YEAR_MAX}")
    return text


def next_month(month: str) -> str:
    """The month after `YYYY-MM`."""
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def first_open_month(month: str, closed: set[str]) -> str:
    """The month a new posting counts in: its commit month, or the first open month after it when that month
    is closed already (an adjustment, never an edit of a closed month). Used for the clearing house's months and
    the treating agency's payout months alike."""
    for _ in range(len(closed) + 1):  # bounded: each step passes one closed month
        if month not in closed:
            return month
        month = next_month(month)
    raise AssertionError("unreachable: more steps than closed months")
