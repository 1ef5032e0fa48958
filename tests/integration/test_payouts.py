"""The treating agency's monthly payout list per hospital (拨付, SPEC §7) and its close (issue 9 item 4), on a
stack of the module's own whose clock lives through March to June 2026.

* A list adds up to its settlements less cancellations, per hospital; local + cross-region = the hospital's total.
* A settlement counts in the month the agency records it in, by its own clock — not in the month of the clearing
  house's `settled_at`. The issue's case for real: the clearing house settles on 31 March, its answer reaches
  the agency only on 2 April (a second agency process, on the same database, could not reach the clearing house;
  the HIS retries), after March's list was closed: it lands in April, and March's closed list is unchanged byte
  for byte. A cancel or a reversal after the close lands in the next open month too.
* Only a month that is over can be closed, months with payouts close in order, an empty month only on purpose;
  a refusal writes nothing; closing twice returns the first result, a retry replays.
* The database keeps a closed list closed (no posting into it, a settlement's payout fixed, closings never edited).

Tests run in file order: each moves the module's clock on from where the one before left it.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC

import asyncpg
import grpc
import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import hospital_pb2, treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

from services.common.clock import clearing_month
from services.stack.processes import free_port
from services.stack.wiring import start_region

TREATING = "440100"
INSURED = "430100"
H_GUANGZHOU = "H44010000001"
REGIONS = ("211100", "230400", "430100", "440100", "460100", "530100", "610924")
FEBRUARY, MARCH, APRIL, MAY = "2026-02", "2026-03", "2026-04", "2026-05"
ADMITTED_ON, DISCHARGED_ON = "2026-03-20", "2026-03-25"
PARTY = f"treating_{TREATING}"


@dataclass
class Scene:
    """Stays at one Guangzhou hospital, all settled at the clearing house in March."""

    fund_pay: dict[str, int]  # settlement id → the funds' share
    cross_region: str  # settled in March, cross-region
    local: str  # settled in March, a Guangzhou member
    unpaid: str  # settled in March, the funds pay nothing
    cancelled_in_march: str
    to_cancel: str  # cancelled after March is closed
    to_reverse: ta.SettleRequest  # reversed (冲正) after March is closed
    late_open: ta.SettleRequest  # pending here; recorded on 2 April before March is closed
    late_closed: ta.SettleRequest  # pending here; recorded on 2 April after March is closed
    late_ids: dict[str, str]  # HIS request id → settlement id of the late ones


def settled_in(settlement: types_pb2.Settlement) -> str:
    """The month (Asia/Shanghai) of the settlement's `settled_at` (the clearing house's, cross-region)."""
    return clearing_month(settlement.settled_at.ToDatetime(tzinfo=UTC))


async def discharge(kit, region: str, lines) -> types_pb2.Settlement:  # noqa: ANN001
    member = await kit.new_member(region)
    return await kit.discharge(H_GUANGZHOU, member, lines, ADMITTED_ON, DISCHARGED_ON)


async def pending_at_the_agency(kit, stub, lines) -> tuple[ta.SettleRequest, str]:  # noqa: ANN001
    """A Settle that reached the agency (pending there) through a process that cannot reach the clearing house."""
    encounter_id = await kit.open_encounter(H_GUANGZHOU, await kit.new_member(INSURED), lines, ADMITTED_ON)
    request = ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on=DISCHARGED_ON)
    error = await kit.refusal(stub.Settle(request, timeout=5))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    row = await (await kit.db(PARTY)).fetchrow("SELECT settlement_id, status, claim FROM settlements "
                                               "WHERE request_id = $1", uuid.UUID(request.request_id))
    assert row["status"] == "pending"
    return request, str(row["settlement_id"])


@pytest.fixture(scope="module")
async def march(own_kit, timeline) -> Scene:
    """March's stays, settled on its last evening: a generated batch in every region, and hand-made stays at one
    Guangzhou hospital, two of them pending at the agency but settled by the clearing house in March."""
    kit = own_kit
    timeline.at("2026-03-31", hour=20)
    async for _ in kit.hospital_service().RunDischarges(hospital_pb2.RunDischargesRequest(
            request_id=kit.rid(), count=12, seed=61, concurrency=4, month=MARCH)):
        pass
    code = kit.plain_codes(TREATING)[3]
    big = [kit.bill_line("1", code, "10", 500_000, "2026-03-21")]  # 50,000 yuan: well above any deductible
    small = [kit.bill_line("1", code, "1", 1_000, "2026-03-21")]  # 10 yuan: under any deductible
    settled = {name: await discharge(kit, region, lines) for name, region, lines in (
        ("cross_region", INSURED, big), ("local", TREATING, big), ("unpaid", INSURED, small),
        ("cancelled_in_march", INSURED, big), ("to_cancel", INSURED, big))}
    await kit.treating(TREATING).Cancel(ta.CancelRequest(
        request_id=kit.rid(), settlement_id=settled["cancelled_in_march"].settlement_id, reason="test"))
    reversing = await kit.open_encounter(H_GUANGZHOU, await kit.new_member(INSURED), big, ADMITTED_ON)
    to_reverse = ta.SettleRequest(request_id=kit.rid(), encounter_id=reversing, discharged_on=DISCHARGED_ON)
    settled["to_reverse"] = (await kit.treating(TREATING).Settle(to_reverse)).settlement

    # Two Settles reach a second process of the agency (same database) whose clearing house cannot be reached.
    isolated = await start_region(TREATING, kit.stack.config.dsn(PARTY), kit.stack.config.dsn(f"insured_{TREATING}"),
                                  f"127.0.0.1:{free_port()}", transport=kit.stack.transport)
    address = f"127.0.0.1:{isolated.port}"
    try:
        stub = kit.stack.treating(TREATING, address)
        late_open, late_open_id = await pending_at_the_agency(kit, stub, big)
        late_closed, late_closed_id = await pending_at_the_agency(kit, stub, big)
    finally:
        await isolated.stop()
    fund_pay = {item.settlement_id: item.adjudication.split.fund_pay_fen for item in settled.values()}
    # The clearing house settles both in March, as on a retry that never brought its answer back.
    for settlement_id in (late_open_id, late_closed_id):
        claim = types_pb2.Claim.FromString(bytes(await (await kit.db(PARTY)).fetchval(
            "SELECT claim FROM settlements WHERE settlement_id = $1", uuid.UUID(settlement_id))))
        answer = await kit.clearing().SettleClaim(ch.SettleClaimRequest(request_id=settlement_id, claim=claim))
        assert settled_in(answer.settlement) == MARCH
        fund_pay[settlement_id] = answer.settlement.adjudication.split.fund_pay_fen
    assert all(fund_pay[item.settlement_id] > 0 for name, item in settled.items() if name != "unpaid")
    assert fund_pay[settled["unpaid"].settlement_id] == 0
    return Scene(fund_pay=fund_pay, **{name: settled[name].settlement_id for name in (
        "cross_region", "local", "unpaid", "cancelled_in_march", "to_cancel")}, to_reverse=to_reverse,
        late_open=late_open, late_closed=late_closed,
        late_ids={late_open.request_id: late_open_id, late_closed.request_id: late_closed_id})


async def payouts(kit, month: str, region: str = TREATING) -> ta.ListPayoutsResponse:  # noqa: ANN001
    return await kit.treating(region).ListPayouts(ta.ListPayoutsRequest(month=month))


def close(kit, month: str, allow_empty: bool = False, region: str = TREATING):  # noqa: ANN001, ANN201
    return kit.treating(region).ClosePayoutMonth(ta.ClosePayoutMonthRequest(request_id=kit.rid(), month=month,
                                                                            allow_empty=allow_empty))


def of_hospital(answer: ta.ListPayoutsResponse, hospital_code: str = H_GUANGZHOU) -> ta.HospitalPayout:
    found = [item for item in answer.payouts if item.hospital_code == hospital_code]
    assert len(found) <= 1
    return found[0] if found else ta.HospitalPayout(hospital_code=hospital_code)


async def frozen_bytes(kit, month: str) -> bytes | None:  # noqa: ANN001
    value = await (await kit.db(PARTY)).fetchval("SELECT response FROM payout_closings WHERE month = $1", month)
    return None if value is None else bytes(value)


async def ledger_months(kit, settlement_id: str) -> dict[str, str]:  # noqa: ANN001
    """The payout month of each of the settlement's transactions in the agency's ledger: {kind: month}."""
    rows = await (await kit.db(PARTY)).fetch("SELECT kind, payout_month FROM ledger_transactions "
                                             "WHERE settlement_id = $1", uuid.UUID(settlement_id))
    return {row["kind"]: row["payout_month"] for row in rows}


def assert_adds_up(answer: ta.ListPayoutsResponse, region: str) -> None:
    for payout in answer.payouts:
        assert payout.local_fen + payout.cross_region_fen == payout.fund_pay_fen
        assert payout.hospital_code[1:7] == region
    assert answer.total_fen == sum(payout.fund_pay_fen for payout in answer.payouts)


# ---------------------------------------------------------------------------------------------
# March, open: the lists add up
# ---------------------------------------------------------------------------------------------

async def test_payouts_equal_the_settlements_less_cancellations_per_hospital(march, own_kit):
    """Everything so far was recorded on March's last evening, so each region's March list is its settlements: a
    settled one pays its funds' share, one settled and cancelled in March nets to zero, a pending one counts not."""
    kit = own_kit
    for region in REGIONS:
        answer = await payouts(kit, MARCH, region)
        rows = await (await kit.db(f"treating_{region}")).fetch(
            "SELECT hospital_code, status, local, fund_pay_fen FROM settlements")
        expected: dict[str, tuple[int, int, int, int, int]] = {}
        for row in rows:
            if row["status"] not in ("settled", "cancelled"):
                continue
            fen = row["fund_pay_fen"] if row["status"] == "settled" else 0
            settlements, cancels, total, local, cross = expected.get(row["hospital_code"], (0, 0, 0, 0, 0))
            expected[row["hospital_code"]] = (settlements + 1, cancels + (row["status"] == "cancelled"), total + fen,
                                              local + (fen if row["local"] else 0), cross + (0 if row["local"] else fen))
        assert {p.hospital_code: (p.settlements, p.cancels, p.fund_pay_fen, p.local_fen, p.cross_region_fen)
                for p in answer.payouts} == expected, region
        assert_adds_up(answer, region)
        assert (answer.month, answer.closed, answer.HasField("closed_at")) == (MARCH, False, False)
        assert not (await payouts(kit, APRIL, region)).payouts
    guangzhou = of_hospital(await payouts(kit, MARCH))
    cross, local = march.fund_pay[march.cross_region], march.fund_pay[march.local]
    assert guangzhou.local_fen >= local > 0 and guangzhou.cross_region_fen >= cross > 0
    assert guangzhou.settlements >= 6 and guangzhou.cancels >= 1  # the hand-made ones (the unpaid one at 0)


