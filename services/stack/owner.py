"""Who owns a stack directory: one `clearing-admin stack up` per `--dir`, found again by `stack status` and
`stack down` from another terminal.

The owner holds an exclusive `flock` on `DIR/stack.lock` for as long as it lives. The kernel drops the lock when
the process ends, however it ends (SIGKILL included), so the lock, not a pid file, says whether a stack runs: a
second `stack up` that cannot take it is refused instead of starting nine more services on the same databases and
overwriting `stack.json`. Next to the lock, `DIR/stack.owner.json` says who holds it (pid, since when) and, once
they are up, the services' pids; it is informative only and may be stale or missing.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

LOCK_NAME = "stack.lock"
OWNER_NAME = "stack.owner.json"


@dataclass
class OwnerInfo:
    """What `stack.owner.json` says: the owner's pid, when it started (UTC, ISO 8601), its services' pids."""

    pid: int = 0
    started_at: str = ""
    services: dict[str, int] = field(default_factory=dict)  # role → pid

    def since(self) -> str:
        """The owner's start as local time for a message (the raw text when it cannot be parsed)."""
        try:
            return datetime.fromisoformat(self.started_at).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        except ValueError:
            return self.started_at or "an unknown time"


class StackBusy(Exception):
    """Another process holds the directory's lock: a stack runs (or is starting, or stopping) there."""

    def __init__(self, work_dir: Path, owner: OwnerInfo | None) -> None:
        super().__init__(str(work_dir))
        self.work_dir = work_dir
        self.owner = owner


def read_owner(work_dir: Path) -> OwnerInfo | None:
    try:
        data = json.loads((work_dir / OWNER_NAME).read_text(encoding="utf-8"))
        return OwnerInfo(pid=int(data["pid"]), started_at=str(data.get("started_at", "")),
                         services={str(k): int(v) for k, v in data.get("services", {}).items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def running_owner(work_dir: Path) -> OwnerInfo | None:
    """The owner of the stack running in `work_dir` (pid 0 when it has not said yet), or None when none runs."""
    lock_path = work_dir / LOCK_NAME
    if not lock_path.exists():
        return None
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return read_owner(work_dir) or OwnerInfo()
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


class StackOwner:
    """This process's claim on a stack directory: `claim()` takes the lock or raises `StackBusy`; `release()`."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.info = OwnerInfo(pid=os.getpid(), started_at=datetime.now(UTC).isoformat(timespec="seconds"))
        self.handle = None

    def claim(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        # Opened without O_CLOEXEC being cleared (Python's default): no child (a service, postgres) inherits it.
        handle = (self.work_dir / LOCK_NAME).open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StackBusy(self.work_dir, read_owner(self.work_dir) or OwnerInfo()) from None
        self.handle = handle
        self.write()

    def record_services(self, pids: dict[str, int]) -> None:
        self.info.services = dict(pids)
        self.write()

    def write(self) -> None:
        path = self.work_dir / OWNER_NAME
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self.info), indent=2), encoding="utf-8")
        temporary.replace(path)

    def release(self) -> None:
        if self.handle is None:
            return
        (self.work_dir / OWNER_NAME).unlink(missing_ok=True)
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()
        self.handle = None
