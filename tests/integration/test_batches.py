"""Settlement batches (批量结算, issue 11 item 3): the insured agency's AdjudicateBatch stream, the clearing house's
SettleClaimBatch stream, and the batcher that feeds them. (Every other test discharges through both streams too:
batching is on by default.)

Claims are real routed claims, taken from PreSettle (the clearing house's QuoteClaim routes them), sent as the
clearing house would send them. Each claim of a batch must get exactly what Adjudicate would give it: claims of one
member adjudicated one after the other, a refused claim refused alone, a resent batch replayed byte for byte, and a
batch whose transaction fails as a whole adjudicated again claim by claim. The module has a stack of its own: the
claims it adjudicates reach no treating agency or clearing house.
"""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import clearing_house_pb2_grpc as ch_grpc
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import insured_agency_pb2_grpc as ia_grpc
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

from services.common.batch_settings import BatchSettings
from services.common.batching import StreamBatcher, error_of
from services.security.identity import clearinghouse

TREATING, INSURED = "440100", "610924"  # its members' stays at Guangzhou are paid by catalogue (no cut)
H_GUANGZHOU = "H44010000001"


async def routed_claim(kit, member, amount_fen: int = 1_200_000) -> types_pb2.Claim:  # noqa: ANN001
    """A cross-region stay of `member` at Guangzhou, routed by the clearing house (PreSettle → QuoteClaim)."""
    lines = [kit.bill_line("1", kit.plain_codes(TREATING)[0], "1", amount_fen, "2026-03-02")]
    encounter_id = await kit.open_encounter(H_GUANGZHOU, member, lines, "2026-03-01")
    quoted = await kit.treating(TREATING).PreSettle(ta.PreSettleRequest(encounter_id=encounter_id,
                                                                        discharged_on="2026-03-05"))
    return quoted.settlement.claim


async def new_member(kit):  # noqa: ANN001, ANN201
    return await kit.new_member(INSURED, scheme="employee", filing="resident")


def adjudicate_request(claim: types_pb2.Claim) -> ia.AdjudicateRequest:
    return ia.AdjudicateRequest(request_id=claim.settlement_id, claim=claim)


def insured_stub(kit) -> ia_grpc.InsuredAgencyServiceStub:  # noqa: ANN001
    return kit.stack.stub_as(clearinghouse(), ia_grpc.InsuredAgencyServiceStub, kit.stack.address(INSURED))


async def send(kit, *batches: ia.AdjudicateBatchRequest) -> dict[int, ia.AdjudicateBatchResponse]:  # noqa: ANN001
    """Send `batches` on one stream, as the clearing house; batch id → its answer."""
    answers = [answer async for answer in insured_stub(kit).AdjudicateBatch(iter(batches), timeout=30)]
    return {answer.batch_id: answer for answer in answers}


async def recorded(kit, settlement_ids: list[str]) -> int:  # noqa: ANN001
    return await (await kit.db(f"insured_{INSURED}")).fetchval(
        "SELECT count(*) FROM settlements WHERE settlement_id = ANY($1::uuid[])", [uuid.UUID(i) for i in settlement_ids])


def wire(message) -> bytes:  # noqa: ANN001
    return message.SerializeToString(deterministic=True)


def ytd(message: types_pb2.Accumulators) -> dict[str, int]:
    return {field.name: value for field, value in message.ListFields()}


async def test_a_batch_answers_each_claim_as_adjudicate_would_and_refuses_only_the_bad_ones(own_kit):
    kit = own_kit
    first_member, second_member = await new_member(kit), await new_member(kit)
    a1, a2 = await routed_claim(kit, first_member, 900_000), await routed_claim(kit, first_member, 2_500_000)
    b1 = await routed_claim(kit, second_member)
    unknown = await routed_claim(kit, await new_member(kit))
    unknown.member_id = "NOBODY-IN-610924"
    unknown_request = adjudicate_request(unknown)
    mismatched = ia.AdjudicateRequest(request_id=str(uuid.uuid4()), claim=b1)  # not the claim's settlement id
    batch = ia.AdjudicateBatchRequest(batch_id=7, claims=[adjudicate_request(a1), mismatched, adjudicate_request(a2),
                                                          unknown_request, adjudicate_request(b1)])
    answer = (await send(kit, batch))[7]
    kinds = [outcome.WhichOneof("outcome") for outcome in answer.outcomes]
    assert kinds == ["answer", "refusal", "answer", "refusal", "answer"]
    assert error_of(answer.outcomes[1].refusal).code() is grpc.StatusCode.INVALID_ARGUMENT
    kit.assert_refused(error_of(answer.outcomes[1].refusal), grpc.StatusCode.INVALID_ARGUMENT, "request_id")
    assert error_of(answer.outcomes[3].refusal).code() is grpc.StatusCode.NOT_FOUND
    # One member's two stays one after the other, in batch order: the second starts where the first ended.
    first, second = answer.outcomes[0].answer.adjudication, answer.outcomes[2].answer.adjudication
    assert ytd(first.ytd_before) == {} and ytd(second.ytd_before) == ytd(first.ytd_after)
    assert ytd((await kit.accumulators(first_member))) == ytd(second.ytd_after)
    assert ytd((await kit.accumulators(second_member))) == ytd(answer.outcomes[4].answer.adjudication.ytd_after)
    assert await recorded(kit, [a1.settlement_id, a2.settlement_id, b1.settlement_id]) == 3
    assert await recorded(kit, [unknown.settlement_id, mismatched.request_id]) == 0


