"""The monthly clearing cycle (SPEC §7, issue 9 items 2 and 3), on a stack of its own whose clock lives
through the months: settle in a month, close it once it is over, net it, confirm the hub transfers, and the
month's obligations and prepayment draws are cleared in the ledger.

* Only a month that is over can be closed; an empty month only on purpose; months close in order.
* Closing twice returns the first result; an adjustment after the close lands in the next open month.
* Each confirmed transfer posts the region's clearing: payables and receivables of the month closed, the
  month's draws on its prepayment given back. Once every transfer is confirmed the month is settled.
* Over several months the prepayment revolves: usage never ratchets up, and after every close every region —
  also one absent from the month — is re-sized from its last three closed months and warned when it stands
  at or above its threshold. Expected figures are recomputed here from the closings, not taken from the code.
"""

from __future__ import annotations

import calendar
import uuid
from decimal import ROUND_HALF_UP, Decimal

import grpc
import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import hospital_pb2, treating_agency_pb2 as ta

from clearing import netting

# Realistic deposits: a region's first deposit also sizes its prepayment (what it should hold).
OWN_STACK_FUNDED_FEN = 6_000_000
APRIL, MAY = "2026-04", "2026-05"


def last_day(month: str) -> str:
    return f"{month}-{calendar.monthrange(int(month[:4]), int(month[5:]))[1]:02d}"


def next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


async def discharge_month(kit, month: str, count: int, seed: int) -> None:  # noqa: ANN001
    async for _ in kit.hospital_service().RunDischarges(hospital_pb2.RunDischargesRequest(
            request_id=str(uuid.uuid4()), count=count, seed=seed, concurrency=5, month=month)):
        pass


def close(kit, month: str, allow_empty: bool = False):  # noqa: ANN001, ANN201
    return kit.clearing().CloseMonth(ch.CloseMonthRequest(request_id=kit.rid(), month=month, allow_empty=allow_empty))


async def balances(kit) -> dict[str, int]:  # noqa: ANN001
    rows = await (await kit.db("clearinghouse")).fetch("SELECT account, balance_fen FROM ledger_balances")
    return {row["account"]: row["balance_fen"] for row in rows}


async def deposits(kit) -> dict[str, int]:  # noqa: ANN001
    """Every region's deposits (top-ups), from the ledger's top-up transactions."""
    rows = await (await kit.db("clearinghouse")).fetch(
        "SELECT split_part(p.account, '/', 2) AS region, sum(p.amount_fen)::bigint AS fen FROM ledger_postings p "
        "JOIN ledger_transactions t USING (tx_id) WHERE t.kind = 'topup' AND p.account LIKE 'insured/%/prepayment' "
        "GROUP BY 1")
    return {row["region"]: row["fen"] for row in rows}


async def confirm_every_transfer(kit, month: str) -> ch.GetMonthClosingResponse:  # noqa: ANN001
    status = await kit.clearing().GetMonthClosing(ch.GetMonthClosingRequest(month=month))
    for item in status.transfers:
        if not item.cleared:
            await kit.clearing().ConfirmTransfer(ch.ConfirmTransferRequest(
                request_id=kit.rid(), month=month, region=item.region, amount_fen=item.transfer.amount_fen,
                reference=f"BANK-{month}-{item.region}"))
    return await kit.clearing().GetMonthClosing(ch.GetMonthClosingRequest(month=month))


@pytest.fixture(scope="module")
async def april(own_kit, timeline):
    """Stays discharged and settled in April 2026 (the clock on its last evening); returns the kit."""
    timeline.at("2026-04-30", hour=20)
    await discharge_month(own_kit, APRIL, 24, seed=41)
    return own_kit


async def test_a_month_that_is_not_over_cannot_be_closed(april):
    kit = april
    before = await (await kit.db("clearinghouse")).fetchval("SELECT count(*) FROM month_closings")
    for month in (APRIL, MAY, "2027-01"):
        error = await kit.refusal(close(kit, month))
        kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="month")
        assert "not over" in error.details() and APRIL in error.details()
    assert await (await kit.db("clearinghouse")).fetchval("SELECT count(*) FROM month_closings") == before


