"""The services' clock. The core never reads a clock; services read it here, in one place.

In production it is the system clock. A demo or a test runs a month in minutes, so the clock can be
shifted by an offset, for every party of a stack at once:

* in one process (the in-process test stack): `set_offset`;
* across processes: the launcher sets `CLEARING_CLOCK_FILE` to a file holding the offset in whole seconds
  (`write_offset_file`); every process re-reads it when it changes (checked at most every
  `FILE_CHECK_S`), so `clearing-admin demo` can move every party to the first of next month to close
  this one. A shifted clock is logged as a warning when a service starts (`describe`).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from clearing.errors import InvalidField

SHANGHAI = ZoneInfo("Asia/Shanghai")
CLOCK_FILE_ENV = "CLEARING_CLOCK_FILE"
FILE_CHECK_S = 0.05


class ShiftedClock:
    """The offset from the system clock, kept in memory and, when a file is configured, read from it."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.offset = timedelta(0)
        self.checked_at = float("-inf")
        self.file_signature: tuple[int, int, int] | None = None

    def current_offset(self) -> timedelta:
        if self.path is not None and time.monotonic() - self.checked_at >= FILE_CHECK_S:
            self.checked_at = time.monotonic()
            try:
                found = self.path.stat()
                # A new file replaces the old one on every change (write_offset_file), so its inode tells even
                # two changes within one tick of the file system's clock apart.
                signature = (found.st_ino, found.st_mtime_ns, found.st_size)
            except FileNotFoundError:
                signature = None
            if signature != self.file_signature:
                self.file_signature = signature
                self.offset = read_offset_file(self.path)
        return self.offset


def read_offset_file(path: Path) -> timedelta:
    """The offset a clock file holds; a missing file is no offset."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return timedelta(0)
    return timedelta(seconds=int(text or "0"))


def write_offset_file(path: Path, offset: timedelta) -> None:
    """Move the clock of every process started with `CLEARING_CLOCK_FILE=path` (atomically: write, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(f"{int(offset.total_seconds())}\n", encoding="ascii")
    os.replace(partial, path)


_clock = ShiftedClock(Path(os.environ[CLOCK_FILE_ENV]) if os.environ.get(CLOCK_FILE_ENV) else None)


def offset() -> timedelta:
    return _clock.current_offset()


def set_offset(value: timedelta) -> None:
    """Shift this process's clock (in-process test stacks); a clock file, when configured, is not consulted
    again until it changes."""
    _clock.offset = value


def offset_to(instant: datetime) -> timedelta:
    """The offset that makes the clock read `instant` now (to whole seconds)."""
    return timedelta(seconds=round((instant - datetime.now(UTC)).total_seconds()))


def describe() -> str | None:
    """A warning for a service's start when the clock is shifted, else None."""
    shift = offset()
    if _clock.path is None and not shift:
        return None
    return f"the clock is shifted by {shift} ({CLOCK_FILE_ENV}={_clock.path}): for demos and tests only"


def now_utc() -> datetime:
    return datetime.now(UTC) + _clock.current_offset()


def shanghai_today() -> date:
    return now_utc().astimezone(SHANGHAI).date()


def clearing_month(instant: datetime) -> str:
    """`YYYY-MM` of an instant in Asia/Shanghai: the month a settlement clears in (SPEC §3)."""
    return instant.astimezone(SHANGHAI).strftime("%Y-%m")


def shanghai_instant(day: date, hour: int = 12) -> datetime:
    """Noon (or `hour`) of a calendar day in Asia/Shanghai."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI)


# A hospital's clock may run a little ahead of ours: a day it already sees as today is accepted this long before
# our midnight.
CLOCK_SKEW = timedelta(minutes=10)


def latest_day() -> date:
    """The latest admission, discharge or service day a party accepts: today in Asia/Shanghai, allowing for skew."""
    return (now_utc() + CLOCK_SKEW).astimezone(SHANGHAI).date()


def check_not_after_today(day: date, field: str) -> date:
    """Refuse a day in the future (a discharge next year would be adjudicated against that year's empty
    accumulators: a fresh 起付线 and caps, issue 9 item 5)."""
    latest = latest_day()
    if day > latest:
        raise InvalidField(field, f"{day.isoformat()} is after today ({latest.isoformat()}, Asia/Shanghai)")
    return day
