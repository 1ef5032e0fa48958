"""A batch of the clearing house's claims adjudicated in one transaction (批量结算, AdjudicateBatch).

Each claim gets exactly the outcome Adjudicate would give it: it is authorised and validated on its own (a
refusal answers that claim only), idempotent on its settlement id (a recorded one replays its stored answer, other
content under the same id is ALREADY_EXISTS, a reversed id is refused), and adjudicated with its member's
accumulators locked. What a batch saves is round trips: every member, reversal, accumulator row and earlier
answer of the batch is read with one statement each, the accumulator rows are locked together (in sorted order,
so batches sharing members queue instead of deadlocking) and every adjudication is written with one statement.

Claims of one member are adjudicated in batch order, each on the accumulators the one before left, exactly as
they would be one after the other. A batch whose transaction fails as a whole (a deadlock, a lost connection, a
constraint the database refuses) is adjudicated again claim by claim, each in its own transaction, so one bad
claim never refuses its neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from clearinghouse.v1 import insured_agency_pb2 as pb

from clearing.adjudicate import adjudicate
from clearing.errors import DomainError, NotFound
from clearing.lifecycle import check_not_reversed
from clearing.member import Member, Ytd
from services.common import convert
from clearing.smart_audit.model import OtherStay
from services.common.batching import check_batch_size, refusal_for
from services.common.errors import StoredRefusal
from services.common.locks import lock_settlement_keys
from services.common.metrics import SETTLEMENTS
from services.common.requests import same_request_or_conflict
from services.insured import store
from services.security.caller import authorise, current_caller

if TYPE_CHECKING:
    from services.insured.servicer import InsuredAgencyServicer, ParsedClaim


def other_stay(row) -> OtherStay:  # noqa: ANN001 - a live_stays row
    return OtherStay(str(row["settlement_id"]), row["admitted_on"], row["discharged_on"], tuple(row["diagnoses"]))

log = structlog.get_logger()
ADJUDICATE = "InsuredAgencyService.Adjudicate"  # each claim of a batch is authorised as this unary call would be


@dataclass
class Accepted:
    """A claim of the batch that passed authorisation and validation: its place in the batch and what it says."""

    position: int
    request: pb.AdjudicateRequest
    claim: ParsedClaim

    @property
    def settlement_id(self) -> str:
        return self.claim.settlement_id

    @property
    def year_key(self) -> tuple[str, int]:
        return self.claim.member_id, self.claim.stay.discharged_on.year


async def adjudicate_batch(servicer: InsuredAgencyServicer, requests: list[pb.AdjudicateRequest],
                           ) -> list[pb.AdjudicateOutcome]:
    """One outcome per request, in order. A batch over the size the protos allow is the sender's fault, not a
    claim's: it ends the stream (INVALID_ARGUMENT naming `claims`)."""
    check_batch_size(len(requests))
    outcomes: list[pb.AdjudicateOutcome | None] = [None] * len(requests)
    accepted = []
    for position, request in enumerate(requests):
        try:
            authorise(servicer.security, current_caller(), ADJUDICATE, request)
            accepted.append(Accepted(position, request, servicer.parse_adjudicate_request(request)))
        except DomainError as error:
            outcomes[position] = refused(error)
    # Outpatient special-disease visits (med_type 14) each in a transaction of their own, after the stays: they
    # lock the same member row, so a visit and a stay of one member in one batch still queue.
    visits = [item for item in accepted if item.claim.disease is not None]
    accepted = [item for item in accepted if item.claim.disease is None]
    try:
        answers = await adjudicate_together(servicer, accepted)
    except Exception as error:  # noqa: BLE001 - the batch failed as a whole: each claim on its own
        log.warning("batch_fallback", claims=len(accepted), error=str(error) or type(error).__name__)
        answers = {item.position: await adjudicate_alone(servicer, item) for item in accepted}
    for item in visits:
        answers[item.position] = await adjudicate_alone(servicer, item)
    for position, outcome in answers.items():
        outcomes[position] = outcome
    assert all(outcome is not None for outcome in outcomes), "every claim of the batch has its outcome"
    return outcomes  # type: ignore[return-value]


async def adjudicate_alone(servicer: InsuredAgencyServicer, item: Accepted) -> pb.AdjudicateOutcome:
    """The claim in a transaction of its own, as Adjudicate would do it."""
    try:
        return pb.AdjudicateOutcome(answer=await servicer.adjudicate_one(item.request, item.claim))
    except Exception as error:  # noqa: BLE001 - every claim gets an answer; an unexpected error is INTERNAL
        return refused(error)