async def test_months_close_in_order(april, timeline):
    kit = april
    timeline.at("2026-06-02", hour=10)
    error = await kit.refusal(close(kit, MAY, allow_empty=True))  # April has obligations and is open
    kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="month")
    assert APRIL in error.details()
    timeline.at("2026-05-02", hour=10)


async def test_an_empty_month_is_closed_only_on_purpose(april):
    kit = april
    error = await kit.refusal(close(kit, "2026-03"))
    kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="month")
    assert "no obligations" in error.details()
    closed = (await close(kit, "2026-03", allow_empty=True)).closing
    assert (closed.month, list(closed.cells), closed.gross_total_fen) == ("2026-03", [], 0)
    state = await kit.clearing().GetMonthClosing(ch.GetMonthClosingRequest(month="2026-03"))
    assert state.state == ch.MONTH_STATE_SETTLED, "nothing to pay"


async def test_close_nets_the_frozen_matrix_and_a_second_close_returns_the_first_result(april):
    kit = april
    cells = await (await kit.db("clearinghouse")).fetch(
        "SELECT insured_region, treating_region, fund_pay_fen FROM clearing_aggregates WHERE clearing_month = $1",
        APRIL)
    assert cells, "April has obligations"
    first = (await close(kit, APRIL)).closing
    assert {(c.insured_region, c.treating_region, c.amount_fen) for c in first.cells} == \
        {(c["insured_region"], c["treating_region"], c["fund_pay_fen"]) for c in cells}
    positions = {p.region: p.net_fen for p in first.positions}
    assert sum(positions.values()) == 0
    for region, net_fen in positions.items():  # recomputed independently: owed to it minus owed by it
        owed_to = sum(c.amount_fen for c in first.cells if c.treating_region == region)
        owed_by = sum(c.amount_fen for c in first.cells if c.insured_region == region)
        assert net_fen == owed_to - owed_by
    for plan, bound in ((first.hub_transfers, len(positions)), (first.direct_transfers, len(positions) - 1)):
        transfers = tuple(netting.Transfer(t.payer, t.payee, t.amount_fen) for t in plan)
        assert set(netting.remaining_positions(positions, transfers).values()) == {0}
        assert len(transfers) <= bound
    assert first.net_total_fen == sum(v for v in positions.values() if v > 0) <= first.gross_total_fen
    second = (await close(kit, APRIL)).closing
    assert second.SerializeToString() == first.SerializeToString()

    status = await kit.clearing().GetMonthClosing(ch.GetMonthClosingRequest(month=APRIL))
    assert status.state == ch.MONTH_STATE_AWAITING_PAYMENT
    assert [item.region for item in status.transfers] == sorted(positions)
    for item in status.transfers:
        assert item.net_fen == positions[item.region]
        assert item.cleared == (item.net_fen == 0), "only a region with nothing to move is cleared at the close"
        assert item.HasField("transfer") == (item.net_fen != 0)


async def test_a_confirmation_must_match_its_transfer(april):
    kit = april
    status = await kit.clearing().GetMonthClosing(ch.GetMonthClosingRequest(month=APRIL))
    debtor = next(item for item in status.transfers if item.net_fen < 0)
    before = await kit.counts("clearinghouse")

    def confirm(**fields):  # noqa: ANN003, ANN202
        request = dict(request_id=kit.rid(), month=APRIL, region=debtor.region, amount_fen=-debtor.net_fen) | fields
        return kit.clearing().ConfirmTransfer(ch.ConfirmTransferRequest(**request))

    kit.assert_refused(await kit.refusal(confirm(amount_fen=-debtor.net_fen + 1)), grpc.StatusCode.INVALID_ARGUMENT,
                       field="amount_fen")
    kit.assert_refused(await kit.refusal(confirm(amount_fen=0)), grpc.StatusCode.INVALID_ARGUMENT, field="amount_fen")
    kit.assert_refused(await kit.refusal(confirm(month=MAY)), grpc.StatusCode.FAILED_PRECONDITION, subject="month")
    kit.assert_refused(await kit.refusal(confirm(region="999999")), grpc.StatusCode.FAILED_PRECONDITION,
                       subject="region")
    kit.assert_refused(await kit.refusal(confirm(month="2026-4")), grpc.StatusCode.INVALID_ARGUMENT, field="month")
    assert await kit.counts("clearinghouse") == before