async def test_a_batch_equals_the_same_claims_adjudicated_one_by_one(own_kit):
    kit = own_kit
    batched_member, alone_member = await new_member(kit), await new_member(kit)
    amounts = (700_000, 4_000_000, 300_000)
    batched = [await routed_claim(kit, batched_member, amount) for amount in amounts]
    alone = [await routed_claim(kit, alone_member, amount) for amount in amounts]
    answer = (await send(kit, ia.AdjudicateBatchRequest(batch_id=1, claims=[adjudicate_request(c) for c in batched])))[1]
    one_by_one = [await insured_stub(kit).Adjudicate(adjudicate_request(claim), timeout=30) for claim in alone]
    assert all(outcome.answer.adjudication.split.fund_pay_fen > 0 for outcome in answer.outcomes[1:])
    for outcome, single in zip(answer.outcomes, one_by_one, strict=True):
        assert outcome.answer.adjudication.split == single.adjudication.split
        assert ytd(outcome.answer.adjudication.ytd_after) == ytd(single.adjudication.ytd_after)


async def test_a_resent_batch_replays_every_answer_and_other_content_is_refused_alone(own_kit):
    kit = own_kit
    member = await new_member(kit)
    claims = [await routed_claim(kit, member, amount) for amount in (800_000, 1_600_000)]
    batch = ia.AdjudicateBatchRequest(batch_id=1, claims=[adjudicate_request(claim) for claim in claims])
    first = (await send(kit, batch))[1]
    before = await kit.accumulators(member)
    again = ia.AdjudicateBatchRequest(batch_id=2, claims=batch.claims)
    changed = adjudicate_request(claims[1])
    changed.claim.stay.emergency = not changed.claim.stay.emergency
    answers = await send(kit, again, ia.AdjudicateBatchRequest(batch_id=3, claims=[adjudicate_request(claims[0]),
                                                                                  changed]))
    assert [wire(o) for o in answers[2].outcomes] == [wire(o) for o in first.outcomes]
    assert wire(answers[3].outcomes[0]) == wire(first.outcomes[0])
    kit.assert_refused(error_of(answers[3].outcomes[1].refusal), grpc.StatusCode.ALREADY_EXISTS, "claim.stay.emergency")
    assert ytd(await kit.accumulators(member)) == ytd(before), "nothing counted twice"


async def test_each_claim_of_a_batch_is_authorised_as_its_own_adjudicate(own_kit):
    kit = own_kit
    member = await new_member(kit)
    cross = await routed_claim(kit, member)
    same_region = types_pb2.Claim()
    same_region.CopyFrom(await routed_claim(kit, member))
    same_region.treating_region = INSURED  # the clearing house clears only other regions' claims
    answer = (await send(kit, ia.AdjudicateBatchRequest(batch_id=1, claims=[
        adjudicate_request(same_region), adjudicate_request(cross)])))[1]
    refused = error_of(answer.outcomes[0].refusal)
    assert refused.code() is grpc.StatusCode.PERMISSION_DENIED
    assert answer.outcomes[1].WhichOneof("outcome") == "answer"
    assert await recorded(kit, [same_region.settlement_id]) == 0


async def test_only_the_clearing_house_may_open_a_batch_stream(own_kit):
    kit = own_kit
    stub = kit.stack.stub_as(kit.stack.agency_of(TREATING), ia_grpc.InsuredAgencyServiceStub, kit.stack.address(INSURED))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in stub.AdjudicateBatch(iter([ia.AdjudicateBatchRequest(batch_id=1)]), timeout=30):
            pass
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_a_batch_whose_transaction_fails_is_adjudicated_claim_by_claim(own_kit):
    """One claim the database refuses (a trigger planted for its member) fails the batch's single transaction; the
    batch is then adjudicated claim by claim, and only that claim is refused."""
    kit = own_kit
    good, poisoned = await new_member(kit), await new_member(kit)
    claims = [await routed_claim(kit, good), await routed_claim(kit, poisoned), await routed_claim(kit, good, 500_000)]
    insured = await kit.db(f"insured_{INSURED}")
    await insured.execute(f"""
        CREATE FUNCTION refuse_poisoned() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.member_id = '{poisoned.member_id}' THEN RAISE EXCEPTION 'poisoned claim'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_poisoned BEFORE INSERT ON settlements FOR EACH ROW EXECUTE FUNCTION refuse_poisoned();""")
    try:
        answer = (await send(kit, ia.AdjudicateBatchRequest(batch_id=1, claims=[adjudicate_request(c) for c in claims])))[1]
    finally:
        await insured.execute("DROP TRIGGER refuse_poisoned ON settlements; DROP FUNCTION refuse_poisoned()")
    kinds = [outcome.WhichOneof("outcome") for outcome in answer.outcomes]
    assert kinds == ["answer", "refusal", "answer"]
    assert error_of(answer.outcomes[1].refusal).code() is grpc.StatusCode.INTERNAL
    assert await recorded(kit, [claims[0].settlement_id, claims[2].settlement_id]) == 2
    assert await recorded(kit, [claims[1].settlement_id]) == 0