async def test_a_month_that_is_not_over_cannot_be_closed(march, own_kit):
    kit = own_kit
    before = await kit.counts(PARTY)
    for month in (MARCH, APRIL, "2027-01"):
        error = await kit.refusal(close(kit, month, allow_empty=True))
        kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="month")
        assert "not over" in error.details() and MARCH in error.details()
    assert await kit.counts(PARTY) == before


@pytest.mark.parametrize("month", ["2026-00", "2026-13", "Nov", "", "2026-3", "２０２６-03", "0000-01"])
async def test_a_bad_month_is_named(own_kit, month):
    kit = own_kit
    before = await kit.counts(PARTY)
    for call in (kit.treating(TREATING).ListPayouts(ta.ListPayoutsRequest(month=month)), close(kit, month)):
        kit.assert_refused(await kit.refusal(call), grpc.StatusCode.INVALID_ARGUMENT, field="month")
    assert await kit.counts(PARTY) == before


async def test_a_close_without_a_request_id_is_named(own_kit):
    error = await own_kit.refusal(own_kit.treating(TREATING).ClosePayoutMonth(
        ta.ClosePayoutMonthRequest(month=FEBRUARY, allow_empty=True)))
    own_kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="request_id")


# ---------------------------------------------------------------------------------------------
# 2 April: late answers, March closed
# ---------------------------------------------------------------------------------------------

