"""A cancel (撤销 2305) that meets a reversal (冲正 2601) of the same settlement, and a cancel that reconciliation
completed (issue 9 items 8 and 9).

The race is made for real, not by luck: the cancel's call to the next party goes through a proxy that holds
the *answer* back, so the next party has cancelled while the caller has not recorded it yet, and the reversal
runs in that gap. Whatever wins, no party may assert (INTERNAL): the loser is refused with FAILED_PRECONDITION,
the accumulators are restored once and the ledger mirrored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import grpc
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import types_pb2
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import treating_agency_pb2 as ta

from services.stack.wiring import start_clearing_house, start_region

TREATING, INSURED = "440100", "610924"
H_GUANGZHOU = "H44010000001"
ADMITTED_ON, DISCHARGED_ON = "2026-03-02", "2026-03-06"
ANSWER_HELD_S = 1.5


class SlowAnswers:
    """A loopback TCP proxy that forwards requests at once and, once `holding`, holds every answer back
    `ANSWER_HELD_S` (the connection is opened and warmed up before, so the request itself is not held up by
    HTTP/2's handshake)."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task] = set()
        self.holding = False

    async def start(self) -> str:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, hold_s: float) -> None:
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                while chunk := await source.read(65536):
                    if hold_s and self.holding:
                        await asyncio.sleep(hold_s)
                    sink.write(chunk)
                    await sink.drain()
            sink.close()

        tasks = {asyncio.create_task(pipe(reader, up_writer, 0)),
                 asyncio.create_task(pipe(up_reader, writer, ANSWER_HELD_S))}
        self.tasks |= tasks
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.server is not None:
            self.server.close()


async def settled_stay(kit) -> tuple[object, ta.SettleRequest, types_pb2.Settlement]:  # noqa: ANN001
    member = await kit.new_member(INSURED, filing="resident")
    line = kit.bill_line("1", kit.plain_codes(TREATING)[0], "4", 150000, ADMITTED_ON)
    encounter_id = await kit.open_encounter(H_GUANGZHOU, member, [line], ADMITTED_ON)
    settle = ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on=DISCHARGED_ON)
    settlement = (await kit.treating(TREATING).Settle(settle)).settlement
    assert settlement.adjudication.split.fund_pay_fen > 0
    return member, settle, settlement


async def statuses(kit, settlement_id: str) -> tuple:  # noqa: ANN001
    sid = uuid.UUID(settlement_id)
    return (await (await kit.db(f"treating_{TREATING}")).fetchval("SELECT status FROM settlements WHERE settlement_id = $1", sid),
            await (await kit.db("clearinghouse")).fetchval("SELECT status FROM claims WHERE settlement_id = $1", sid),
            await (await kit.db(f"insured_{INSURED}")).fetchval("SELECT status FROM settlements WHERE settlement_id = $1", sid))


async def test_a_cancel_after_the_insured_agency_reversed_is_refused_there(kit):
    member, _, settlement = await settled_stay(kit)
    before = await kit.accumulators(member)
    await kit.insured(INSURED).ReverseAdjudication(ia.ReverseAdjudicationRequest(
        request_id=kit.rid(), settlement_id=settlement.settlement_id))
    restored = await kit.accumulators(member)
    counts = await kit.counts(f"insured_{INSURED}")
    error = await kit.refusal(kit.insured(INSURED).CancelAdjudication(ia.CancelAdjudicationRequest(
        request_id=kit.rid(), settlement_id=settlement.settlement_id)))
    kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="settlement_id")
    assert "reversed" in error.details()
    assert await kit.counts(f"insured_{INSURED}") == counts
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(restored) != kit.ytd_dict(before), \
        "restored once, by the reversal"


@contextlib.asynccontextmanager
async def cancel_held_downstream(kit, settlement_id: str):  # noqa: ANN001, ANN201
    """A clearing house of the test's own whose answers from the insured agency are held back `ANSWER_HELD_S`,
    with a CancelClaim of the settlement sent through it and waiting for that answer: yields (the cancel's future,
    the clearing house's address, the clearing house's running server — stop it to crash it mid-cancel)."""
    proxy = SlowAnswers(kit.stack.address(INSURED))
    clearing = await start_clearing_house(kit.stack.config.dsn("clearinghouse"), {INSURED: await proxy.start()},
                                          transport=kit.stack.transport)
    address = f"127.0.0.1:{clearing.port}"
    try:
        slow = kit.stack.clearing(address)
        # Warm the clearing house's connection to the insured agency up (3201 of an empty day), then hold.
        await slow.ReconcileInsuredAgencies(ch.ReconcileInsuredAgenciesRequest(day="2000-01-15"), timeout=30)
        proxy.holding = True
        cancel = asyncio.ensure_future(slow.CancelClaim(ch.CancelClaimRequest(
            request_id=kit.rid(), settlement_id=settlement_id, reason="race"), timeout=30))
        await asyncio.sleep(ANSWER_HELD_S / 3)
        yield cancel, address, clearing
    finally:
        await clearing.stop()
        await proxy.close()


