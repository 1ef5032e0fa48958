"""The treating agency's monthly payout list per hospital (拨付, SPEC §7) adds up to its settlements."""

from __future__ import annotations

import uuid

import grpc
import pytest
from clearinghouse.v1 import hospital_pb2, treating_agency_pb2 as ta

from services.common.clock import clearing_month, now_utc


async def test_payouts_equal_the_settlements_less_cancellations_per_hospital(stack):
    async for _ in stack.hospital().RunDischarges(hospital_pb2.RunDischargesRequest(
            request_id=str(uuid.uuid4()), count=12, seed=61, concurrency=4, month="2026-08")):
        pass
    month = clearing_month(now_utc())
    for region in ("440100", "430100"):
        answer = await stack.treating(region).ListPayouts(ta.ListPayoutsRequest(month=month))
        connection = await stack.connect(f"treating_{region}")
        try:
            # This month's (a test that moved the services' clock settled some in another month).
            rows = await connection.fetch(
                "SELECT hospital_code, status, local, fund_pay_fen FROM settlements WHERE status IN ('settled', "
                "'cancelled') AND to_char(settled_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') = $1", month)
        finally:
            await connection.close()
        # Cancelled ones (settled and cancelled this month) net to zero.
        expected: dict[str, int] = {}
        for row in rows:
            expected[row["hospital_code"]] = expected.get(row["hospital_code"], 0) + (
                row["fund_pay_fen"] if row["status"] == "settled" else 0)
        assert {p.hospital_code: p.fund_pay_fen for p in answer.payouts} == expected
        assert answer.total_fen == sum(expected.values())
        for payout in answer.payouts:
            assert payout.local_fen + payout.cross_region_fen == payout.fund_pay_fen
            assert payout.hospital_code[1:7] == region


@pytest.mark.parametrize("month", ["2026-00", "Nov", ""])
async def test_a_bad_month_is_named(stack, month):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.treating("440100").ListPayouts(ta.ListPayoutsRequest(month=month))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "month" in caught.value.details()