async def test_confirming_every_transfer_clears_the_month_in_the_ledger(april):
    kit = april
    before = await balances(kit)
    closing = (await kit.clearing().GetMonthClosing(ch.GetMonthClosingRequest(month=APRIL))).closing
    drawn = {region: sum(c.amount_fen for c in closing.cells if c.insured_region == region)
             for region in {c.insured_region for c in closing.cells}}
    for region, fen in drawn.items():  # every April draw is still out
        assert before.get(f"insured/{region}/prepayment_drawn", 0) == fen

    status = await kit.clearing().GetMonthClosing(ch.GetMonthClosingRequest(month=APRIL))
    debtor = next(item for item in status.transfers if item.net_fen < 0)
    request = ch.ConfirmTransferRequest(request_id=kit.rid(), month=APRIL, region=debtor.region,
                                        amount_fen=-debtor.net_fen, reference="BANK-0001")
    first = await kit.clearing().ConfirmTransfer(request)
    assert first.transfer.cleared and first.transfer.reference == "BANK-0001"
    assert first.state == ch.MONTH_STATE_AWAITING_PAYMENT or len(status.transfers) == 1
    assert kit.same_bytes(first, await kit.clearing().ConfirmTransfer(request)), "a retry replays"
    again = await kit.refusal(kit.clearing().ConfirmTransfer(ch.ConfirmTransferRequest(
        request_id=kit.rid(), month=APRIL, region=debtor.region, amount_fen=-debtor.net_fen)))
    kit.assert_refused(again, grpc.StatusCode.FAILED_PRECONDITION, subject="region")
    assert "confirmed" in again.details()

    settled = await confirm_every_transfer(kit, APRIL)
    assert settled.state == ch.MONTH_STATE_SETTLED
    assert all(item.cleared for item in settled.transfers)
    after = await balances(kit)
    funds = await deposits(kit)
    for account, fen in after.items():
        if account.startswith(("treating/", "insured/")) and "/prepayment" not in account:
            assert fen == 0, f"{account}: April's obligations are cleared"
        if account.endswith("/prepayment_drawn") or account == "clearinghouse/transfers":
            assert fen == 0, f"{account}: nothing drawn or in transit once the month is settled"
    for region, fen in funds.items():
        assert after.get(f"insured/{region}/prepayment", 0) == fen, f"{region}: back to what it deposited"

    summary = [item async for item in kit.clearing().StreamStatement(
        ch.StreamStatementRequest(region=debtor.region, month=APRIL))][0].summary
    assert summary.clearing.cleared and summary.clearing.net_fen == summary.net_fen
    assert [(t.payer, t.payee, t.amount_fen) for t in summary.transfers] == \
        [(debtor.region, "clearinghouse", -debtor.net_fen)]


async def test_after_close_new_settlements_and_cancels_clear_in_the_next_month(april):
    kit = april
    closing = (await kit.clearing().GetMonthClosing(ch.GetMonthClosingRequest(month=APRIL))).closing
    row = await (await kit.db("his")).fetchrow(
        "SELECT * FROM discharges WHERE status = 'settled' AND treating_region <> insured_region "
        "ORDER BY created_at LIMIT 1")
    await kit.treating(row["treating_region"]).Cancel(ta.CancelRequest(
        request_id=kit.rid(), settlement_id=str(row["settlement_id"]), reason="test adjustment"))
    connection = await kit.db("clearinghouse")
    cancel_month = await connection.fetchval(
        "SELECT clearing_month FROM ledger_transactions WHERE settlement_id = $1 AND kind = 'cancel'",
        row["settlement_id"])
    stored = await connection.fetchval("SELECT response FROM month_closings WHERE month = $1", APRIL)
    assert cancel_month == MAY
    assert bytes(stored) == closing.SerializeToString()  # the closed month is never edited


