"""Statements (SPEC §7): per region per closed month, every settlement and adjustment with its fund
split; the totals add up to the entries, to the month's gross matrix and to its net positions."""

from __future__ import annotations

import uuid

import grpc
import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import hospital_pb2, types_pb2

from services.clearinghouse.closing import next_month


@pytest.fixture(scope="module")
async def closing(own_stack, timeline):
    """Stays settled in July 2026 (the clock on its last evening), the month closed on 2 August."""
    timeline.at("2026-07-31", hour=20)
    async for _ in own_stack.hospital().RunDischarges(hospital_pb2.RunDischargesRequest(
            request_id=str(uuid.uuid4()), count=15, seed=53, concurrency=5, month="2026-07")):
        pass
    timeline.at("2026-08-02", hour=10)
    return (await own_stack.clearing().CloseMonth(ch.CloseMonthRequest(request_id=str(uuid.uuid4()),
                                                                        month="2026-07"))).closing


async def statement(stack, region: str, month: str) -> tuple[ch.StatementSummary, list[ch.StatementEntry]]:
    items = [item async for item in stack.clearing().StreamStatement(ch.StreamStatementRequest(region=region, month=month))]
    assert items[0].WhichOneof("item") == "summary"
    assert all(item.WhichOneof("item") == "entry" for item in items[1:])
    return items[0].summary, [item.entry for item in items[1:]]


async def test_every_statement_adds_up_to_its_entries_and_to_the_closing(own_stack, closing):
    positions = {item.region: item.net_fen for item in closing.positions}
    nets = 0
    for region in sorted(positions):
        summary, entries = await statement(own_stack, region, closing.month)
        sign = {"settlement": 1, "cancel": -1, "reversal": -1}
        as_insured = [e for e in entries if e.insured_region == region]
        as_treating = [e for e in entries if e.treating_region == region]
        assert summary.entries_as_insured == len(as_insured)
        assert summary.entries_as_treating == len(as_treating)
        assert summary.owed_by_fen == sum(sign[e.kind] * e.fund_pay_fen for e in as_insured)
        assert summary.owed_to_fen == sum(sign[e.kind] * e.fund_pay_fen for e in as_treating)
        assert summary.hifp_fen + summary.hifmi_fen + summary.maf_fen == summary.owed_by_fen
        for entry in entries:
            assert entry.hifp_fen + entry.hifmi_fen + entry.maf_fen == entry.fund_pay_fen
            assert entry.fund_pay_fen + entry.psn_pay_fen == entry.total_fen
        # Against the gross matrix of the close, built from the aggregates, not from the settlements.
        assert summary.owed_by_fen == sum(c.amount_fen for c in closing.cells if c.insured_region == region)
        assert summary.owed_to_fen == sum(c.amount_fen for c in closing.cells if c.treating_region == region)
        assert summary.net_fen == positions[region]
        assert all(region in (t.payer, t.payee) for t in summary.transfers)
        nets += summary.net_fen
    assert nets == 0


async def test_statement_entries_show_the_stays_principal_diagnosis_and_procedures(own_stack, closing):
    """The HIS simulator's stays carry full 医保版 codes and procedures (docs/stay-facts.md): each settlement entry
    shows the principal diagnosis and the procedures of the claim its treating agency recorded."""
    entries = {}
    for region in sorted({item.region for item in closing.positions}):
        _, found = await statement(own_stack, region, closing.month)
        entries.update({entry.settlement_id: entry for entry in found if entry.kind == "settlement"})
    assert entries
    operated = 0
    for settlement_id, entry in entries.items():
        connection = await own_stack.connect(f"treating_{entry.treating_region}")
        try:
            stored = await connection.fetchval("SELECT claim FROM settlements WHERE settlement_id = $1",
                                               uuid.UUID(settlement_id))
        finally:
            await connection.close()
        stay = types_pb2.Claim.FromString(bytes(stored)).stay
        assert entry.principal_diagnosis == stay.diagnoses[0] and "." in entry.principal_diagnosis
        assert list(entry.procedures) == list(stay.procedures)
        operated += bool(entry.procedures)
    assert 0 < operated < len(entries)  # surgical and medical stays both


async def test_a_statement_of_an_open_month_is_refused(own_stack, closing):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await statement(own_stack, "440100", next_month(next_month(closing.month)))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not closed" in caught.value.details()


@pytest.mark.parametrize(("region", "month", "field"), [("4401", "2026-03", "region"), ("440100", "2026/03", "month")])
async def test_a_bad_statement_request_names_the_field(stack, region, month, field):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await statement(stack, region, month)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in caught.value.details()
