"""冲正 (2601): reverse a Settle by its original request id, whatever the settlement reached — no party,
the treating agency only, the clearing house without the insured agency, or every party (SPEC §8).

The partial states are made for real: a second treating agency (or clearing house) on the same
database whose downstream neighbour is a port nobody listens on, so the call fails UNAVAILABLE
after the caller committed its pending row, exactly as after a crash or a cut connection.
"""

from __future__ import annotations

import uuid

import grpc
import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

from services.stack.processes import free_port
from services.stack.wiring import start_clearing_house, start_region

H_GUANGZHOU = "H44010000001"  # treating region 440100
GUANGZHOU = "440100"
INSURED = "610924"
ADMITTED_ON, DISCHARGED_ON = "2026-03-02", "2026-03-06"


async def open_stay(kit, member, hospital_code: str = H_GUANGZHOU) -> str:  # noqa: ANN001
    line = kit.bill_line("1", kit.plain_codes(hospital_code[1:7])[0], "2", 150000, ADMITTED_ON)
    return await kit.open_encounter(hospital_code, member, [line], ADMITTED_ON)


async def states(kit, settlement_id: str, treating: str = GUANGZHOU, insured: str = INSURED) -> tuple:  # noqa: ANN001
    """The settlement's status at the treating agency, the clearing house and the insured agency."""
    sid = uuid.UUID(settlement_id)
    at_ta = await (await kit.db(f"treating_{treating}")).fetchval(
        "SELECT status FROM settlements WHERE settlement_id = $1", sid)
    at_ch = await (await kit.db("clearinghouse")).fetchval("SELECT status FROM claims WHERE settlement_id = $1", sid)
    at_ia = await (await kit.db(f"insured_{insured}")).fetchval(
        "SELECT status FROM settlements WHERE settlement_id = $1", sid)
    return at_ta, at_ch, at_ia


async def settlement_of(kit, request_id: str, treating: str = GUANGZHOU) -> str:  # noqa: ANN001
    return str(await (await kit.db(f"treating_{treating}")).fetchval(
        "SELECT settlement_id FROM settlements WHERE request_id = $1", uuid.UUID(request_id)))


def reverse(kit, original_request_id: str, treating: str = GUANGZHOU):  # noqa: ANN001, ANN201
    return kit.treating(treating).Reverse(ta.ReverseRequest(request_id=kit.rid(), original_request_id=original_request_id,
                                                            reason="HIS timeout at the discharge desk"))


async def assert_settle_refused_as_reversed(kit, encounter_id: str, request_id: str) -> None:  # noqa: ANN001
    error = await kit.refusal(kit.treating(GUANGZHOU).Settle(
        ta.SettleRequest(request_id=request_id, encounter_id=encounter_id, discharged_on=DISCHARGED_ON)))
    kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="request_id")


@pytest.fixture
async def dead_address() -> str:
    return f"127.0.0.1:{free_port()}"


async def test_reversing_a_settlement_that_reached_every_party_undoes_it_everywhere(kit):
    member = await kit.new_member(INSURED)
    before = await kit.accumulators(member)
    encounter_id = await open_stay(kit, member)
    settle = ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on=DISCHARGED_ON)
    settled = (await kit.treating(GUANGZHOU).Settle(settle)).settlement
    assert settled.adjudication.split.fund_pay_fen > 0

    request = ta.ReverseRequest(request_id=kit.rid(), original_request_id=settle.request_id, reason="unsure")
    answer = await kit.treating(GUANGZHOU).Reverse(request)
    assert answer.outcome == types_pb2.REVERSAL_OUTCOME_REVERSED
    assert answer.settlement_id == settled.settlement_id
    assert answer.settlement.status == types_pb2.SETTLEMENT_STATUS_REVERSED
    assert kit.ytd_dict(answer.settlement.adjudication.ytd_after) == kit.ytd_dict(before)
    assert await states(kit, settled.settlement_id) == ("reversed", "reversed", "reversed")
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(before), "accumulators restored exactly"
    ledger = await kit.ledger(settled.settlement_id)
    assert set(ledger) == {"settlement", "reversal"}
    assert {account: ledger["settlement"][account] + ledger["reversal"][account] for account in ledger["settlement"]} \
        == dict.fromkeys(ledger["settlement"], 0), "the reversal mirrors every leg"

    treating_ledger = await (await kit.db(f"treating_{GUANGZHOU}")).fetch(
        "SELECT t.kind, p.account, p.amount_fen FROM ledger_postings p JOIN ledger_transactions t USING (tx_id) "
        "WHERE t.settlement_id = $1 ORDER BY t.kind, p.account", uuid.UUID(settled.settlement_id))
    assert [row["kind"] for row in treating_ledger] == ["reversal", "reversal", "settlement", "settlement"]
    assert sum(row["amount_fen"] for row in treating_ledger) == 0
    assert {row["account"]: row["amount_fen"] for row in treating_ledger if row["kind"] == "reversal"} == \
        {row["account"]: -row["amount_fen"] for row in treating_ledger if row["kind"] == "settlement"}, \
        "the hospital's receivable is mirrored at the treating agency too"

    parties = (f"treating_{GUANGZHOU}", "clearinghouse", f"insured_{INSURED}")
    counts = await kit.counts(*parties)
    assert kit.same_bytes(answer, await kit.treating(GUANGZHOU).Reverse(request)), "a retry replays"
    again = await reverse(kit, settle.request_id)  # a second reversal under a new id: same outcome, no effect
    assert again.outcome == types_pb2.REVERSAL_OUTCOME_REVERSED
    await assert_settle_refused_as_reversed(kit, encounter_id, settle.request_id)
    counts_after = await kit.counts(*parties)
    assert {key: counts_after[key] - counts[key] for key in counts if counts_after[key] != counts[key]} == \
        {(f"treating_{GUANGZHOU}", "requests"): 1}, "only the second reversal's request is remembered"
    fetched = await kit.treating(GUANGZHOU).GetSettlement(ta.GetSettlementRequest(settlement_id=settled.settlement_id))
    assert fetched.settlement.status == types_pb2.SETTLEMENT_STATUS_REVERSED

    # The encounter is open again: the hospital settles it under a new request id.
    resettled = await kit.treating(GUANGZHOU).Settle(
        ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on=DISCHARGED_ON))
    assert resettled.settlement.adjudication.split == settled.adjudication.split


