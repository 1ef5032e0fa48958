"""Smart audit (智能审核) 事中 at the insured agency (SPEC §12.2, issue 12 item 4): AUD-OVERLAP and AUD-READMIT at
Adjudicate against every live stay of the member, local and cross-region, also under concurrency and inside a
batch. This module's stack runs the shipped rule libraries (AUD-OVERLAP blocks; READMIT warns)."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import insured_agency_pb2_grpc as ia_grpc
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

from conftest import hospital, plain_codes, rid, status_of
from services.common.batching import error_of
from services.common.smart_audit import audit_from_status
from services.security.identity import clearinghouse

OWN_STACK_AUDIT_RULES = "shipped"
INSURED = "610924"  # its rule library is empty: every rule with the SPEC's defaults (AUD-OVERLAP block)


@pytest.fixture
def kit(own_kit):  # noqa: ANN001, ANN201
    return own_kit


async def open_stay(kit, member, treating: str, admitted_on: str, amount_fen: int = 50_000,  # noqa: ANN001
                    diagnoses: tuple[str, ...] = ("J18.9",)) -> str:
    lines = [kit.bill_line("1", plain_codes(treating)[0], "1", amount_fen, admitted_on)]
    return await kit.open_encounter(hospital(treating, 3), member, lines, admitted_on, diagnoses=diagnoses)


async def settle(kit, treating: str, encounter_id: str, discharged_on: str, request_id: str | None = None):  # noqa: ANN001, ANN201
    """The settlement, or the refusal (an AioRpcError)."""
    try:
        answer = await kit.treating(treating).Settle(ta.SettleRequest(
            request_id=request_id or rid(), encounter_id=encounter_id, discharged_on=discharged_on))
    except grpc.aio.AioRpcError as error:
        return error
    return answer.settlement


def overlap_refusal(error: grpc.aio.AioRpcError, other_settlement_id: str) -> types_pb2.SmartAudit:
    assert isinstance(error, grpc.aio.AioRpcError), error
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION, error
    audit = audit_from_status(status_of(error))
    assert audit is not None, "the findings travel back in the error details"
    assert [item.rule_id for item in audit.findings] == ["AUD-OVERLAP"]
    assert audit.findings[0].action == "block" and other_settlement_id in audit.findings[0].evidence
    return audit


@pytest.mark.parametrize(("first", "second", "insured"), [
    ("430100", "440100", INSURED),   # two cross-region stays in two regions
    ("440100", "430100", "440100"),  # a local stay and a cross-region one
])
async def test_two_overlapping_stays_settled_at_once_in_two_regions_one_is_blocked(kit, first, second, insured):
    for _ in range(3):
        member = await kit.new_member(insured)
        one = await open_stay(kit, member, first, "2026-03-01")
        two = await open_stay(kit, member, second, "2026-03-03")
        results = await asyncio.gather(settle(kit, first, one, "2026-03-06"), settle(kit, second, two, "2026-03-08"))
        settled = [item for item in results if isinstance(item, types_pb2.Settlement)]
        refused = [item for item in results if not isinstance(item, types_pb2.Settlement)]
        assert len(settled) == 1 and len(refused) == 1, results
        overlap_refusal(refused[0], settled[0].settlement_id)
        assert not settled[0].adjudication.smart_audit.findings  # the first one saw nothing to say
        rows = await (await kit.db(f"insured_{insured}")).fetch(
            "SELECT settlement_id FROM settlements WHERE member_id = $1", member.member_id)
        assert [str(row["settlement_id"]) for row in rows] == [settled[0].settlement_id], "the blocked one: nothing"


async def test_a_blocked_stay_settles_once_the_other_is_cancelled_and_a_transfer_is_no_overlap(kit):
    member = await kit.new_member(INSURED)
    one = await open_stay(kit, member, "430100", "2026-04-01")
    first = await settle(kit, "430100", one, "2026-04-06")
    assert isinstance(first, types_pb2.Settlement), first
    two = await open_stay(kit, member, "440100", "2026-04-05")
    quoted = await kit.treating("440100").PreSettle(ta.PreSettleRequest(encounter_id=two, discharged_on="2026-04-09"))
    advice = quoted.settlement.adjudication.smart_audit.findings  # 事前: what Adjudicate will say
    assert [(item.rule_id, item.action) for item in advice] == [("AUD-OVERLAP", "block")]
    request_id = rid()
    blocked = await settle(kit, "440100", two, "2026-04-09", request_id)
    overlap_refusal(blocked, first.settlement_id)
    again = await settle(kit, "440100", two, "2026-04-09", request_id)  # a retry: the same answer
    assert kit.status_of(again) == kit.status_of(blocked)
    await kit.treating("430100").Cancel(ta.CancelRequest(request_id=rid(), settlement_id=first.settlement_id,
                                                         reason="wrong stay"))
    settled = await settle(kit, "440100", two, "2026-04-09")  # the other stay is no longer live
    assert isinstance(settled, types_pb2.Settlement), settled
    # A transfer (转院): admitted on the day the other stay was discharged is no overlap, but a readmission
    # (same category J18) within 15 days: a warning that rides back with the adjudication and is stored.
    three = await open_stay(kit, member, "430100", "2026-04-09")
    transferred = await settle(kit, "430100", three, "2026-04-12")
    assert isinstance(transferred, types_pb2.Settlement), transferred
    findings = transferred.adjudication.smart_audit.findings
    assert [item.rule_id for item in findings] == ["AUD-READMIT"]
    assert findings[0].action == "warn" and settled.settlement_id in findings[0].evidence
    stored = await (await kit.db(f"insured_{INSURED}")).fetchrow(
        "SELECT admitted_on::text, diagnoses, smart_audit FROM settlements WHERE settlement_id = $1",
        uuid.UUID(transferred.settlement_id))
    assert stored["admitted_on"] == "2026-04-09" and list(stored["diagnoses"]) == ["J18.9"]
    assert types_pb2.SmartAudit.FromString(bytes(stored["smart_audit"])) == transferred.adjudication.smart_audit
    shown = await kit.treating("430100").GetSettlement(ta.GetSettlementRequest(
        settlement_id=transferred.settlement_id))
    assert shown.settlement.adjudication.smart_audit == transferred.adjudication.smart_audit


async def routed_claim(kit, member, admitted_on: str, discharged_on: str) -> types_pb2.Claim:  # noqa: ANN001
    encounter_id = await open_stay(kit, member, "440100", admitted_on)
    quoted = await kit.treating("440100").PreSettle(ta.PreSettleRequest(encounter_id=encounter_id,
                                                                        discharged_on=discharged_on))
    return quoted.settlement.claim


async def test_in_a_batch_a_second_claim_of_the_member_sees_the_first(kit):
    member = await kit.new_member(INSURED)
    first = await routed_claim(kit, member, "2026-05-01", "2026-05-06")
    second = await routed_claim(kit, member, "2026-05-04", "2026-05-08")
    stub = kit.stack.stub_as(clearinghouse(), ia_grpc.InsuredAgencyServiceStub, kit.stack.address(INSURED))
    batch = ia.AdjudicateBatchRequest(batch_id=1, claims=[
        ia.AdjudicateRequest(request_id=claim.settlement_id, claim=claim) for claim in (first, second)])
    answer = [item async for item in stub.AdjudicateBatch(iter([batch]), timeout=30)][0]
    assert [outcome.WhichOneof("outcome") for outcome in answer.outcomes] == ["answer", "refusal"]
    overlap_refusal(error_of(answer.outcomes[1].refusal), first.settlement_id)
