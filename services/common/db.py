"""Postgres access for a party: one asyncpg pool and the party's SQL migrations, applied at start.

Migrations are plain files `migrations/NNNN_name.sql` beside each party's code, applied in order
under an advisory lock so two processes of one party starting together apply each once. A migration that
needs more than SQL (a keyed hash of existing rows, re-encoding stored protobuf) is `NNNN_name.py` with
`async def migrate(connection, context)`: it runs in the same transaction, in the same order, and gets the
party's `context` (e.g. the insured agency's member key).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import asyncpg

MIGRATION_LOCK_KEY = 727_100_001


async def init_connection(connection: asyncpg.Connection) -> None:
    """jsonb columns come back as Python values."""
    await connection.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


# A party is one asyncio process: a few connections keep it busy, and a whole stack of 16 pools
# must stay under Postgres's default max_connections (100).
POOL_SIZE_MAX = 4


# An idle connection is closed after this long (asyncpg's default). A test session runs several stacks on one
# server (max_connections 100) and lowers it, so a stack that is not in use holds no connections.
IDLE_CONNECTION_LIFETIME_S = float(os.environ.get("CLEARING_DB_IDLE_S") or 300.0)


async def keep_session(connection: asyncpg.Connection) -> None:
    """What a connection given back to the pool needs beyond the rollback of an open transaction that asyncpg
    always does: nothing. The services leave no session state (every advisory lock is transaction-scoped, no
    LISTEN, no cursor outside a transaction, no SET), so asyncpg's default reset query (`pg_advisory_unlock_all();
    CLOSE ALL; UNLISTEN *; RESET ALL`) would be one more round trip per acquire for nothing: about ten per
    discharge."""


async def create_pool(dsn: str, size_max: int = POOL_SIZE_MAX) -> asyncpg.Pool:
    return await asyncpg.create_pool(dsn, min_size=1, max_size=size_max, init=init_connection, reset=keep_session,
                                     server_settings={"timezone": "UTC"},
                                     max_inactive_connection_lifetime=IDLE_CONNECTION_LIFETIME_S)


def migration_files(directory: Path) -> list[Path]:
    """The SQL and Python migrations of `directory`, in the order of their names."""
    return sorted([*directory.glob("*.sql"), *directory.glob("*.py")], key=lambda path: path.name)


async def run_python_migration(connection: asyncpg.Connection, path: Path, context: dict[str, Any]) -> None:
    spec = importlib.util.spec_from_file_location(f"migration_{path.parent.parent.name}_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    await module.migrate(connection, context)


async def apply_migrations(pool: asyncpg.Pool, directory: Path, context: dict[str, Any] | None = None) -> list[str]:
    """Apply every migration of `directory` not applied yet; returns the names applied now. `context` is
    given to the Python migrations (what they need of the party's configuration)."""
    applied_now: list[str] = []
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        done = {row["name"] for row in await connection.fetch("SELECT name FROM schema_migrations")}
        for path in migration_files(directory):
            if path.name in done:
                continue
            if path.suffix == ".py":
                await run_python_migration(connection, path, context or {})
            else:
                await connection.execute(path.read_text(encoding="utf-8"))
            await connection.execute("INSERT INTO schema_migrations (name) VALUES ($1)", path.name)
            applied_now.append(path.name)
    return applied_now


async def drop_databases(admin_dsn: str, *names: str) -> None:
    """Drop databases `names` if they exist, whoever is still connected (a benchmark's or a test's own)."""
    connection = await asyncpg.connect(admin_dsn)
    try:
        for name in names:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def ensure_database(admin_dsn: str, name: str) -> None:
    """Create database `name` if it does not exist (one database per party)."""
    connection = await asyncpg.connect(admin_dsn)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
