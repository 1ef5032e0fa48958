"""Request ids and content comparison for idempotency (SPEC §8).

A party stores the serialized first request under its `request_id`; a retry is compared with it
field by field, and the first differing field is named in ALREADY_EXISTS (TigerBeetle's
`exists_with_different_*`).
"""

from __future__ import annotations

import uuid

import asyncpg
from google.protobuf.message import Message

from clearing.errors import InvalidField, RequestConflict


def check_request_id(value: str, field: str = "request_id") -> str:
    """A request id is a UUID (UUID4 recommended), in canonical lower-case form."""
    try:
        parsed = uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise InvalidField(field, "must be a UUID such as 3f1c…-…") from None
    return str(parsed)


def first_difference(first: Message, second: Message, prefix: str = "") -> str | None:
    """Path of the first field that differs between two messages of one type, or None if equal."""
    assert first.DESCRIPTOR is second.DESCRIPTOR
    for field in first.DESCRIPTOR.fields:
        path = f"{prefix}{field.name}"
        a, b = getattr(first, field.name), getattr(second, field.name)
        if field.message_type is not None and not field.message_type.GetOptions().map_entry:
            if field.is_repeated:
                if len(a) != len(b):
                    return path
                for index, (item_a, item_b) in enumerate(zip(a, b)):
                    inner = first_difference(item_a, item_b, f"{path}[{index}].")
                    if inner:
                        return inner
                continue
            if first.HasField(field.name) != second.HasField(field.name):
                return path
            inner = first_difference(a, b, f"{path}.")
            if inner:
                return inner
            continue
        if field.is_repeated:
            if list(a) != list(b):
                return path
        elif field.has_presence and first.HasField(field.name) != second.HasField(field.name):
            return path
        elif a != b:
            return path
    return None


def same_request_or_conflict(stored: bytes, request: Message) -> None:
    """Raise `RequestConflict` naming the first field in which `request` differs from the stored one."""
    earlier = type(request)()
    earlier.ParseFromString(stored)
    difference = first_difference(earlier, request)
    if difference is not None:
        raise RequestConflict(difference)


async def lock_request(conn: asyncpg.Connection, request_id: str) -> None:
    """The one mechanism that makes a mutating RPC safe against concurrent copies of one request (a client
    retrying while its first call still runs): a transaction-scoped advisory lock on the request id, taken
    before the id is looked up. The second copy waits for the first's commit, then finds its record and replays
    it — never a unique violation (INTERNAL), never a second effect. Its key space (hash seed 1) is apart from
    the settlement-id locks (services/common/locks.py, seed 0), so the two never wait for each other by chance."""
    assert conn.is_in_transaction(), "the lock lives as long as the transaction that records the request"
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 1))", request_id)


async def replay(conn: asyncpg.Connection, request_id: str, rpc: str, request: Message) -> bytes | None:
    """The stored response of an earlier request with this id, or None if it is new; call it inside the
    transaction that will `remember` the answer: it takes the request's lock first (`lock_request`).

    The same id with different content (or used for another RPC) is `RequestConflict`.
    """
    await lock_request(conn, request_id)
    return await stored_answer(conn, request_id, rpc, request)


async def stored_answer(conn: asyncpg.Connection, request_id: str, rpc: str, request: Message) -> bytes | None:
    """`replay` without the lock: a look before the work, outside any transaction (the work's own transaction
    looks again with `replay`)."""
    row = await conn.fetchrow("SELECT rpc, request, response FROM requests WHERE request_id = $1", uuid.UUID(request_id))
    if row is None:
        return None
    if row["rpc"] != rpc:
        raise RequestConflict("request_id", f"was already used for {row['rpc']}")
    same_request_or_conflict(bytes(row["request"]), request)
    return bytes(row["response"])


async def remember(conn: asyncpg.Connection, request_id: str, rpc: str, request: Message, response: Message,
                   key: tuple[str, str] | None = None) -> None:
    """Record the request and its answer; commit it together with the effect it describes. `key` is the
    (insured region, month) the clearing house's partitioned request log files it under (migration 0014); the
    other parties' logs have no such columns."""
    if key is None:
        await conn.execute("INSERT INTO requests (request_id, rpc, request, response) VALUES ($1, $2, $3, $4)",
                           uuid.UUID(request_id), rpc, request.SerializeToString(), response.SerializeToString())
        return
    await conn.execute(
        "INSERT INTO requests (request_id, rpc, request, response, insured_region, month) VALUES ($1, $2, $3, $4, $5, $6)",
        uuid.UUID(request_id), rpc, request.SerializeToString(), response.SerializeToString(), *key)