def refused(error: BaseException) -> pb.AdjudicateOutcome:
    """A claim's refusal inside a batch: the status Adjudicate would have answered with (INTERNAL for a fault)."""
    return pb.AdjudicateOutcome(refusal=refusal_for(error))


async def adjudicate_together(servicer: InsuredAgencyServicer, accepted: list[Accepted],
                              ) -> dict[int, pb.AdjudicateOutcome]:
    """Every accepted claim in one transaction: position → outcome. Raises (nothing committed) when the
    transaction fails as a whole."""
    answers: dict[int, pb.AdjudicateOutcome] = {}
    if not accepted:
        return answers
    recorded: list[store.NewSettlement] = []
    async with servicer.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
        members = await store.load_members(conn, servicer.region, [
            (item.claim.member_id, item.claim.treating_region, item.claim.stay.admitted_on) for item in accepted])
        known = []
        for index, item in enumerate(accepted):  # NOT_FOUND before any lock or write, as Adjudicate
            if index in members:
                known.append((item, members[index]))
            else:
                answers[item.position] = refused(NotFound(f"regions/{servicer.region}/members/{item.claim.member_id}"))
        ids = [item.settlement_id for item, _ in known]
        await lock_settlement_keys(conn, ids)  # a reversal of any of them waits, or is seen below
        reversed_ids = await store.reversed_among(conn, ids)
        await store.lock_members(conn, [item.claim.member_id for item, _ in known])  # as Adjudicate, sorted
        ytds = await store.lock_accumulators_of(conn, [item.year_key for item, _ in known])
        earlier = await store.settlements_among(conn, ids)
        # Every known member's live stays that can matter to any of its claims here (smart audit, 事中).
        stays: dict[str, list[OtherStay]] = {}
        if known:
            since = min(servicer.history_since(item.claim) for item, _ in known)
            for row in await store.live_stays(conn, [item.claim.member_id for item, _ in known], since):
                stays.setdefault(row["member_id"], []).append(other_stay(row))
        moved: dict[tuple[str, int], Ytd] = {}
        for item, member in known:
            outcome, new = adjudicate_claim(servicer, item, member, ytds, reversed_ids, earlier,
                                            stays.get(item.claim.member_id, []))
            answers[item.position] = outcome
            if new is not None:
                recorded.append(new)
                ytds[item.year_key] = moved[item.year_key] = new.result.ytd_after
                earlier[item.settlement_id] = {"request": new.request, "response": new.response}  # a copy later in the batch
                # A later claim of the same member in this batch sees this stay, as it would one call later.
                claim = item.claim
                stays.setdefault(claim.member_id, []).append(OtherStay(
                    claim.settlement_id, claim.stay.admitted_on, claim.stay.discharged_on, claim.diagnoses))
        if recorded:
            await store.record_settlements(conn, recorded)
            await store.write_accumulators_of(conn, moved)
    for new in recorded:
        SETTLEMENTS.labels("insured", servicer.region, "adjudication", new.treating_region, servicer.region).inc()
        log.info("adjudication_recorded", settlement_id=new.settlement_id, fund_pay_fen=new.result.fund_pay_fen,
                 psn_pay_fen=new.result.psn_pay_fen, batched=True)
    return answers


def adjudicate_claim(servicer: InsuredAgencyServicer, item: Accepted, member: Member, ytds: dict[tuple[str, int], Ytd],
                     reversed_ids: set[str], earlier: dict, stays: list[OtherStay],
                     ) -> tuple[pb.AdjudicateOutcome, store.NewSettlement | None]:
    """One claim of the batch with everything loaded: its outcome, and what to record (None: nothing new)."""
    claim = item.claim
    try:
        check_not_reversed(claim.settlement_id in reversed_ids)
        found = earlier.get(claim.settlement_id)
        if found is not None:
            same_request_or_conflict(bytes(found["request"]), item.request)
            return pb.AdjudicateOutcome(answer=pb.AdjudicateResponse.FromString(bytes(found["response"]))), None
        recorded, stay = servicer.audited(claim, servicer.cross_stay_audit(claim, stays))
        policy = servicer.policies.on(claim.stay.discharged_on)
        result = adjudicate(claim.lines, claim.stay, member, policy, ytds[item.year_key])
    except (DomainError, StoredRefusal) as error:
        return refused(error), None
    response = pb.AdjudicateResponse(adjudication=convert.adjudication_to_proto(result, policy.effective_from))
    response.adjudication.smart_audit.CopyFrom(recorded)
    new = store.NewSettlement(claim.settlement_id, claim.member_id, claim.stay.discharged_on, claim.settlement_day,
                              claim.treating_region, result, item.request.SerializeToString(),
                              response.SerializeToString(), stay)
    return pb.AdjudicateOutcome(answer=response), new