async def test_a_reversal_in_the_gap_of_a_clearing_house_cancel_wins_and_nothing_asserts(kit):
    """The insured agency cancels, its answer is held back; the reversal runs at the clearing house meanwhile
    (the insured agency answers ALREADY_UNDONE, the claim is mirrored and reversed); the cancel's answer then
    reaches a claim that is no longer settled."""
    member, _, settlement = await settled_stay(kit)
    ytd_before_stay = kit.ytd_dict(settlement.adjudication.ytd_before)
    async with cancel_held_downstream(kit, settlement.settlement_id) as (cancel, _, _):
        reversal = await kit.clearing().ReverseClaim(ch.ReverseClaimRequest(
            request_id=kit.rid(), settlement_id=settlement.settlement_id, treating_region=TREATING,
            insured_region=INSURED))
        error = await kit.refusal(cancel)
    assert reversal.outcome == types_pb2.REVERSAL_OUTCOME_REVERSED
    kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="settlement_id")
    assert (await statuses(kit, settlement.settlement_id))[1:] == ("reversed", "cancelled")
    ledger = await kit.ledger(settlement.settlement_id)
    assert set(ledger) == {"settlement", "reversal"}, "mirrored once"
    assert kit.ytd_dict(await kit.accumulators(member)) == ytd_before_stay, "restored once, by the cancel"


async def test_a_reversal_in_the_gap_of_a_treating_agency_cancel_wins_and_nothing_asserts(kit):
    member, settle, settlement = await settled_stay(kit)
    ytd_before_stay = kit.ytd_dict(settlement.adjudication.ytd_before)
    proxy = SlowAnswers(f"127.0.0.1:{kit.stack.clearing_house.port}")
    region = await start_region(TREATING, kit.stack.config.dsn(f"treating_{TREATING}"),
                                kit.stack.config.dsn(f"insured_{TREATING}"), await proxy.start(),
                                transport=kit.stack.transport)
    address = f"127.0.0.1:{region.port}"
    try:
        slow = kit.stack.treating(TREATING, address)
        # Warm the treating agency's connection to the clearing house up (3201 of an empty day), then hold.
        await slow.Reconcile(ta.ReconcileRequest(day="2000-01-15"), timeout=30)
        proxy.holding = True
        cancel = asyncio.ensure_future(slow.Cancel(ta.CancelRequest(
            request_id=kit.rid(), settlement_id=settlement.settlement_id, reason="race"), timeout=30))
        await asyncio.sleep(ANSWER_HELD_S / 3)
        reversal = await kit.treating(TREATING).Reverse(ta.ReverseRequest(
            request_id=kit.rid(), original_request_id=settle.request_id, reason="race"))
        error = await kit.refusal(cancel)
    finally:
        await region.stop()
        await proxy.close()
    assert reversal.outcome == types_pb2.REVERSAL_OUTCOME_REVERSED
    kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="settlement_id")
    assert (await statuses(kit, settlement.settlement_id))[0] == "reversed"
    treating_ledger = await kit.ledger(settlement.settlement_id, party=f"treating_{TREATING}")
    assert set(treating_ledger) == {"settlement", "reversal"}, "the hospital's receivable mirrored once"
    assert kit.ytd_dict(await kit.accumulators(member)) == ytd_before_stay


async def test_a_cancel_that_reconciliation_completed_is_replayed_by_the_clearing_house(kit):
    """The insured agency cancelled under cancel id C and the clearing house never recorded it (a crash);
    reconciliation completed the cancel at the clearing house under C. The treating agency's retry of C must get
    the cancel, as the treating agency itself would replay it."""
    _, _, settlement = await settled_stay(kit)
    cancel_id = kit.rid()
    await kit.insured(INSURED).CancelAdjudication(ia.CancelAdjudicationRequest(
        request_id=cancel_id, settlement_id=settlement.settlement_id))
    reports = await kit.clearing().ReconcileInsuredAgencies(ch.ReconcileInsuredAgenciesRequest(
        day=settlement.claim.settlement_day))  # reconciliation is by the day the settlement was made
    repairs = [item for report in reports.reports for item in report.repairs if item.key == settlement.settlement_id]
    assert [(item.action, item.repaired) for item in repairs] == [("finish_cancel", True)]
    answer = await kit.clearing().CancelClaim(ch.CancelClaimRequest(
        request_id=cancel_id, settlement_id=settlement.settlement_id))
    assert answer.settlement.status == types_pb2.SETTLEMENT_STATUS_CANCELLED
    assert answer.settlement.settlement_id == settlement.settlement_id
    again = await kit.clearing().CancelClaim(ch.CancelClaimRequest(
        request_id=cancel_id, settlement_id=settlement.settlement_id))
    assert kit.same_bytes(answer, again)


