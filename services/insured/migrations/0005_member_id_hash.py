"""The insured agency keeps no ID number and no name (SPEC §9; docs/security.md "Personal data").

`members` gets `id_hash` (HMAC-SHA256 of the normalised ID number under the region's member key, hex) and
`id_number_masked` (`4301**********1234`, for display), both backfilled from the clear columns, which are then
dropped. The stored first requests of RegisterMember (the `requests` table, kept for idempotent replay) are
rewritten the way the agency stores them from now on: the ID number and the name replaced by their keyed
hashes, and the stored answer without the masked name. A database with members needs the key (`context
["member_key"]`); a fresh one does not.

Python, not SQL: the backfill needs the key from configuration and re-encodes stored protobuf. It is frozen
here (it does not import the servicer) so later changes of the code cannot change what it did.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import asyncpg
from clearinghouse.v1 import insured_agency_pb2 as pb

HASHED = "hmac-sha256:"


def id_hash(key: bytes, id_number: str) -> str:
    return hmac.new(key, id_number.strip().upper().encode("ascii"), hashlib.sha256).hexdigest()


def name_hash(key: bytes, name: str) -> str:
    return hmac.new(key, b"name\x00" + name.encode("utf-8"), hashlib.sha256).hexdigest()


def masked_id(id_number: str) -> str:
    value = id_number.strip().upper()
    return value[:4] + "*" * 10 + value[-4:]


async def migrate(connection: asyncpg.Connection, context: dict[str, Any]) -> None:
    await connection.execute("ALTER TABLE members ADD COLUMN id_hash text, ADD COLUMN id_number_masked text")
    members = await connection.fetch("SELECT member_id, id_number FROM members")
    registrations = await connection.fetch(
        "SELECT request_id, request, response FROM requests WHERE rpc = 'RegisterMember'")
    key: bytes | None = context.get("member_key")
    if (members or registrations) and not key:
        raise RuntimeError("0005_member_id_hash: the database has members; the region's member key is needed "
                           "to hash their ID numbers (services/insured/keys.py)")
    if members:
        await connection.executemany(
            "UPDATE members SET id_hash = $2, id_number_masked = $3 WHERE member_id = $1",
            [(row["member_id"], id_hash(key, row["id_number"]), masked_id(row["id_number"])) for row in members])
    await connection.execute(
        "ALTER TABLE members ALTER COLUMN id_hash SET NOT NULL, ALTER COLUMN id_number_masked SET NOT NULL, "
        "DROP COLUMN id_number, DROP COLUMN name")
    await connection.execute(
        "COMMENT ON COLUMN members.id_hash IS 'HMAC-SHA256(region member key, normalised ID number), hex; "
        "the ID number itself is never stored here'")
    rewritten = []
    for row in registrations:
        request = pb.RegisterMemberRequest.FromString(bytes(row["request"]))
        member = request.member
        if not member.id_number.startswith(HASHED):
            member.id_number = HASHED + id_hash(key, member.id_number)
        if not member.name.startswith(HASHED):
            member.name = HASHED + name_hash(key, member.name)
        response = pb.RegisterMemberResponse.FromString(bytes(row["response"]))
        response.member.name = ""
        rewritten.append((row["request_id"], request.SerializeToString(), response.SerializeToString()))
    if rewritten:
        await connection.executemany("UPDATE requests SET request = $2, response = $3 WHERE request_id = $1",
                                     rewritten)