async def test_the_batcher_sends_full_batches_at_once_and_a_broken_stream_fails_only_what_it_carried(own_kit):
    kit = own_kit
    members = [await new_member(kit) for _ in range(4)]
    claims = [await routed_claim(kit, member) for member in members]
    sent = []
    stub = insured_stub(kit)

    def open_stream():  # noqa: ANN202
        call = stub.AdjudicateBatch()
        write = call.write

        async def counted(batch: ia.AdjudicateBatchRequest) -> None:
            sent.append(len(batch.claims))
            await write(batch)
        call.write = counted
        return call

    batcher = StreamBatcher(open_stream, ia.AdjudicateBatchRequest, BatchSettings(size_max=2, wait_ms=1000), "test")
    try:
        # Two full batches of two, sent without waiting for the second; every claim answered as Adjudicate would.
        answers = await asyncio.wait_for(asyncio.gather(*(batcher.call(adjudicate_request(c), 30) for c in claims)), 10)
        assert sent == [2, 2]
        assert all(answer.adjudication.split.total_fen == 1_200_000 for answer in answers)
        # The stream breaks: the next claim (here a retry) opens a new stream, and gets the recorded answer again.
        batcher.stream.cancel()
        await asyncio.sleep(0.1)
        again = await batcher.call(adjudicate_request(claims[0]), 30)
        assert again == answers[0]
    finally:
        await batcher.close()


async def test_a_treating_agencys_batch_settles_each_claim_as_settle_claim_would(own_kit):
    """SettleClaimBatch at the clearing house: each claim through SettleClaim's own steps (its adjudication goes on
    in the insured agency's batch); a claim the caller did not treat is refused alone; a resent batch replays."""
    kit = own_kit
    members = [await new_member(kit) for _ in range(2)]
    claims = [await routed_claim(kit, member) for member in members]
    requests = [ch.SettleClaimRequest(request_id=claim.settlement_id, claim=claim) for claim in claims]
    stub = kit.stack.stub_as(kit.stack.agency_of(TREATING), ch_grpc.ClearingHouseServiceStub, kit.stack.clearing_address)
    foreign = ch.SettleClaimRequest()
    foreign.CopyFrom(requests[1])
    foreign.claim.treating_region = "230400"  # not the caller's: the caller is 440100's agency
    batch = ch.SettleClaimBatchRequest(batch_id=5, claims=[requests[0], foreign, requests[1]])
    answers = [answer async for answer in stub.SettleClaimBatch(iter([batch]), timeout=30)]
    assert [answer.batch_id for answer in answers] == [5]
    outcomes = answers[0].outcomes
    assert [outcome.WhichOneof("outcome") for outcome in outcomes] == ["answer", "refusal", "answer"]
    assert error_of(outcomes[1].refusal).code() is grpc.StatusCode.PERMISSION_DENIED
    for outcome, claim in zip((outcomes[0], outcomes[2]), claims, strict=True):
        settlement = outcome.answer.settlement
        assert settlement.settlement_id == claim.settlement_id
        assert settlement.status == types_pb2.SETTLEMENT_STATUS_SETTLED
        assert (await kit.ledger(claim.settlement_id))["settlement"], "the obligation is posted"
    again = [answer async for answer in stub.SettleClaimBatch(iter([ch.SettleClaimBatchRequest(
        batch_id=6, claims=[requests[0]])]), timeout=30)]
    assert wire(again[0].outcomes[0]) == wire(outcomes[0])


async def test_copies_of_one_claim_in_a_batch_and_on_two_streams_at_once_are_recorded_once(own_kit):
    """A claim sent again while its first copy is still in flight (the clearing house retrying): twice in one batch,
    and on two streams at the same moment, every copy gets the same answer and the claim counts once."""
    kit = own_kit
    member = await new_member(kit)
    claim = adjudicate_request(await routed_claim(kit, member))
    twice = ia.AdjudicateBatchRequest(batch_id=1, claims=[claim, claim])
    first, second = await asyncio.gather(send(kit, twice), send(kit, ia.AdjudicateBatchRequest(batch_id=1,
                                                                                             claims=[claim])))
    answers = [*first[1].outcomes, *second[1].outcomes]
    assert all(outcome.WhichOneof("outcome") == "answer" for outcome in answers)
    assert len({wire(outcome) for outcome in answers}) == 1, "every copy got the same answer"
    assert await recorded(kit, [claim.request_id]) == 1
    assert ytd(await kit.accumulators(member)) == ytd(answers[0].answer.adjudication.ytd_after), "counted once"
