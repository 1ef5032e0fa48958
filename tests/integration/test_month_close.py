"""Month close (SPEC §7): frozen obligations, net positions summing to zero, both transfer plans,
idempotent double close, refusal out of order, and adjustments after close landing in the next month."""

from __future__ import annotations

import uuid

import grpc
import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import hospital_pb2, treating_agency_pb2 as ta
from grpc_status import rpc_status

from clearing import netting
from services.clearinghouse.closing import next_month
from services.common.clock import clearing_month, now_utc


@pytest.fixture(scope="module")
async def month(stack):
    """Settle a batch, then return the current clearing month (which now has obligations)."""
    async for _ in stack.hospital().RunDischarges(hospital_pb2.RunDischargesRequest(
            request_id=str(uuid.uuid4()), count=20, seed=41, concurrency=6, month="2026-06")):
        pass
    return clearing_month(now_utc())


def close(stack, month: str):  # noqa: ANN201
    return stack.clearing().CloseMonth(ch.CloseMonthRequest(request_id=str(uuid.uuid4()), month=month))


async def test_closing_out_of_order_is_refused_and_changes_nothing(stack, month):
    connection = await stack.connect("clearinghouse")
    try:
        before = await connection.fetchval("SELECT count(*) FROM month_closings")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await close(stack, next_month(month))
        after = await connection.fetchval("SELECT count(*) FROM month_closings")
    finally:
        await connection.close()
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert month in caught.value.details()
    assert rpc_status.from_call(caught.value) is not None
    assert after == before


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "26-01", "２０２６-01", ""])
async def test_a_bad_month_is_invalid_argument_naming_the_field(stack, bad):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await close(stack, bad)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "month" in caught.value.details()


async def test_close_nets_the_frozen_matrix_and_a_second_close_returns_the_first_result(stack, month):
    connection = await stack.connect("clearinghouse")
    try:
        cells = await connection.fetch(
            "SELECT insured_region, treating_region, fund_pay_fen FROM clearing_aggregates WHERE clearing_month = $1",
            month)
    finally:
        await connection.close()
    first = (await close(stack, month)).closing
    assert {(c.insured_region, c.treating_region, c.amount_fen) for c in first.cells} == \
        {(c["insured_region"], c["treating_region"], c["fund_pay_fen"]) for c in cells}
    positions = {p.region: p.net_fen for p in first.positions}
    assert sum(positions.values()) == 0
    # Recompute each region's position independently: owed to it minus owed by it.
    for region, net_fen in positions.items():
        owed_to = sum(c.amount_fen for c in first.cells if c.treating_region == region)
        owed_by = sum(c.amount_fen for c in first.cells if c.insured_region == region)
        assert net_fen == owed_to - owed_by
    for plan, bound in ((first.hub_transfers, len(positions)), (first.direct_transfers, len(positions) - 1)):
        transfers = tuple(netting.Transfer(t.payer, t.payee, t.amount_fen) for t in plan)
        remaining = netting.remaining_positions(positions, transfers)
        assert set(remaining.values()) == {0}  # every region, and the hub, ends at zero
        assert len(transfers) <= bound
    assert first.net_total_fen == sum(v for v in positions.values() if v > 0)
    assert first.net_total_fen <= first.gross_total_fen
    second = (await close(stack, month)).closing
    assert second.SerializeToString() == first.SerializeToString()


async def test_after_close_new_settlements_and_cancels_clear_in_the_next_month(stack, month):
    closing = (await close(stack, month)).closing  # closed (again: returns the first result)
    his = await stack.connect("his")
    try:
        row = await his.fetchrow(
            "SELECT * FROM discharges WHERE status = 'settled' AND treating_region <> insured_region "
            "ORDER BY created_at LIMIT 1")
    finally:
        await his.close()
    await stack.treating(row["treating_region"]).Cancel(ta.CancelRequest(
        request_id=str(uuid.uuid4()), settlement_id=str(row["settlement_id"]), reason="test adjustment"))
    connection = await stack.connect("clearinghouse")
    try:
        cancel_month = await connection.fetchval(
            "SELECT clearing_month FROM ledger_transactions WHERE settlement_id = $1 AND kind = 'cancel'",
            row["settlement_id"])
        stored = await connection.fetchval("SELECT response FROM month_closings WHERE month = $1", month)
    finally:
        await connection.close()
    assert cancel_month == next_month(month)
    assert bytes(stored) == closing.SerializeToString()  # the closed month is never edited
    again = await stack.clearing().GetMonthClosing(ch.GetMonthClosingRequest(month=month))
    assert again.closing.SerializeToString() == closing.SerializeToString()