async def test_a_settlement_counts_in_the_month_the_agency_records_it_not_the_clearing_houses(march, own_kit,
                                                                                            timeline):
    """The clearing house settled it on 31 March; its answer reaches the agency on 2 April (the HIS retries):
    April's payout, not March's."""
    kit = own_kit
    timeline.at("2026-04-02", hour=10)
    march_before = await payouts(kit, MARCH)
    settled = (await kit.treating(TREATING).Settle(march.late_open)).settlement
    assert settled.settlement_id == march.late_ids[march.late_open.request_id]
    assert settled_in(settled) == MARCH, "the clearing house's settled_at is in March"
    assert (await payouts(kit, MARCH)).SerializeToString() == march_before.SerializeToString()
    april = of_hospital(await payouts(kit, APRIL))
    fund_pay = march.fund_pay[settled.settlement_id]
    assert (april.settlements, april.cancels, april.fund_pay_fen, april.cross_region_fen) == (1, 0, fund_pay, fund_pay)
    assert await ledger_months(kit, settled.settlement_id) == {"settlement": APRIL}


async def test_a_late_record_after_the_close_lands_in_the_first_open_month_and_the_closed_list_never_changes(
        march, own_kit):
    """The issue's case: March's list is closed (paid, say) on 2 April; a settlement the clearing house settled on
    31 March is recorded here afterwards. It lands in April; March's list is the same bytes as at the close."""
    kit = own_kit
    running = await payouts(kit, MARCH)
    closed = (await close(kit, MARCH)).payout_list
    assert (closed.month, closed.closed, clearing_month(closed.closed_at.ToDatetime(tzinfo=UTC))) ==         (MARCH, True, APRIL)
    assert (list(closed.payouts), closed.total_fen) == (list(running.payouts), running.total_fen),         "the close freezes the list as it stood"
    stored = await frozen_bytes(kit, MARCH)
    assert stored == closed.SerializeToString()
    assert (await payouts(kit, MARCH)).SerializeToString() == stored, "a closed month answers its frozen list"

    settled = (await kit.treating(TREATING).Settle(march.late_closed)).settlement  # the HIS retries
    assert settled_in(settled) == MARCH, "the clearing house's settled_at is in March"
    for _ in range(2):  # the same bytes every time
        assert (await payouts(kit, MARCH)).SerializeToString() == stored
    assert await frozen_bytes(kit, MARCH) == stored
    april = of_hospital(await payouts(kit, APRIL))
    late = [march.fund_pay[settlement_id] for settlement_id in march.late_ids.values()]
    assert (april.settlements, april.cancels, april.fund_pay_fen) == (2, 0, sum(late))
    assert await ledger_months(kit, settled.settlement_id) == {"settlement": APRIL}


