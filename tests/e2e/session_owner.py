"""Not collected by the suite (the name does not match test_*.py): a test session that owns the embedded Postgres
and waits to be signalled, run explicitly by test_database_owners.py as `pytest tests/e2e/session_owner.py`."""

import time


def test_wait_holding_the_session_database(database):
    print(f"READY {database.base_dsn}", flush=True)
    time.sleep(120)
