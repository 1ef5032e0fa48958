"""Request ids and content comparison for idempotency (SPEC §8).

A party stores the serialized first request under its `request_id`; a retry is compared with it
field by field, and the first differing field is named in ALREADY_EXISTS (TigerBeetle's
`exists_with_different_*`).
"""

from __future__ import annotations

import uuid

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