async def test_a_cancel_or_reversal_after_the_close_counts_in_the_next_open_month(march, own_kit):
    kit = own_kit
    stored = await frozen_bytes(kit, MARCH)
    await kit.treating(TREATING).Cancel(ta.CancelRequest(request_id=kit.rid(), settlement_id=march.to_cancel,
                                                         reason="after the close"))
    reversed_ = await kit.treating(TREATING).Reverse(ta.ReverseRequest(
        request_id=kit.rid(), original_request_id=march.to_reverse.request_id, reason="after the close"))
    assert reversed_.outcome == types_pb2.REVERSAL_OUTCOME_REVERSED
    for settlement_id, kind in ((march.to_cancel, "cancel"), (reversed_.settlement_id, "reversal")):
        assert await ledger_months(kit, settlement_id) == {"settlement": MARCH, kind: APRIL}
    assert (await payouts(kit, MARCH)).SerializeToString() == stored == await frozen_bytes(kit, MARCH)
    april = of_hospital(await payouts(kit, APRIL))
    undone = march.fund_pay[march.to_cancel] + march.fund_pay[reversed_.settlement_id]
    late = sum(march.fund_pay[settlement_id] for settlement_id in march.late_ids.values())
    assert (april.settlements, april.cancels, april.fund_pay_fen) == (2, 2, late - undone)
    assert april.local_fen + april.cross_region_fen == april.fund_pay_fen