async def test_reversing_a_request_nobody_recorded_blocks_it(kit):
    member = await kit.new_member(INSURED)
    encounter_id = await open_stay(kit, member)
    lost_request_id = kit.rid()  # the HIS timed out before its Settle reached anyone
    answer = await reverse(kit, lost_request_id)
    assert answer.outcome == types_pb2.REVERSAL_OUTCOME_NOTHING_RECORDED
    assert answer.settlement_id == ""
    await assert_settle_refused_as_reversed(kit, encounter_id, lost_request_id)
    assert await (await kit.db(f"treating_{GUANGZHOU}")).fetchval(
        "SELECT count(*) FROM settlements WHERE encounter_id = $1", uuid.UUID(encounter_id)) == 0


async def test_reversing_a_local_settlement_restores_the_accumulators(kit):
    member = await kit.new_member(GUANGZHOU)
    before = await kit.accumulators(member)
    encounter_id = await open_stay(kit, member)
    settle = ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on=DISCHARGED_ON)
    settled = (await kit.treating(GUANGZHOU).Settle(settle)).settlement
    assert settled.local
    answer = await reverse(kit, settle.request_id)
    assert answer.outcome == types_pb2.REVERSAL_OUTCOME_REVERSED
    assert await states(kit, settled.settlement_id, insured=GUANGZHOU) == ("reversed", None, "reversed")
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(before)


async def test_reversing_a_failed_or_cancelled_settlement_changes_nothing(kit):
    member = await kit.new_member(INSURED)
    encounter_id = await open_stay(kit, member)
    settle = ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on=DISCHARGED_ON)
    settled = (await kit.treating(GUANGZHOU).Settle(settle)).settlement
    await kit.treating(GUANGZHOU).Cancel(ta.CancelRequest(request_id=kit.rid(), settlement_id=settled.settlement_id))
    after_cancel = await kit.accumulators(member)
    answer = await reverse(kit, settle.request_id)
    assert answer.outcome == types_pb2.REVERSAL_OUTCOME_ALREADY_UNDONE
    assert await states(kit, settled.settlement_id) == ("cancelled", "cancelled", "cancelled")
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(after_cancel)
    assert set(await kit.ledger(settled.settlement_id)) == {"settlement", "cancel"}


async def test_reversal_when_only_the_treating_agency_recorded_it(kit, dead_address):
    """Settle reached the treating agency, whose call to the clearing house failed: pending there only.
    The reversal is recorded at once (a retried Settle is refused from then on) and completes when the
    clearing house can be reached."""
    isolated = await start_region(GUANGZHOU, kit.stack.config.dsn(f"treating_{GUANGZHOU}"),
                                  kit.stack.config.dsn(f"insured_{GUANGZHOU}"), dead_address,
                                  transport=kit.stack.transport)
    address = f"127.0.0.1:{isolated.port}"
    try:
        cut_off = kit.stack.treating(GUANGZHOU, address)
        member = await kit.new_member(INSURED)
        before = await kit.accumulators(member)
        encounter_id = await open_stay(kit, member)
        settle = ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on=DISCHARGED_ON)
        error = await kit.refusal(cut_off.Settle(settle, timeout=5))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        settlement_id = await settlement_of(kit, settle.request_id)
        assert await states(kit, settlement_id) == ("pending", None, None)

        reversing = ta.ReverseRequest(request_id=kit.rid(), original_request_id=settle.request_id)
        error = await kit.refusal(cut_off.Reverse(reversing, timeout=5))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        await assert_settle_refused_as_reversed(kit, encounter_id, settle.request_id)  # blocked already
        assert await states(kit, settlement_id) == ("pending", None, None)

        answer = await kit.treating(GUANGZHOU).Reverse(reversing)  # the HIS retries; the link is back
        assert answer.outcome == types_pb2.REVERSAL_OUTCOME_REVERSED
        assert not answer.HasField("settlement"), "it never got an answer downstream"
        assert await states(kit, settlement_id) == ("reversed", None, None)
        reversal = await (await kit.db("clearinghouse")).fetchrow(
            "SELECT status, outcome FROM reversals WHERE settlement_id = $1", uuid.UUID(settlement_id))
        assert dict(reversal) == {"status": "done", "outcome": "nothing_recorded"}
        error = await kit.refusal(kit.clearing().SettleClaim(ch.SettleClaimRequest(
            request_id=settlement_id, claim=await pending_claim(kit, settlement_id))))
        kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="request_id")  # a late copy is refused
        assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(before)
    finally:
        await isolated.stop()


