"""A generated month of discharges through the real services: everything the HIS saw settle is
recorded identically at the treating agency, the clearing house and the insured agency."""

from __future__ import annotations

import uuid

from clearinghouse.v1 import hospital_pb2


async def test_simulated_discharges_agree_across_parties(stack):
    hospital = stack.hospital()
    run_id = str(uuid.uuid4())
    progress = [item async for item in hospital.RunDischarges(hospital_pb2.RunDischargesRequest(
        request_id=run_id, count=40, seed=7, concurrency=8, month="2026-03"))]
    assert progress[-1].done == 40

    his = await stack.connect("his")
    try:
        rows = await his.fetch("SELECT * FROM discharges WHERE run_request_id = $1", uuid.UUID(run_id))
    finally:
        await his.close()
    assert len(rows) == 40
    failed = [row for row in rows if row["status"] == "failed"]
    assert len(failed) == progress[-1].failed
    for row in failed:  # the only acceptable refusal: the 211100–230400 agreement rejects unmapped lines
        assert {row["treating_region"], row["insured_region"]} == {"211100", "230400"}
        assert "rejects unmapped lines" in row["error"]
    seen = [row for row in rows if row["status"] == "settled"]
    assert len(seen) >= 35
    cross = [row for row in seen if row["treating_region"] != row["insured_region"]]
    assert cross, "the plan sends most patients to another region"

    clearing = await stack.connect("clearinghouse")
    try:
        for row in cross:
            claim = await clearing.fetchrow("SELECT * FROM claims WHERE settlement_id = $1", row["settlement_id"])
            assert claim["status"] == "settled"
            assert (claim["total_fen"], claim["fund_pay_fen"], claim["psn_pay_fen"]) == \
                (row["total_fen"], row["fund_pay_fen"], row["psn_pay_fen"])
            legs = await clearing.fetch(
                "SELECT p.account, p.amount_fen FROM ledger_postings p JOIN ledger_transactions t USING (tx_id) "
                "WHERE t.settlement_id = $1", row["settlement_id"])
            # The obligation (receivable / payable) and the draw on the insured region's prepayment.
            t, i, fund_pay = row["treating_region"], row["insured_region"], row["fund_pay_fen"]
            assert {leg["account"]: leg["amount_fen"] for leg in legs} == {
                f"treating/{t}/receivable/{i}": fund_pay, f"insured/{i}/payable/{t}": -fund_pay,
                f"insured/{i}/prepayment_drawn": fund_pay, f"insured/{i}/prepayment": -fund_pay}
    finally:
        await clearing.close()

    for row in seen:
        insured = await stack.connect(f"insured_{row['insured_region']}")
        try:
            recorded = await insured.fetchrow("SELECT * FROM settlements WHERE settlement_id = $1",
                                              row["settlement_id"])
        finally:
            await insured.close()
        assert recorded["status"] == "settled"
        assert recorded["fund_pay_fen"] == row["fund_pay_fen"]
