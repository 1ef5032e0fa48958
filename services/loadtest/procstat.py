"""CPU time and peak memory of processes, read from Linux `/proc` (no psutil: two small text formats).

* CPU: `utime + stime` of `/proc/<pid>/stat` (fields 14 and 15, clock ticks), plus `cutime + cstime` (16, 17):
  the time of its children that have exited and been waited for. A **tree** is a root process and its live
  children: the embedded Postgres is its postmaster and one backend per connection, which come and go during
  a run; a backend that exits moves its time into the postmaster's `cutime`, so the sum over the tree only ever
  grows, and the difference of two snapshots is the CPU the tree used in between.
* Peak memory: `VmHWM` of `/proc/<pid>/status` (the resident set's high-water mark since the process started).
  A Postgres backend counts the shared buffers it touched, so for a tree the harness reports the largest
  process, never a sum (which would count shared memory once per backend).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcStat:
    pid: int
    ppid: int
    utime: int  # clock ticks
    stime: int
    cutime: int  # of exited, waited-for children
    cstime: int

    @property
    def own_ticks(self) -> int:
        return self.utime + self.stime

    @property
    def with_children_ticks(self) -> int:
        return self.utime + self.stime + self.cutime + self.cstime


def parse_stat(text: str) -> ProcStat:
    """One `/proc/<pid>/stat` line. The command name (field 2) is in parentheses and may hold spaces and
    parentheses itself, so the fields are counted from the last `)`."""
    pid_text, _, rest = text.partition(" (")
    fields = rest[rest.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): field n is fields[n - 3].
    return ProcStat(pid=int(pid_text), ppid=int(fields[1]), utime=int(fields[11]), stime=int(fields[12]),
                    cutime=int(fields[13]), cstime=int(fields[14]))


def parse_status_kb(text: str, key: str) -> int | None:
    """The value in kB of `key` (e.g. `VmHWM`) in a `/proc/<pid>/status` text; None when absent (a kernel thread,
    a zombie)."""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == key:
            number, _, unit = value.strip().partition(" ")
            assert unit == "kB", line
            return int(number)
    return None


def read_stat(pid: int, proc: Path = PROC) -> ProcStat | None:
    """None when the process is gone."""
    try:
        return parse_stat((proc / str(pid) / "stat").read_text())
    except (FileNotFoundError, ProcessLookupError):
        return None


def peak_rss_kb(pid: int, proc: Path = PROC) -> int | None:
    try:
        return parse_status_kb((proc / str(pid) / "status").read_text(), "VmHWM")
    except (FileNotFoundError, ProcessLookupError):
        return None


def children_of(ppid: int, proc: Path = PROC) -> list[int]:
    """The live children of `ppid` (walks every `/proc/<pid>/stat`: there is no child list for a process)."""
    children = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name), proc)
            if stat is not None and stat.ppid == ppid:
                children.append(stat.pid)
    return children


def tree_cpu_ticks(root: int, proc: Path = PROC) -> int | None:
    """CPU ticks used so far by `root` and its children, exited or live (see the module docstring); None when
    `root` is gone."""
    stat = read_stat(root, proc)
    if stat is None:
        return None
    total = stat.with_children_ticks
    for child in children_of(root, proc):
        child_stat = read_stat(child, proc)
        if child_stat is not None:
            total += child_stat.own_ticks
    return total


def tree_peak_rss_kb(root: int, proc: Path = PROC) -> int | None:
    """The largest peak resident set of `root` and its live children, in kB."""
    peaks = [peak for pid in (root, *children_of(root, proc)) if (peak := peak_rss_kb(pid, proc)) is not None]
    return max(peaks) if peaks else None


@dataclass(frozen=True)
class Watched:
    """A process the harness measures: a name (`clearinghouse`, `region:440100`, `postgres`, `loadgen:0`) and
    its pid; `tree` for a root whose children count with it (the Postgres server)."""

    name: str
    pid: int
    tree: bool = False

    def cpu_ticks(self, proc: Path = PROC) -> int | None:
        if self.tree:
            return tree_cpu_ticks(self.pid, proc)
        stat = read_stat(self.pid, proc)
        return None if stat is None else stat.with_children_ticks

    def peak_rss_kb(self, proc: Path = PROC) -> int | None:
        return tree_peak_rss_kb(self.pid, proc) if self.tree else peak_rss_kb(self.pid, proc)


def cpu_snapshot(watched: list[Watched], proc: Path = PROC) -> dict[str, int | None]:
    """name → CPU ticks so far (None for a process that is gone)."""
    return {item.name: item.cpu_ticks(proc) for item in watched}


def cpu_seconds_between(start: dict[str, int | None], end: dict[str, int | None]) -> dict[str, float | None]:
    """name → CPU seconds used between two snapshots (None when the process was missing at either end)."""
    used: dict[str, float | None] = {}
    for name, ticks in end.items():
        before = start.get(name)
        used[name] = None if ticks is None or before is None else (ticks - before) / CLOCK_TICKS_PER_S
    return used