async def pending_claim(kit, settlement_id: str) -> types_pb2.Claim:  # noqa: ANN001
    raw = await (await kit.db(f"treating_{GUANGZHOU}")).fetchval(
        "SELECT claim FROM settlements WHERE settlement_id = $1", uuid.UUID(settlement_id))
    return types_pb2.Claim.FromString(bytes(raw))


async def test_reversal_when_the_clearing_house_recorded_it_but_not_the_insured_agency(kit, dead_address):
    clearing = await start_clearing_house(kit.stack.config.dsn("clearinghouse"), {INSURED: dead_address},
                                          transport=kit.stack.transport)
    await clearing.servicers["clearinghouse"].load_catalogues()
    region = await start_region(GUANGZHOU, kit.stack.config.dsn(f"treating_{GUANGZHOU}"),
                                kit.stack.config.dsn(f"insured_{GUANGZHOU}"), f"127.0.0.1:{clearing.port}",
                                transport=kit.stack.transport)
    address = f"127.0.0.1:{region.port}"
    try:
        member = await kit.new_member(INSURED)
        encounter_id = await open_stay(kit, member)
        settle = ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on=DISCHARGED_ON)
        error = await kit.refusal(kit.stack.treating(GUANGZHOU, address).Settle(settle, timeout=5))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        settlement_id = await settlement_of(kit, settle.request_id)
        assert await states(kit, settlement_id) == ("pending", "pending", None)

        answer = await reverse(kit, settle.request_id)
        assert answer.outcome == types_pb2.REVERSAL_OUTCOME_REVERSED
        assert await states(kit, settlement_id) == ("reversed", "reversed", None)
        assert await kit.ledger(settlement_id) == {}, "nothing was ever posted"
        ia_reversal = await (await kit.db(f"insured_{INSURED}")).fetchval(
            "SELECT outcome FROM reversals WHERE settlement_id = $1", uuid.UUID(settlement_id))
        assert ia_reversal == "nothing_recorded", "the insured agency blocks the id too"
    finally:
        await region.stop()
        await clearing.stop()


async def test_reversal_when_every_party_but_the_treating_agency_settled_it(kit):
    """The clearing house settled and posted, but its answer never reached the treating agency (a
    crash after the clearing house committed): pending at the treating agency only."""
    member = await kit.new_member(INSURED)
    before = await kit.accumulators(member)
    encounter_id = await open_stay(kit, member)
    lost = kit.rid()
    dead = await start_clearing_house(kit.stack.config.dsn("clearinghouse"), {}, transport=kit.stack.transport)
    region = await start_region(GUANGZHOU, kit.stack.config.dsn(f"treating_{GUANGZHOU}"),
                                kit.stack.config.dsn(f"insured_{GUANGZHOU}"), f"127.0.0.1:{free_port()}",
                                transport=kit.stack.transport)
    address = f"127.0.0.1:{region.port}"
    try:
        stub = kit.stack.treating(GUANGZHOU, address)
        error = await kit.refusal(stub.Settle(ta.SettleRequest(request_id=lost, encounter_id=encounter_id,
                                                               discharged_on=DISCHARGED_ON), timeout=5))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await region.stop()
        await dead.stop()
    settlement_id = await settlement_of(kit, lost)
    claim = await pending_claim(kit, settlement_id)
    settled = await kit.clearing().SettleClaim(ch.SettleClaimRequest(request_id=settlement_id, claim=claim))
    assert await states(kit, settlement_id) == ("pending", "settled", "settled")
    fund_pay_fen = settled.settlement.adjudication.split.fund_pay_fen
    assert fund_pay_fen > 0

    answer = await reverse(kit, lost)
    assert answer.outcome == types_pb2.REVERSAL_OUTCOME_REVERSED
    assert await states(kit, settlement_id) == ("reversed", "reversed", "reversed")
    ledger = await kit.ledger(settlement_id)
    assert sum(ledger["settlement"].values()) == sum(ledger["reversal"].values()) == 0
    assert all(ledger["settlement"][account] == -ledger["reversal"][account] for account in ledger["settlement"])
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(before)
