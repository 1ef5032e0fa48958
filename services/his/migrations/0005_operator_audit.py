"""The operator audit log's tables (docs/security.md "Operator audit log"): the schema every party shares,
services/security/operator_audit_0001.sql, applied in this migration's transaction."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.security.audit_log import apply_schema


async def migrate(connection: asyncpg.Connection, context: dict[str, Any]) -> None:
    await apply_schema(connection, "operator_audit_0001.sql")