async def test_closing_twice_returns_the_first_result_and_a_retry_replays(march, own_kit):
    kit = own_kit
    stored = await frozen_bytes(kit, MARCH)
    before = await kit.counts(PARTY)
    request = ta.ClosePayoutMonthRequest(request_id=kit.rid(), month=MARCH)
    again = await kit.treating(TREATING).ClosePayoutMonth(request)
    assert again.payout_list.SerializeToString() == stored, "the first result"
    assert kit.same_bytes(again, await kit.treating(TREATING).ClosePayoutMonth(request)), "a retry replays"
    conflict = await kit.refusal(kit.treating(TREATING).ClosePayoutMonth(
        ta.ClosePayoutMonthRequest(request_id=request.request_id, month=FEBRUARY)))
    kit.assert_refused(conflict, grpc.StatusCode.ALREADY_EXISTS, field="month")
    after = await kit.counts(PARTY)
    assert {key: after[key] - before[key] for key in after if after[key] != before[key]} == \
        {(PARTY, "requests"): 1}, "only the new request id is remembered"
    assert await frozen_bytes(kit, MARCH) == stored


# ---------------------------------------------------------------------------------------------
# June: months close in order
# ---------------------------------------------------------------------------------------------

async def test_months_close_in_order_and_an_empty_month_only_on_purpose(march, own_kit, timeline):
    kit = own_kit
    timeline.at("2026-06-02", hour=10)
    before = await kit.counts(PARTY)
    error = await kit.refusal(close(kit, MAY, allow_empty=True))  # April has payouts and is open
    kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="month")
    assert APRIL in error.details()
    error = await kit.refusal(close(kit, FEBRUARY))
    kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="month")
    assert "no payouts" in error.details()
    assert await kit.counts(PARTY) == before, "a refusal writes nothing"

    empty = (await close(kit, FEBRUARY, allow_empty=True)).payout_list
    assert (empty.month, empty.closed, list(empty.payouts), empty.total_fen) == (FEBRUARY, True, [], 0)
    other = await close(kit, MARCH, region=INSURED, allow_empty=True)  # each agency closes its own months
    assert other.payout_list.closed and other.payout_list.month == MARCH


async def waiting_for_the_payout_lock(connection: asyncpg.Connection, count: int) -> None:
    for _ in range(500):
        waiting = await connection.fetchval("SELECT count(*) FROM pg_locks WHERE relation = 'payout_closings'::regclass "
                                            "AND NOT granted")
        if waiting >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {count} transactions wait for the payout lock")


