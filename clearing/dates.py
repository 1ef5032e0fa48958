"""Calendar days (Asia/Shanghai) as `datetime.date`, parsed strictly from ISO text (SPEC §3)."""

from __future__ import annotations

from datetime import date

from clearing.errors import InvalidField


def parse_day(text: object, field: str) -> date:
    """Parse `YYYY-MM-DD`; anything else is `InvalidField(field, …)`."""
    if not isinstance(text, str) or len(text) != 10:
        raise InvalidField(field, "must be an ISO date YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidField(field, f"{text!r} is not a valid date") from None
