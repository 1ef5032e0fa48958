"""Year-end summary (年度清算, SPEC §7 statements): a region's closed months of a year, each equal to
its month statement, added up; the months still open are named, not counted."""

from __future__ import annotations

import uuid

import grpc
import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import hospital_pb2

from services.clearinghouse.closing import next_month

SUMMED = ("entries_as_insured", "entries_as_treating", "owed_by_fen", "owed_to_fen", "net_fen", "hifp_fen",
          "hifmi_fen", "maf_fen", "psn_pay_fen")


CLOSED_MONTH = "2026-10"


@pytest.fixture(scope="module")
async def year(own_stack, timeline) -> str:
    """Stays settled in October 2026, October closed on 2 November, more stays settled after the close (they
    clear in November, still open)."""
    async def discharge(seed: int) -> None:
        async for _ in own_stack.hospital().RunDischarges(hospital_pb2.RunDischargesRequest(
                request_id=str(uuid.uuid4()), count=10, seed=seed, concurrency=5, month=CLOSED_MONTH)):
            pass

    timeline.at("2026-10-31", hour=20)
    await discharge(83)
    timeline.at("2026-11-02", hour=10)
    await own_stack.clearing().CloseMonth(ch.CloseMonthRequest(request_id=str(uuid.uuid4()), month=CLOSED_MONTH))
    await discharge(89)  # after the close: they clear in the next open month
    return CLOSED_MONTH[:4]


async def month_statement_summary(own_stack, region: str, month: str) -> ch.StatementSummary:
    stream = own_stack.clearing().StreamStatement(ch.StreamStatementRequest(region=region, month=month))
    async for item in stream:
        stream.cancel()  # the summary comes first; the entries are not needed here
        return item.summary
    raise AssertionError("a statement starts with its summary")


async def test_the_year_is_the_sum_of_its_month_statements(own_stack, year):
    connection = await own_stack.connect("clearinghouse")
    try:
        closed = [row["month"] for row in await connection.fetch(
            "SELECT month FROM month_closings WHERE month LIKE $1 || '-%' ORDER BY month", year)]
        active = {row["clearing_month"] for row in await connection.fetch(
            "SELECT DISTINCT clearing_month FROM clearing_aggregates WHERE clearing_month LIKE $1 || '-%' "
            "AND (settlements > 0 OR cancels > 0)", year)}
        regions = [row["region"] for row in await connection.fetch(
            "SELECT DISTINCT unnest(array[insured_region, treating_region]) AS region FROM clearing_aggregates "
            "ORDER BY 1")]
    finally:
        await connection.close()
    # Most regions take part (which ones depends on how the twenty discharges fare: on a loaded machine a
    # region's only stay may be refused or settle in a batch after the close — seen once with 6 of 7).
    assert closed and len(regions) >= 5
    positions_by_month = {month: {p.region: p.net_fen for p in (await own_stack.clearing().GetMonthClosing(
        ch.GetMonthClosingRequest(month=month))).closing.positions} for month in closed}
    for region in regions:
        answer = await own_stack.clearing().GetYearSummary(ch.GetYearSummaryRequest(region=region, year=year))
        assert (answer.region, answer.year) == (region, year)
        statements = [await month_statement_summary(own_stack, region, month) for month in closed]
        assert list(answer.months) == statements  # each month exactly as its statement says
        assert answer.totals.closed_months == len(closed)
        for key in SUMMED:
            assert getattr(answer.totals, key) == sum(getattr(item, key) for item in statements), key
        assert answer.totals.net_fen == sum(positions[region] for positions in positions_by_month.values()
                                            if region in positions)
        assert answer.totals.hifp_fen + answer.totals.hifmi_fen + answer.totals.maf_fen == answer.totals.owed_by_fen
        assert set(answer.open_months).isdisjoint(closed)
        assert {month for month in active if month not in closed} <= set(answer.open_months)
        assert list(answer.open_months) == sorted(answer.open_months)


async def test_the_month_after_the_close_is_named_open_and_not_counted(own_stack, year):
    month = CLOSED_MONTH
    answer = await own_stack.clearing().GetYearSummary(ch.GetYearSummaryRequest(region="440100", year=year))
    assert month in [item.month for item in answer.months]
    after = next_month(month)
    if after.startswith(year):  # in December the next month belongs to next year's summary
        assert after in answer.open_months
        assert after not in [item.month for item in answer.months]


async def test_a_year_without_closed_months_is_empty(own_stack):
    answer = await own_stack.clearing().GetYearSummary(ch.GetYearSummaryRequest(region="440100", year="2001"))
    assert list(answer.months) == [] and list(answer.open_months) == []
    assert answer.totals == ch.StatementTotals()


@pytest.mark.parametrize(("region", "year", "field"), [
    ("440100", "26", "year"), ("440100", "2026-01", "year"), ("440100", "2101", "year"), ("4401", "2026", "region"),
])
async def test_a_bad_year_summary_request_names_the_field(own_stack, region, year, field):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await own_stack.clearing().GetYearSummary(ch.GetYearSummaryRequest(region=region, year=year))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in caught.value.details()
