"""Smart audit (智能审核) at adjudication needs every live stay of a member (SPEC §12.2 AUD-OVERLAP, AUD-READMIT):
each settlement keeps its stay's admission day and diagnoses (the discharge day is there already), and the
cross-stay findings it was recorded with (a serialized clearinghouse.v1.SmartAudit, NULL for rows of before).

Python, not SQL: rows of before get their admission day and diagnoses from the stored AdjudicateRequest (its
claim's stay); a row whose stored request names no stay keeps both NULL and is never audited against (every row
written since has them). Frozen here (it does not import the servicer) so later code cannot change what it did.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
from clearinghouse.v1 import insured_agency_pb2 as pb


async def migrate(connection: asyncpg.Connection, context: dict[str, Any]) -> None:
    await connection.execute("ALTER TABLE settlements ADD COLUMN admitted_on date, ADD COLUMN diagnoses text[], "
                             "ADD COLUMN rules_version text, ADD COLUMN smart_audit bytea")
    rows = await connection.fetch("SELECT settlement_id, request FROM settlements")
    updates = []
    for row in rows:
        stay = pb.AdjudicateRequest.FromString(bytes(row["request"])).claim.stay
        if stay.admitted_on and stay.diagnoses:
            updates.append((row["settlement_id"], date.fromisoformat(stay.admitted_on), list(stay.diagnoses)))
    if updates:
        await connection.executemany("UPDATE settlements SET admitted_on = $2, diagnoses = $3 WHERE settlement_id = $1",
                                     updates)
    # The member's stays by date, for the look-up at every adjudication.
    await connection.execute("CREATE INDEX settlements_member_stays ON settlements (member_id, discharged_on)")