async def test_a_post_in_flight_lands_before_the_close_and_a_later_one_sees_the_month_closed(march, own_kit):
    """A post holds ROW EXCLUSIVE on payout_closings from before it chooses its month until it commits; the close
    waits for it and freezes the list with it. A post that comes while the close waits queues behind the close,
    then sees the month closed (the database's own guard, as raw SQL)."""
    kit = own_kit
    in_flight, later, observer = [await kit.stack.connect(PARTY) for _ in range(3)]
    try:
        before = of_hospital(await payouts(kit, APRIL))
        flight = in_flight.transaction()
        await flight.start()
        await in_flight.execute("LOCK TABLE payout_closings IN ROW EXCLUSIVE MODE")  # the post took its lock
        closing = asyncio.ensure_future(close(kit, APRIL))
        await waiting_for_the_payout_lock(observer, 1)

        async def post_later() -> None:
            async with later.transaction():
                tx_id = await later.fetchval(
                    "INSERT INTO ledger_transactions (settlement_id, kind, payout_month) VALUES ($1, 'cancel', $2) "
                    "RETURNING tx_id", uuid.UUID(march.cross_region), APRIL)
                await later.execute("INSERT INTO ledger_postings (tx_id, account, amount_fen) "
                                    "VALUES ($1, 'x/a', 100), ($1, 'x/b', -100)", tx_id)

        posting_later = asyncio.ensure_future(post_later())
        await waiting_for_the_payout_lock(observer, 2)
        assert not closing.done() and not posting_later.done()
        # The post in flight chooses April (open) and records: the unpaid stay (funds pay 0, nothing to post) cancelled.
        await in_flight.execute("UPDATE settlements SET status = 'cancelled', cancelled_at = now(), "
                                "undo_payout_month = $2 WHERE settlement_id = $1", uuid.UUID(march.unpaid), APRIL)
        await flight.commit()
        frozen = (await closing).payout_list
        with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError, match=f"payout month {APRIL} is closed"):
            await posting_later
        april = of_hospital(frozen)
        assert (april.settlements, april.cancels, april.fund_pay_fen) == \
            (before.settlements, before.cancels + 1, before.fund_pay_fen), "the post in flight is in the frozen list"
        assert (await payouts(kit, APRIL)).SerializeToString() == frozen.SerializeToString()
    finally:
        for connection in (in_flight, later, observer):
            await connection.close()
    may = (await close(kit, MAY, allow_empty=True)).payout_list  # April closed: May may close now
    assert (may.closed, list(may.payouts)) == (True, [])


async def test_every_months_list_adds_up_to_each_hospitals_receivable(march, own_kit):
    """Frozen or running, the lists of all months together are what the agency owes each hospital."""
    kit = own_kit
    listed = set()
    for region in REGIONS:
        connection = await kit.db(f"treating_{region}")
        months = [row["month"] for row in await connection.fetch(
            "SELECT DISTINCT payout_month AS month FROM ledger_transactions UNION SELECT month FROM payout_closings")]
        if months:  # (a region none of the run's few discharges went to owes nothing: checked below all the same)
            listed.add(region)
        paid: dict[str, int] = {}
        for month in months:
            answer = await payouts(kit, month, region)
            assert_adds_up(answer, region)
            for payout in answer.payouts:
                paid[payout.hospital_code] = paid.get(payout.hospital_code, 0) + payout.fund_pay_fen
        balances = {row["account"]: row["balance_fen"] for row in await connection.fetch(
            "SELECT account, balance_fen FROM ledger_balances WHERE account LIKE 'hospital/%/receivable'")}
        assert {f"hospital/{code}/receivable": fen for code, fen in paid.items() if fen} == \
            {account: fen for account, fen in balances.items() if fen}, region
    assert TREATING in listed and len(listed) >= 3, listed  # the hand-made stays and the generated ones


# ---------------------------------------------------------------------------------------------
# Breaking it through SQL directly: a closed list stays closed
# ---------------------------------------------------------------------------------------------

class Rollback(Exception):
    pass


async def footprint(connection: asyncpg.Connection) -> tuple:
    return tuple(await connection.fetchrow(
        "SELECT (SELECT count(*) FROM ledger_transactions), (SELECT count(*) FROM ledger_postings), "
        "(SELECT sum(abs(balance_fen)) FROM ledger_balances), (SELECT count(*) FROM payout_closings), "
        "(SELECT string_agg(month || md5(response), ',' ORDER BY month) FROM payout_closings), "
        "(SELECT string_agg(settlement_id::text || status || coalesce(payout_month, '') || "
        "coalesce(undo_payout_month, '') || coalesce(fund_pay_fen, 0), ',' ORDER BY settlement_id) FROM settlements)"))


