"""The services' clock. The core never reads a clock; services read it here, in one place."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def now_utc() -> datetime:
    return datetime.now(UTC)


def shanghai_today() -> date:
    return datetime.now(SHANGHAI).date()


def clearing_month(instant: datetime) -> str:
    """`YYYY-MM` of an instant in Asia/Shanghai: the month a settlement clears in (SPEC §3)."""
    return instant.astimezone(SHANGHAI).strftime("%Y-%m")
