"""Deadlines (SPEC §8): a Settle whose deadline expires at any point leaves no half-done settlement.

The HIS gives each Settle a deadline too short to finish, at a range of lengths so that it expires at
different steps (before the agency's first commit, while the clearing house or the insured agency works,
before the agency's last commit). The HIS then does what it must with an unknown outcome: it retries
the same request id, or it reverses (冲正). Either way every party ends in a final state that agrees,
the accumulators equal the sum of what stands, and reconciliation finds nothing left to repair. The services'
clock is on DAY, a day of this module's own, so reconciling DAY (the settlements made that day) sees only its
settlements.
"""

from __future__ import annotations

import json
import uuid
from datetime import date

import grpc
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

H_GUANGZHOU = "H44010000001"
GUANGZHOU = "440100"
INSURED = "610924"
DAY = "2026-05-13"
DEADLINES_S = (0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3)


async def test_an_expired_deadline_is_recovered_by_a_retry_or_a_reversal(kit, timeline):
    timeline.at(DAY)
    member = await kit.new_member(INSURED)
    before = await kit.accumulators(member)
    stub = kit.treating(GUANGZHOU)
    outcomes: dict[str, str] = {}  # HIS request id → what the HIS finally knows
    expired = 0
    for index, deadline_s in enumerate(DEADLINES_S * 2):
        line = kit.bill_line("1", kit.plain_codes(GUANGZHOU)[index % 5], "1", 40000 + index, DAY)
        encounter_id = await kit.open_encounter(H_GUANGZHOU, member, [line], DAY)
        request = ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on=DAY)
        try:
            await stub.Settle(request, timeout=deadline_s)
            outcomes[request.request_id] = "settled"
            continue
        except grpc.aio.AioRpcError as error:
            assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED, error
            expired += 1
        if index % 2 == 0:  # the HIS retries the same request: it completes, exactly once
            settled = await stub.Settle(request)
            assert settled.settlement.status == types_pb2.SETTLEMENT_STATUS_SETTLED
            outcomes[request.request_id] = "settled"
        else:  # the HIS reverses it: nothing stays paid, wherever it had reached
            answer = await stub.Reverse(ta.ReverseRequest(request_id=kit.rid(), original_request_id=request.request_id))
            assert answer.outcome in (types_pb2.REVERSAL_OUTCOME_REVERSED, types_pb2.REVERSAL_OUTCOME_NOTHING_RECORDED)
            outcomes[request.request_id] = "reversed"
    assert expired >= 4, "the deadlines are short enough to expire mid-settlement"

    rows = await (await kit.db(f"treating_{GUANGZHOU}")).fetch(
        "SELECT request_id::text, settlement_id::text, status, fund_pay_fen FROM settlements WHERE settlement_day = $1",
        date.fromisoformat(DAY))
    at_treating = {row["request_id"]: row for row in rows}
    for request_id, outcome in outcomes.items():
        status = at_treating[request_id]["status"] if request_id in at_treating else None
        assert status == outcome or (outcome == "reversed" and status is None), (request_id, outcome, status)
    sids = [uuid.UUID(row["settlement_id"]) for row in rows]
    claims = dict(await (await kit.db("clearinghouse")).fetch(
        "SELECT settlement_id::text, status FROM claims WHERE settlement_id = ANY($1::uuid[])", sids))
    adjudications = await (await kit.db(f"insured_{INSURED}")).fetch(
        "SELECT settlement_id::text, status, delta FROM settlements WHERE settlement_id = ANY($1::uuid[])", sids)
    for row in rows:  # a reversed one may never have reached the clearing house
        expected = {"settled": ("settled",), "reversed": ("reversed", None)}[row["status"]]
        assert claims.get(row["settlement_id"]) in expected, row
    assert {a["settlement_id"]: a["status"] for a in adjudications if a["status"] == "settled"} == \
        {row["settlement_id"]: "settled" for row in rows if row["status"] == "settled"}, "what stands is the same"

    after = kit.ytd_dict(await kit.accumulators(member))
    standing = [json.loads(a["delta"]) for a in adjudications if a["status"] == "settled"]
    assert after == {key: kit.ytd_dict(before)[key] + sum(delta[key] for delta in standing) for key in after}

    ledger_net = await (await kit.db("clearinghouse")).fetchval(
        "SELECT coalesce(sum(p.amount_fen), 0) FROM ledger_postings p JOIN ledger_transactions t USING (tx_id) "
        "WHERE t.settlement_id = ANY($1::uuid[]) AND p.account LIKE 'treating/%/receivable/%'", sids)
    assert ledger_net == sum(row["fund_pay_fen"] for row in rows if row["status"] == "settled")

    report = await kit.clearing().ReconcileInsuredAgencies(ch.ReconcileInsuredAgenciesRequest(day=DAY))
    upstream = await stub.Reconcile(ta.ReconcileRequest(day=DAY))
    assert [item for r in [*report.reports, *upstream.reports] for item in r.repairs] == [], "nothing half-done"