async def test_a_posting_into_a_closed_payout_month_is_refused(march, own_kit):
    connection = await own_kit.stack.connect(PARTY)
    try:
        before = await footprint(connection)
        for month in (MARCH, APRIL):
            with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError, match=f"payout month {month} is closed"):
                async with connection.transaction():
                    tx_id = await connection.fetchval(
                        "INSERT INTO ledger_transactions (settlement_id, kind, payout_month) VALUES ($1, 'cancel', $2) "
                        "RETURNING tx_id", uuid.UUID(march.cross_region), month)
                    await connection.execute("INSERT INTO ledger_postings (tx_id, account, amount_fen) "
                                             "VALUES ($1, 'x/a', 100), ($1, 'x/b', -100)", tx_id)
        assert await footprint(connection) == before
        with pytest.raises(Rollback):  # an open month takes it
            async with connection.transaction():
                tx_id = await connection.fetchval(
                    "INSERT INTO ledger_transactions (settlement_id, kind, payout_month) VALUES ($1, 'cancel', "
                    "'2026-06') RETURNING tx_id", uuid.UUID(march.cross_region))
                await connection.execute("INSERT INTO ledger_postings (tx_id, account, amount_fen) "
                                         "VALUES ($1, 'x/a', 100), ($1, 'x/b', -100)", tx_id)
                raise Rollback
        assert await footprint(connection) == before
    finally:
        await connection.close()


@pytest.mark.parametrize(("statement", "settlement", "error", "message"), [
    ("UPDATE settlements SET status = 'cancelled', cancelled_at = now(), undo_payout_month = '2026-03' "
     "WHERE settlement_id = $1", "cross_region", asyncpg.ObjectNotInPrerequisiteStateError,
     "payout month 2026-03 is closed: the cancelled of settlement"),
    ("UPDATE settlements SET payout_month = '2026-07' WHERE settlement_id = $1", "cross_region",
     asyncpg.InsufficientPrivilegeError, "its payout is fixed"),
    ("UPDATE settlements SET fund_pay_fen = fund_pay_fen + 1, psn_pay_fen = psn_pay_fen - 1 WHERE settlement_id = $1",
     "local", asyncpg.InsufficientPrivilegeError, "its payout is fixed"),
    ("UPDATE settlements SET hospital_code = 'H44010000002' WHERE settlement_id = $1", "unpaid",
     asyncpg.InsufficientPrivilegeError, "its payout is fixed"),
    ("UPDATE settlements SET status = 'pending' WHERE settlement_id = $1", "cross_region",
     asyncpg.InsufficientPrivilegeError, "its payout is fixed"),
    ("UPDATE settlements SET status = 'settled', undo_payout_month = NULL WHERE settlement_id = $1", "to_cancel",
     asyncpg.InsufficientPrivilegeError, "its cancel or reversal is fixed"),
    ("UPDATE settlements SET undo_payout_month = '2026-08' WHERE settlement_id = $1", "to_cancel",
     asyncpg.InsufficientPrivilegeError, "its cancel or reversal is fixed"),
    ("DELETE FROM settlements WHERE settlement_id = $1", "unpaid",  # nothing posted: no foreign key holds it
     asyncpg.InsufficientPrivilegeError, "is never deleted"),
])
async def test_a_settlements_payout_is_fixed_once_it_counts(march, own_kit, statement, settlement, error, message):
    connection = await own_kit.stack.connect(PARTY)
    try:
        before = await footprint(connection)
        with pytest.raises(error, match=message):
            await connection.execute(statement.replace("$1", "$1::text::uuid"), getattr(march, settlement))
        assert await footprint(connection) == before
    finally:
        await connection.close()


@pytest.mark.parametrize(("statement", "message"), [
    ("UPDATE payout_closings SET response = ''", "never reopened or edited: UPDATE on payout_closings"),
    ("UPDATE payout_closings SET month = '2099-10'", "never reopened or edited: UPDATE on payout_closings"),
    ("DELETE FROM payout_closings", "never reopened or edited: DELETE on payout_closings"),
    ("TRUNCATE payout_closings", "never reopened or edited: TRUNCATE on payout_closings"),
    ("INSERT INTO payout_closings (month, closed_at, response) VALUES ('2099-11', now(), '')",
     "only by the close path"),
    ("TRUNCATE settlements CASCADE", "TRUNCATE"),
])
async def test_a_closed_payout_month_is_never_reopened_or_edited(march, own_kit, statement, message):
    connection = await own_kit.stack.connect(PARTY)
    try:
        before = await footprint(connection)
        assert MARCH in before[4]
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match=message):
            await connection.execute(statement)
        assert await footprint(connection) == before
    finally:
        await connection.close()
