"""Prepayment (预付金, SPEC §7): every cross-region settlement draws on the insured region's
prepayment; crossing the threshold warns and requests a top-up; exhaustion never blocks."""

from __future__ import annotations

import uuid

from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import types_pb2

from clearing.ledger import prepayment


async def discharge_one(kit, treating: str, insured: str):  # noqa: ANN201 - a Settlement
    """A fresh filed member of `insured` with one 20,000-yuan grade-A line at a `treating` hospital."""
    member = await kit.new_member(insured, filing="resident")
    lines = [kit.bill_line("1", kit.plain_codes(treating)[0], "1", 2_000_000, "2026-05-02")]
    return await kit.discharge(f"H{treating}00001", member, lines, "2026-05-01", "2026-05-03")


async def prepayment_of(stack, region: str) -> ch.Prepayment:
    answer = await stack.clearing().ListPrepayments(ch.ListPrepaymentsRequest(insured_region=region))
    return answer.prepayments[0]


async def test_a_settlement_draws_its_fund_share_from_the_insured_regions_prepayment(stack, kit):
    before = await prepayment_of(stack, "610924")
    settlement = await discharge_one(kit, treating="440100", insured="610924")
    after = await prepayment_of(stack, "610924")
    assert after.balance_fen == before.balance_fen - settlement.adjudication.split.fund_pay_fen
    connection = await stack.connect("clearinghouse")
    try:
        ledger = await connection.fetchval("SELECT balance_fen FROM ledger_balances WHERE account = $1",
                                           prepayment("610924"))
    finally:
        await connection.close()
    assert ledger == after.balance_fen


async def test_an_exhausted_prepayment_flags_but_never_blocks(stack, kit):
    settlement = await discharge_one(kit, treating="440100", insured="530100")  # never funded in the tests
    assert settlement.status == types_pb2.SETTLEMENT_STATUS_SETTLED
    assert "PREPAYMENT_EXHAUSTED" in settlement.flags
    state = await prepayment_of(stack, "530100")
    assert state.exhausted and state.warning and state.balance_fen < 0


async def test_crossing_the_threshold_requests_a_top_up_once_and_a_top_up_clears_it(stack, kit):
    region = "460100"
    current = await prepayment_of(stack, region)
    # Re-size so that the prepayment sits just under 70 % used and any draw of at least 100 yuan
    # crosses it. usage_bp rounds half up, so "under" means (R − B) / R < 0.69995, i.e. B > 0.30005 R,
    # and "crossed" means B − F ≤ 0.30005 R. R = (B − 10,000) / 0.30005 (+1) satisfies both for F ≥ 10,000.
    balance_fen = current.balance_fen + 1  # the re-sizing top-up deposits 1 fen
    required_fen = (balance_fen - 10_000) * 100_000 // 30_005 + 1
    resized = (await stack.clearing().TopUpPrepayment(ch.TopUpPrepaymentRequest(
        request_id=str(uuid.uuid4()), insured_region=region, amount_fen=1, required_fen=required_fen))).prepayment
    assert not resized.warning and resized.topup_requested_fen == 0
    settlement = await discharge_one(kit, treating="440100", insured=region)
    assert settlement.adjudication.split.fund_pay_fen >= 10_000
    crossed = await prepayment_of(stack, region)
    assert crossed.warning and not crossed.exhausted
    assert crossed.topup_requested_fen == required_fen - crossed.balance_fen
    refilled = (await stack.clearing().TopUpPrepayment(ch.TopUpPrepaymentRequest(
        request_id=str(uuid.uuid4()), insured_region=region, amount_fen=crossed.topup_requested_fen))).prepayment
    assert refilled.balance_fen == required_fen
    assert not refilled.warning and refilled.topup_requested_fen == 0


async def test_a_top_up_replays_under_its_request_id(stack, kit):
    request = ch.TopUpPrepaymentRequest(request_id=str(uuid.uuid4()), insured_region="211100", amount_fen=500)
    first = await stack.clearing().TopUpPrepayment(request)
    second = await stack.clearing().TopUpPrepayment(request)
    assert first.SerializeToString() == second.SerializeToString()
    assert (await prepayment_of(stack, "211100")).balance_fen == first.prepayment.balance_fen