async def test_a_dispute_raised_while_a_clearing_house_cancel_waits_downstream_is_refused_after_it(kit):
    """The insured agency raises a dispute while the clearing house's cancel of the same settlement waits for the
    insured agency's answer: the raise waits for the cancel (the settlement's undo lock) and then finds it cancelled,
    so the disputed amount is never given back on top of the whole fund pay."""
    from clearinghouse.v1 import clearing_house_pb2_grpc as ch_grpc

    from services.security.identity import AGENCY, Identity

    _, _, settlement = await settled_stay(kit)
    async with cancel_held_downstream(kit, settlement.settlement_id) as (cancel, address, _):
        insured = kit.stack.stub_as(Identity(AGENCY, INSURED), ch_grpc.ClearingHouseServiceStub, address)
        raised = asyncio.ensure_future(insured.RaiseDispute(ch.RaiseDisputeRequest(
            request_id=kit.rid(), settlement_id=settlement.settlement_id, amount_fen=100, rule_id="AUD-DAYQTY",
            insured_region=INSURED), timeout=30))
        cancelled = await cancel
        error = await kit.refusal(raised)
    assert cancelled.settlement.status == types_pb2.SETTLEMENT_STATUS_CANCELLED
    assert error.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND), error
    ledger = await kit.ledger(settlement.settlement_id)
    assert set(ledger) == {"settlement", "cancel"}, "undone once, no dispute adjustment"


async def test_a_dispute_is_not_adjusted_while_a_cancel_the_clearing_house_crashed_in_is_unfinished(kit):
    """The insured agency cancels, and the clearing house stops before it records the cancel (its answer was held
    back). The settlement is still settled here, so a dispute can be raised; but accepting it posts nothing while
    the cancel's intent stands — reconciliation then completes the cancel, and the settlement's whole fund pay is
    given back once: no dispute amount on top (without the intent, the accept would have posted it)."""
    from clearinghouse.v1 import clearing_house_pb2_grpc as ch_grpc

    from services.security.identity import AGENCY, Identity

    _, _, settlement = await settled_stay(kit)
    day = await (await kit.db("clearinghouse")).fetchval(
        "SELECT settlement_day::text FROM claims WHERE settlement_id = $1", uuid.UUID(settlement.settlement_id))
    async with cancel_held_downstream(kit, settlement.settlement_id) as (cancel, _, crashing):
        for _ in range(100):  # bounded: the insured agency cancels within the hold
            row = await (await kit.db(f"insured_{INSURED}")).fetchrow(
                "SELECT status FROM settlements WHERE settlement_id = $1", uuid.UUID(settlement.settlement_id))
            if row["status"] == "cancelled":
                break
            await asyncio.sleep(0.05)
        await crashing.stop(0)  # before the held answer arrives: nothing recorded here
        await kit.refusal(cancel)
    assert (await statuses(kit, settlement.settlement_id))[1:] == ("settled", "cancelled")
    insured = kit.stack.stub_as(Identity(AGENCY, INSURED), ch_grpc.ClearingHouseServiceStub,
                                kit.stack.clearing_address)
    raised = (await insured.RaiseDispute(ch.RaiseDisputeRequest(
        request_id=kit.rid(), settlement_id=settlement.settlement_id, amount_fen=100, rule_id="AUD-DAYQTY",
        insured_region=INSURED))).dispute
    treating = kit.stack.stub_as(Identity(AGENCY, TREATING), ch_grpc.ClearingHouseServiceStub,
                                 kit.stack.clearing_address)
    error = await kit.refusal(treating.AnswerDispute(ch.AnswerDisputeRequest(
        request_id=kit.rid(), dispute_id=raised.dispute_id, answer=ch.DISPUTE_ANSWER_ACCEPT)))
    kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="dispute")
    assert "cancel" in error.details()
    assert set(await kit.ledger(settlement.settlement_id)) == {"settlement"}, "no adjustment while the cancel stands"

    await kit.clearing().ReconcileInsuredAgencies(ch.ReconcileInsuredAgenciesRequest(day=day, pending_grace_s=0))
    assert (await statuses(kit, settlement.settlement_id))[1:] == ("cancelled", "cancelled")
    error = await kit.refusal(treating.AnswerDispute(ch.AnswerDisputeRequest(
        request_id=kit.rid(), dispute_id=raised.dispute_id, answer=ch.DISPUTE_ANSWER_ACCEPT)))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION and "cancelled" in error.details(), error
    assert set(await kit.ledger(settlement.settlement_id)) == {"settlement", "cancel"}, "given back once"