def required_fen(outflows: list[int], months: int) -> int:
    """Independent oracle of SPEC §7 sizing: average of the window's outflows (negative months as 0) × months,
    rounded half up; the window is the last three closed months, a quiet month counting 0."""
    window = [max(fen, 0) for fen in outflows[-3:]]
    return int((Decimal(sum(window) * months) / len(window)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


async def test_the_prepayment_revolves_month_after_month(april, timeline):
    """Three more months settled, closed and paid: after each, every region's prepayment is back at its
    deposits, sized from its last three closed months (every region, present in the month or not), and warned
    exactly when it stands at or above its threshold."""
    kit = april
    month = MAY
    for seed in (43, 44, 45):
        timeline.at(last_day(month), hour=20)
        await discharge_month(kit, month, 16, seed=seed)
        timeline.at(f"{next_month(month)}-02", hour=10)
        await close(kit, month)
        assert (await confirm_every_transfer(kit, month)).state == ch.MONTH_STATE_SETTLED

        closed = [row["month"] for row in await (await kit.db("clearinghouse")).fetch(
            "SELECT month FROM month_closings ORDER BY month")]
        cells = {m: (await kit.clearing().GetMonthClosing(ch.GetMonthClosingRequest(month=m))).closing.cells
                 for m in closed[-3:]}
        funds = await deposits(kit)
        prepayments = {p.insured_region: p for p in (await kit.clearing().ListPrepayments(
            ch.ListPrepaymentsRequest())).prepayments}
        for region, item in prepayments.items():
            outflows = [sum(c.amount_fen for c in cells[m] if c.insured_region == region) for m in closed[-3:]]
            expected = required_fen(outflows, item.months)
            if expected:  # with no outflow in the window the operator's sizing stays
                assert item.required_fen == expected, (month, region, outflows)
            assert item.balance_fen == funds.get(region, 0), "every cleared draw given back"
            crossed = item.usage_bp >= item.threshold_bp or item.balance_fen <= 0
            assert item.warning == crossed
            assert item.topup_requested_fen == (max(0, item.required_fen - item.balance_fen) if crossed else 0)
            assert not item.exhausted or item.balance_fen <= 0
        # The region that never deposited stands at 0 once its draws are given back: warned after every close,
        # though no draw crossed its threshold (a resize alone must warn, issue 9 item 2).
        unfunded = prepayments["530100"]
        assert unfunded.balance_fen == 0 and unfunded.warning and unfunded.exhausted
        assert unfunded.topup_requested_fen == unfunded.required_fen > 0
        month = next_month(month)


async def test_prepayment_terms_are_set_per_region_and_resize_at_once(april):
    kit = april
    region = "430100"
    answer = await kit.clearing().SetPrepaymentTerms(ch.SetPrepaymentTermsRequest(
        request_id=kit.rid(), insured_region=region, months=3, threshold_bp=5000))
    closed = [row["month"] for row in await (await kit.db("clearinghouse")).fetch(
        "SELECT month FROM month_closings ORDER BY month DESC LIMIT 3")][::-1]
    outflows = [sum(c.amount_fen for c in (await kit.clearing().GetMonthClosing(
        ch.GetMonthClosingRequest(month=m))).closing.cells if c.insured_region == region) for m in closed]
    assert (answer.prepayment.months, answer.prepayment.threshold_bp) == (3, 5000)
    assert answer.prepayment.required_fen == (required_fen(outflows, 3) or answer.prepayment.required_fen)
    for months, threshold_bp, field in ((0, 5000, "months"), (13, 5000, "months"), (2, 0, "threshold_bp"),
                                        (2, 10001, "threshold_bp")):
        error = await kit.refusal(kit.clearing().SetPrepaymentTerms(ch.SetPrepaymentTermsRequest(
            request_id=kit.rid(), insured_region=region, months=months, threshold_bp=threshold_bp)))
        kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field=field)
    error = await kit.refusal(kit.clearing().SetPrepaymentTerms(ch.SetPrepaymentTermsRequest(
        request_id=kit.rid(), insured_region="999999", months=2, threshold_bp=7000)))
    kit.assert_refused(error, grpc.StatusCode.NOT_FOUND)
