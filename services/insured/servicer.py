"""InsuredAgencyService: a servicer method reads as the business step and delegates to the core.

Personal data (SPEC §9): the agency keeps no ID number and no name. A member's row holds the keyed hash of
the ID number (`keys.id_hash`, HMAC-SHA256 under the region's secret key) and its masked form; the stored
first request of RegisterMember holds keyed hashes in their place (`redacted_registration`). VerifyMember
hashes a presented ID number and compares; the number is never stored or logged.

Adjudicate locks the member's accumulator row for the policy year first, then looks the
request up: two retries, or two discharges of one member in two regions, queue on that lock,
so the same remaining cap or deductible is never consumed twice (SPEC §8 concurrency).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import structlog
from clearinghouse.v1 import insured_agency_pb2 as pb
from clearinghouse.v1 import insured_agency_pb2_grpc as pb_grpc
from clearinghouse.v1 import types_pb2

from clearing.adjudicate import Adjudication, StayFacts, adjudicate
from clearing.classify import LineClass
from clearing.member import Member, Ytd
from clearing.outpatient.adjudicate import VisitAdjudication, VisitFacts, adjudicate_visit
from clearing.outpatient.member import Recognition, month_of
from clearing.bill import check_diagnosis, check_hospital_code, check_id_number, check_region, check_text
from clearing.dates import check_month, next_month, parse_day
from clearing.errors import InvalidField, NotFound, PreconditionFailed
from clearing.lifecycle import check_cancellable, check_not_reversed, reversal_outcome
from clearing.smart_audit.library import Action, RuleId, RuleLibrary
from clearing.smart_audit.model import AuditResult, OtherStay
from clearing.smart_audit.rules import cross_stay_findings
from clearing.policy import AssistanceTier, Disease, FilingStatus, Policy, PolicyBook, Scheme
from services.common import convert, reconciling
from services.common.batching import serve_batches
from services.common.errors import rpc, rpc_bidi, rpc_stream
from services.common.locks import lock_settlement_key
from services.common.logs import mask_id_number
from services.common.requests import check_request_id, remember, replay, same_request_or_conflict
from services.common.clock import shanghai_today
from services.common.metrics import SETTLEMENTS
from services.common.smart_audit import (
    audit_to_proto, blocked_refusal, load_audit_libraries, not_blocking, with_action,
)
from services.insured import batch_adjudication, keys, store
from services.security.caller import current_decision
from services.security.party import Security
from services.security.policy import require
from services.security.audit_log import AuditLog

log = structlog.get_logger()
HISTORY_STAYS_MAX = 1_000  # as the offline audit's history (clearing/smart_audit/report.py)
BATCHES_AT_ONCE = 4  # a batch stream's batches adjudicated at once: the pool's connections
VISIT_MED_TYPE = 14  # 门诊慢特病: a settlement row of an outpatient special-disease visit


@dataclass(frozen=True)
class ParsedClaim:
    settlement_id: str
    treating_region: str
    member_id: str
    stay: StayFacts
    lines: tuple[LineClass, ...]
    settlement_day: date
    diagnoses: tuple[str, ...]  # a visit's: its disease's national ICD prefixes (they classified its lines)
    disease: Disease | None = None  # an outpatient special-disease visit's (med_type 14); None for a stay

    def visit_facts(self) -> VisitFacts:
        assert self.disease is not None
        return VisitFacts(self.treating_region, self.stay.hospital_level, self.stay.discharged_on, self.disease)


class InsuredAgencyServicer(pb_grpc.InsuredAgencyServiceServicer):
    def __init__(self, region: str, pool: asyncpg.Pool, policies: PolicyBook, member_key: bytes, *,
                 security: Security, rules: RuleLibrary | None = None) -> None:
        assert policies.region == region
        assert len(member_key) >= keys.KEY_BYTES, "the region's member key (services/insured/keys.py)"
        self.region = region
        self.security = security  # this agency's identity and deny list: every call is authenticated with it
        self.pool = pool
        self.audit_log = AuditLog(pool, f"insured:{region}")  # operators' calls, recorded by the rpc decorators
        self.policies = policies
        self.member_key = member_key
        # Smart audit (智能审核) 事中: this region's rule library, for AUD-OVERLAP and AUD-READMIT (loaded once).
        self.rules = rules if rules is not None else load_audit_libraries(region).rules

    def history_since(self, claim: ParsedClaim) -> date:
        """The earliest discharge day of another stay that can matter: overlapping, or READMIT's window."""
        return claim.stay.admitted_on - timedelta(days=self.rules.settings(RuleId.READMIT).days)

    def cross_stay_audit(self, claim: ParsedClaim, stays: list[asyncpg.Record] | list[OtherStay]) -> AuditResult:
        """AUD-OVERLAP and AUD-READMIT of the claim's stay against the member's other live stays (every region:
        every stay of this agency's members is adjudicated here), this stay itself left out."""
        history = [stay if isinstance(stay, OtherStay) else other_stay(stay) for stay in stays]
        history = [stay for stay in history if stay.settlement_id != claim.settlement_id][:HISTORY_STAYS_MAX]
        findings = cross_stay_findings(claim.stay.admitted_on, claim.stay.discharged_on, claim.diagnoses, history,
                                       self.rules)
        return AuditResult(findings, "", self.rules.version)

    def audited(self, claim: ParsedClaim, audit: AuditResult) -> tuple[types_pb2.SmartAudit, store.StayRecord]:
        """A `block` finding refuses the claim (FAILED_PRECONDITION, the findings as a SmartAudit detail; nothing
        is recorded); otherwise the `warn` findings ride back with the adjudication and are stored with it."""
        if with_action(audit, Action.BLOCK):
            log.info("adjudication_blocked_by_audit", settlement_id=claim.settlement_id,
                     rules=sorted({item.rule_id.value for item in with_action(audit, Action.BLOCK)}))
            raise blocked_refusal(audit, "claim.stay")
        recorded = audit_to_proto(audit, not_blocking(audit))
        return recorded, store.StayRecord(claim.stay.admitted_on, claim.diagnoses, audit.rules_version,
                                          recorded.SerializeToString())

    def parse_claim(self, claim: types_pb2.Claim) -> ParsedClaim:
        settlement_id, treating_region, insured_region = convert.claim_header(claim)
        if insured_region != self.region:
            raise InvalidField("claim.insured_region", f"this agency insures region {self.region}, not {insured_region}")
        member_id = check_text(claim.member_id, "claim.member_id", 64)
        disease = convert.claim_disease(claim)
        stay, diagnoses = convert.stay_from_proto(claim.stay, treating_region, disease=disease)
        lines = convert.claim_lines(claim)
        return ParsedClaim(settlement_id, treating_region, member_id, stay, lines, convert.claim_settlement_day(claim),
                           diagnoses, disease)

    async def adjudication_for(self, conn: asyncpg.Connection, claim: ParsedClaim) -> tuple[Adjudication, Policy]:
        """Load what the core needs (prefetch), then adjudicate once; locks nothing (a quote)."""
        stay = claim.stay
        member = await self.load_member(conn, claim)
        ytd = await store.read_accumulators(conn, claim.member_id, stay.discharged_on.year, lock=False)
        policy = self.policies.on(stay.discharged_on)
        return adjudicate(claim.lines, stay, member, policy, ytd), policy

    async def load_member(self, conn: asyncpg.Connection, claim: ParsedClaim) -> Member:
        return await store.load_member(conn, self.region, claim.member_id, claim.treating_region,
                                       claim.stay.admitted_on)

    async def visit_adjudication(self, conn: asyncpg.Connection, claim: ParsedClaim, member: Member,
                                 ytd: Ytd) -> tuple[VisitAdjudication, Policy]:
        """A visit by the core (SPEC §13.2): the member's recognitions standing on the visit day and the disease's
        accumulators of the year. The caller holds the member's accumulators row lock when it records the result."""
        assert claim.disease is not None
        visit_on = claim.stay.discharged_on
        policy = self.policies.on(visit_on, "visit_on")
        recognitions = tuple(Recognition(Disease(row["disease"]), row["valid_from"], row["valid_to"])
                             for row in await store.recognitions_of(conn, claim.member_id, visit_on))
        special = await store.read_special(conn, claim.member_id, visit_on.year, claim.disease.value)
        month = month_of(visit_on)
        if special.month is not None and special.month > month:
            # A visit settled after a later month's visit of the disease (docs/outpatient-special.md, "late visits").
            raise PreconditionFailed("visit_on", f"a {claim.disease.value} visit of {special.month} is settled "
                                                 f"already: visits of a disease settle in month order, so one of "
                                                 f"{month} can no longer be settled online")
        result = adjudicate_visit(claim.lines, claim.visit_facts(), member, recognitions, policy, ytd,
                                  {claim.disease: special})
        return result, policy

    async def adjudicate_visit_one(self, request: pb.AdjudicateRequest, claim: ParsedClaim) -> pb.AdjudicateResponse:
        """A visit in a transaction of its own, under the member's accumulators row lock, the lock a stay takes:
        two visits (or a visit and a stay) of one member queue there and never take the same remaining limit."""
        request_id, visit_on = claim.settlement_id, claim.stay.discharged_on
        assert claim.disease is not None
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            member = await self.load_member(conn, claim)  # NOT_FOUND before any lock or write
            await lock_settlement_key(conn, request_id)
            check_not_reversed(await store.find_reversal(conn, request_id) is not None)
            await store.lock_members(conn, [claim.member_id])
            ytd = await store.read_accumulators(conn, claim.member_id, visit_on.year, lock=True)
            earlier = await store.find_settlement(conn, request_id)
            if earlier is not None:
                same_request_or_conflict(bytes(earlier["request"]), request)
                log.info("adjudication_replayed")
                return pb.AdjudicateResponse.FromString(bytes(earlier["response"]))
            result, policy = await self.visit_adjudication(conn, claim, member, ytd)
            response = pb.AdjudicateResponse(adjudication=convert.visit_adjudication_to_proto(result,
                                                                                            policy.effective_from))
            await store.record_visit(conn, request_id, claim.member_id, visit_on, claim.settlement_day,
                                     claim.treating_region, result, request.SerializeToString(),
                                     response.SerializeToString())
            await store.write_accumulators(conn, claim.member_id, visit_on.year, result.ytd_after)
            await store.write_special(conn, claim.member_id, visit_on.year, claim.disease.value, result.special_after)
        SETTLEMENTS.labels("insured", self.region, "adjudication", claim.treating_region, self.region).inc()
        log.info("visit_adjudication_recorded", disease=claim.disease.value, fund_pay_fen=result.fund_pay_fen,
                 psn_pay_fen=result.psn_pay_fen)
        return response

    async def undo_special(self, conn: asyncpg.Connection, row: asyncpg.Record,
                           adjudication: types_pb2.Adjudication) -> None:
        """A cancelled or reversed visit gives its disease's accumulators back (the caller holds the member's row
        lock); the answer's `visit.special_after` shows them restored."""
        if row["med_type"] != VISIT_MED_TYPE:
            return
        now = await store.read_special(conn, row["member_id"], row["year"], row["disease"])
        restored = store.special_restored(row, now)
        await store.write_special(conn, row["member_id"], row["year"], row["disease"], restored)
        adjudication.visit.special_after.CopyFrom(convert.special_to_proto(restored))

    @rpc
    async def QuoteAdjudication(self, request: pb.QuoteAdjudicationRequest, context: grpc.aio.ServicerContext) -> pb.QuoteAdjudicationResponse:
        claim = self.parse_claim(request.claim)
        if claim.disease is not None:  # 2206: a visit's quote, nothing locked or recorded
            async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                member = await self.load_member(conn, claim)
                ytd = await store.read_accumulators(conn, claim.member_id, claim.stay.discharged_on.year, lock=False)
                result, policy = await self.visit_adjudication(conn, claim, member, ytd)
            return pb.QuoteAdjudicationResponse(
                adjudication=convert.visit_adjudication_to_proto(result, policy.effective_from))
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            result, policy = await self.adjudication_for(conn, claim)
            stays = await store.live_stays(conn, [claim.member_id], self.history_since(claim))
        answer = pb.QuoteAdjudicationResponse(adjudication=convert.adjudication_to_proto(result, policy.effective_from))
        # 事前 advice: the cross-stay findings Adjudicate would make now, a blocking one included (nothing is refused).
        answer.adjudication.smart_audit.CopyFrom(audit_to_proto(self.cross_stay_audit(claim, stays)))
        return answer

    @rpc
    async def Adjudicate(self, request: pb.AdjudicateRequest, context: grpc.aio.ServicerContext) -> pb.AdjudicateResponse:
        claim = self.parse_adjudicate_request(request)
        structlog.contextvars.bind_contextvars(request_id=claim.settlement_id, settlement_id=claim.settlement_id)
        return await self.adjudicate_one(request, claim)

    @rpc_bidi(pb.AdjudicateBatchRequest)
    def AdjudicateBatch(self, requests, context: grpc.aio.ServicerContext):  # noqa: ANN001, ANN201
        """The clearing house's batches (批量): each answered with one outcome per claim, as Adjudicate would."""
        return serve_batches(requests, self.adjudicate_batch, BATCHES_AT_ONCE)

    async def adjudicate_batch(self, batch: pb.AdjudicateBatchRequest) -> pb.AdjudicateBatchResponse:
        outcomes = await batch_adjudication.adjudicate_batch(self, list(batch.claims))
        return pb.AdjudicateBatchResponse(batch_id=batch.batch_id, outcomes=outcomes)

    def parse_adjudicate_request(self, request: pb.AdjudicateRequest) -> ParsedClaim:
        request_id = check_request_id(request.request_id)
        claim = self.parse_claim(request.claim)
        if request_id != claim.settlement_id:
            raise InvalidField("request_id", "must equal claim.settlement_id")
        return claim

    async def adjudicate_one(self, request: pb.AdjudicateRequest, claim: ParsedClaim) -> pb.AdjudicateResponse:
        """Adjudicate one claim in a transaction of its own (SPEC §8: the accumulators move with the record)."""
        if claim.disease is not None:
            return await self.adjudicate_visit_one(request, claim)
        request_id = claim.settlement_id
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            member = await self.load_member(conn, claim)  # NOT_FOUND before any lock or write
            await lock_settlement_key(conn, request_id)  # a reversal of this id waits, or is seen
            check_not_reversed(await store.find_reversal(conn, request_id) is not None)
            await store.lock_members(conn, [claim.member_id])  # the member's stays, below, cannot change meanwhile
            ytd = await store.read_accumulators(conn, claim.member_id, claim.stay.discharged_on.year, lock=True)
            earlier = await store.find_settlement(conn, request_id)
            if earlier is not None:
                same_request_or_conflict(bytes(earlier["request"]), request)
                log.info("adjudication_replayed")
                return pb.AdjudicateResponse.FromString(bytes(earlier["response"]))
            audit = self.cross_stay_audit(claim, await store.live_stays(conn, [claim.member_id],
                                                                        self.history_since(claim)))
            recorded, stay = self.audited(claim, audit)
            policy = self.policies.on(claim.stay.discharged_on)
            result = adjudicate(claim.lines, claim.stay, member, policy, ytd)  # with the accumulators locked above
            response = pb.AdjudicateResponse(adjudication=convert.adjudication_to_proto(result, policy.effective_from))
            response.adjudication.smart_audit.CopyFrom(recorded)
            await store.record_settlement(conn, request_id, claim.member_id, claim.stay.discharged_on,
                                          claim.settlement_day, claim.treating_region, result, request.SerializeToString(),
                                          response.SerializeToString(), stay)
            await store.write_accumulators(conn, claim.member_id, claim.stay.discharged_on.year, result.ytd_after)
        SETTLEMENTS.labels("insured", self.region, "adjudication", claim.treating_region, self.region).inc()
        log.info("adjudication_recorded", fund_pay_fen=result.fund_pay_fen, psn_pay_fen=result.psn_pay_fen)
        return response

    @rpc
    async def CancelAdjudication(self, request: pb.CancelAdjudicationRequest, context: grpc.aio.ServicerContext) -> pb.CancelAdjudicationResponse:
        request_id = check_request_id(request.request_id)
        settlement_id = check_request_id(request.settlement_id, "settlement_id")
        structlog.contextvars.bind_contextvars(request_id=request_id, settlement_id=settlement_id)
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            found = await store.find_settlement(conn, settlement_id)
            if found is None:
                stored = await replay(conn, request_id, "CancelAdjudication", request)
                if stored is not None:
                    return pb.CancelAdjudicationResponse.FromString(stored)
                raise NotFound(f"regions/{self.region}/settlements/{settlement_id}")
            self.check_side(found)
            ytd = await store.read_accumulators(conn, found["member_id"], found["year"], lock=True)
            row = await store.find_settlement(conn, settlement_id, lock=True)
            stored = await replay(conn, request_id, "CancelAdjudication", request)
            if stored is not None:
                return pb.CancelAdjudicationResponse.FromString(stored)
            # Under the lock, whatever happened meanwhile: a reversal (冲正) that won the race leaves the row
            # reversed, and only a settled row can be cancelled (issue 9 item 8).
            check_cancellable(row["status"])
            restored = ytd.minus(store.delta_of(row))
            assert restored.is_non_negative(), "accumulators never fall below zero on a cancel"
            first = pb.AdjudicateResponse.FromString(bytes(row["response"])).adjudication
            first.ytd_after.CopyFrom(convert.ytd_to_proto(restored))
            await self.undo_special(conn, row, first)
            response = pb.CancelAdjudicationResponse(adjudication=first)
            await store.write_accumulators(conn, row["member_id"], row["year"], restored)
            await store.mark_cancelled(conn, settlement_id, request_id, response.SerializeToString())
            await remember(conn, request_id, "CancelAdjudication", request, response)
        log.info("adjudication_cancelled")
        return response

    @rpc
    async def ReverseAdjudication(self, request: pb.ReverseAdjudicationRequest, context: grpc.aio.ServicerContext) -> pb.ReverseAdjudicationResponse:
        """冲正 (2601): undo whatever this id reached here and block it from settling later."""
        request_id = check_request_id(request.request_id)
        settlement_id = check_request_id(request.settlement_id, "settlement_id")
        structlog.contextvars.bind_contextvars(request_id=request_id, settlement_id=settlement_id)
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            stored = await replay(conn, request_id, "ReverseAdjudication", request)
            if stored is not None:
                return pb.ReverseAdjudicationResponse.FromString(stored)
            await lock_settlement_key(conn, settlement_id)
            earlier = await store.find_reversal(conn, settlement_id)
            if earlier is not None:  # reversed before under another request id: the same outcome
                response = pb.ReverseAdjudicationResponse.FromString(bytes(earlier["response"]))
            else:
                response = await self.reverse_recorded(conn, settlement_id)
                await store.record_reversal(conn, settlement_id, request_id,
                                            convert.from_enum(convert.OUTCOMES, response.outcome, "outcome").value,
                                            response.SerializeToString())
            await remember(conn, request_id, "ReverseAdjudication", request, response)
        log.info("adjudication_reversed", outcome=types_pb2.ReversalOutcome.Name(response.outcome))
        return response

    def check_side(self, row: asyncpg.Record) -> None:
        """The clearing house undoes only cross-region stays here, the region's own treating agency only its
        same-region ones (the table's `foreign_settlement` / `local_settlement`)."""
        decision, local = current_decision(), row["treating_region"] == self.region
        what = f"act on settlement {row['settlement_id']}"
        require(decision, "foreign_settlement", not local, f"{what}: a same-region stay of {self.region}")
        require(decision, "local_settlement", local, f"{what}: a cross-region stay, treated in {row['treating_region']}")

    async def reverse_recorded(self, conn: asyncpg.Connection, settlement_id: str) -> pb.ReverseAdjudicationResponse:
        """Restore the accumulators of a settled stay exactly (its recorded delta); nothing else changes."""
        found = await store.find_settlement(conn, settlement_id)
        if found is not None:
            self.check_side(found)
        outcome = reversal_outcome(found["status"] if found else None)
        if found is None or found["status"] != "settled":
            return pb.ReverseAdjudicationResponse(outcome=convert.OUTCOMES[outcome])
        ytd = await store.read_accumulators(conn, found["member_id"], found["year"], lock=True)
        row = await store.find_settlement(conn, settlement_id, lock=True)
        if row["status"] != "settled":  # a cancel committed while we waited for the member's lock
            return pb.ReverseAdjudicationResponse(outcome=convert.OUTCOMES[reversal_outcome(row["status"])])
        restored = ytd.minus(store.delta_of(row))
        assert restored.is_non_negative(), "accumulators never fall below zero on a reversal"
        adjudication = pb.AdjudicateResponse.FromString(bytes(row["response"])).adjudication
        adjudication.ytd_after.CopyFrom(convert.ytd_to_proto(restored))
        await self.undo_special(conn, row, adjudication)
        await store.write_accumulators(conn, row["member_id"], row["year"], restored)
        await store.mark_reversed(conn, settlement_id)
        return pb.ReverseAdjudicationResponse(outcome=convert.OUTCOMES[outcome], adjudication=adjudication)

    async def day_detail(self, request) -> list[types_pb2.DetailLine]:  # noqa: ANN001
        day, day_key = reconciling.day_request(request)
        treating = check_region(request.treating_region, "treating_region") if request.treating_region else None
        async with self.pool.acquire() as conn:
            rows = await store.day_lines(conn, day, day_key, self.region, treating)
        return [reconciling.detail_line(row, local=row["treating_region"] == self.region,
                                        treating_region=row["treating_region"], insured_region=self.region)
                for row in rows]

    @rpc
    async def GetAdjudicationDailyTotals(self, request: pb.GetAdjudicationDailyTotalsRequest, context: grpc.aio.ServicerContext) -> pb.GetAdjudicationDailyTotalsResponse:
        return pb.GetAdjudicationDailyTotalsResponse(totals=reconciling.totals(await self.day_detail(request)))

    @rpc_stream
    async def StreamAdjudicationDailyDetail(self, request: pb.StreamAdjudicationDailyDetailRequest, context: grpc.aio.ServicerContext):  # noqa: ANN201
        for line in await self.day_detail(request):
            yield pb.StreamAdjudicationDailyDetailResponse(line=line)

    @rpc_stream
    async def ExportAdjudications(self, request: pb.ExportAdjudicationsRequest, context: grpc.aio.ServicerContext):  # noqa: ANN201
        """The settlements of stays discharged in the months, in recording order, a page a message (policy
        what-if, SPEC §12.5). One read-only snapshot for every page: a member's events are recorded under its
        accumulator lock, so the snapshot holds each member's history up to some point, never one with a gap."""
        first_day, last_day = export_days(request)
        after = 0
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            for _ in range(EXPORT_PAGES_MAX):  # bounded: each page moves `after` forward
                rows = await store.settlements_discharged(conn, first_day, last_day, after)
                if not rows:
                    return
                filings = await store.filings_among(conn, sorted({row["member_id"] for row in rows}))
                page, page_bytes = [], 0
                for row in rows:  # a message stays far below MESSAGE_BYTES_MAX whatever the bills' sizes
                    item = exported(row, filings.get(row["member_id"], []))
                    page.append(item)
                    page_bytes += item.ByteSize()
                    if page_bytes >= EXPORT_MESSAGE_BYTES:
                        yield pb.ExportAdjudicationsResponse(settlements=page)
                        page, page_bytes = [], 0
                if page:
                    yield pb.ExportAdjudicationsResponse(settlements=page)
                after = rows[-1]["sequence"]
        raise AssertionError("more pages than settlements")

    @rpc
    async def RegisterMember(self, request: pb.RegisterMemberRequest, context: grpc.aio.ServicerContext) -> pb.RegisterMemberResponse:
        request_id = check_request_id(request.request_id)
        member = request.member
        member_id = check_text(member.member_id, "member.member_id", 64)
        id_number = check_id_number(member.id_number, "member.id_number")
        check_text(member.name, "member.name", 64)  # required of the registration, then forgotten
        scheme = convert.from_enum(convert.SCHEMES, member.scheme, "member.scheme")
        tier = convert.from_enum(convert.TIERS, member.assistance, "member.assistance")
        response = pb.RegisterMemberResponse(member=masked(member))
        # What is stored and compared for idempotency: the request with keyed hashes for the ID number and name.
        kept = redacted_registration(request, self.member_key)
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            stored = await replay(conn, request_id, "RegisterMember", kept)
            if stored is not None:
                return pb.RegisterMemberResponse.FromString(stored)
            self.check_policy_defines(scheme, tier)  # after the replay: a retry gets its first answer
            existing = await store.find_member_row(conn, member_id)
            if existing is not None:
                raise PreconditionFailed("member.member_id", f"member {member_id} is already registered")
            await store.insert_member(conn, member_id, keys.id_hash(self.member_key, id_number),
                                      mask_id_number(id_number), scheme, member.retired, member.poverty, tier)
            await remember(conn, request_id, "RegisterMember", kept, response)
        log.info("member_registered", member_id=member_id)
        return response

    @rpc
    async def ListMembers(self, request: pb.ListMembersRequest, context: grpc.aio.ServicerContext) -> pb.ListMembersResponse:
        """A page of members as an operator may see them: the member number, the ID number masked, no name."""
        limit = MEMBERS_PAGE_DEFAULT if request.limit == 0 else request.limit
        if not 1 <= limit <= MEMBERS_PAGE_MAX:
            raise InvalidField("limit", f"between 1 and {MEMBERS_PAGE_MAX} (0: {MEMBERS_PAGE_DEFAULT}), not {request.limit}")
        after = check_text(request.page_token, "page_token", 64) if request.page_token else ""
        async with self.pool.acquire() as conn:
            rows = await store.members_page(conn, after, limit + 1)  # one more: is there a next page?
        page = rows[:limit]
        return pb.ListMembersResponse(
            members=[pb.MemberListing(member=member_message(row), filings=[filing_message(item) for item in row["filings"]])
                     for row in page],
            next_page_token=page[-1]["member_id"] if len(rows) > limit else "")

    @rpc
    async def VerifyMember(self, request: pb.VerifyMemberRequest, context: grpc.aio.ServicerContext) -> pb.VerifyMemberResponse:
        """Whether a presented ID number is the member's: hashed with the region's key and compared with the
        stored hash, in constant time. Nothing is written; the number is not logged (not even masked)."""
        member_id = check_text(request.member_id, "member_id", 64)
        id_number = check_id_number(request.id_number, "id_number")
        async with self.pool.acquire() as conn:
            row = await store.find_member_row(conn, member_id)
        if row is None:
            raise NotFound(f"regions/{self.region}/members/{member_id}")
        matched = keys.matches(self.member_key, id_number, row["id_hash"])
        log.info("member_verified", member_id=member_id, matches=matched)
        return pb.VerifyMemberResponse(matches=matched)

    def check_policy_defines(self, scheme: Scheme, tier: AssistanceTier | None) -> None:
        """Refuse a member the policy in force could not settle: a scheme it lacks, or an assistance tier its
        [assistance] section leaves out (SPEC §5.2 step 6). No section at all means no assistance (§5.1), so
        any tier registers and is paid nothing. The policy is the version in force today, or the first
        version when none is in force yet; a stay adjudicated under another version is still checked then.

        FAILED_PRECONDITION, not INVALID_ARGUMENT: the request is well formed and names a tier or scheme the
        contract knows; it is the region's policy configuration (state, which a new version can change) that
        does not provide it, as with a discharge before the policy's effective date."""
        today = shanghai_today()
        in_force = [policy for policy in self.policies.versions if policy.effective_from <= today]
        policy = in_force[-1] if in_force else self.policies.versions[0]
        if scheme not in policy.schemes:
            raise PreconditionFailed("member.scheme", f"the {self.region} policy in force (from "
                                     f"{policy.effective_from}) has no {scheme.value} scheme")
        if tier is not None and policy.assistance is not None and tier not in policy.assistance:
            raise PreconditionFailed("member.assistance", f"the {self.region} policy in force (from "
                                     f"{policy.effective_from}) does not define assistance tier {tier.value}")

    @rpc
    async def RecordFiling(self, request: pb.RecordFilingRequest, context: grpc.aio.ServicerContext) -> pb.RecordFilingResponse:
        request_id = check_request_id(request.request_id)
        member_id = check_text(request.member_id, "member_id", 64)
        filing = request.filing
        category = convert.from_enum(convert.FILINGS, filing.category, "filing.category")
        if category is FilingStatus.UNFILED:
            raise InvalidField("filing.category", "UNFILED is not a filing")
        treating_region = check_region(filing.treating_region, "filing.treating_region") if filing.treating_region else None
        valid_from = parse_day(filing.valid_from, "filing.valid_from")
        valid_to = parse_day(filing.valid_to, "filing.valid_to") if filing.valid_to else None
        if valid_to is not None and valid_to < valid_from:
            raise InvalidField("filing.valid_to", "is before valid_from")
        response = pb.RecordFilingResponse(filing=filing)
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            stored = await replay(conn, request_id, "RecordFiling", request)
            if stored is not None:
                return pb.RecordFilingResponse.FromString(stored)
            if await store.find_member_row(conn, member_id) is None:
                raise NotFound(f"regions/{self.region}/members/{member_id}")
            await store.insert_filing(conn, member_id, category, treating_region, valid_from, valid_to)
            await remember(conn, request_id, "RecordFiling", request, response)
        return response

    @rpc
    async def GetMember(self, request: pb.GetMemberRequest, context: grpc.aio.ServicerContext) -> pb.GetMemberResponse:
        member_id = check_text(request.member_id, "member_id", 64)
        year = request.year or shanghai_today().year
        if not 2000 <= year <= 2100:
            raise InvalidField("year", "must be a policy year such as 2026")
        async with self.pool.acquire() as conn:
            row = await store.find_member_row(conn, member_id)
            if row is None:
                raise NotFound(f"regions/{self.region}/members/{member_id}")
            ytd = await store.read_accumulators(conn, member_id, year, lock=False)
            filings = await store.filings_of(conn, member_id)
        return pb.GetMemberResponse(member=member_message(row), accumulators=convert.ytd_to_proto(ytd),
                                    filings=[filing_message(item) for item in filings])


    # -- outpatient special diseases (门诊慢特病, SPEC §13): recognitions 2503 / 2504 / 5301 ----------------------

    @rpc
    async def RecordSpecialDisease(self, request: pb.RecordSpecialDiseaseRequest,
                                   context: grpc.aio.ServicerContext) -> pb.RecordSpecialDiseaseResponse:
        request_id = check_request_id(request.request_id)
        member_id = check_text(request.member_id, "member_id", 64)
        given = request.recognition
        disease = convert.from_enum(convert.SPECIAL_DISEASES, given.disease, "recognition.disease")
        valid_from = parse_day(given.valid_from, "recognition.valid_from")
        valid_to = parse_day(given.valid_to, "recognition.valid_to") if given.valid_to else None
        if valid_to is not None and valid_to < valid_from:
            raise InvalidField("recognition.valid_to", "is before valid_from")
        diagnosis = check_diagnosis(given.diagnosis, "recognition.diagnosis")
        certified_by = check_hospital_code(given.certified_by, "recognition.certified_by") if given.certified_by else None
        for name in ("recognition_id", "recorded_at", "cancelled_at", "cancel_reason"):
            if getattr(given, name):
                raise InvalidField(f"recognition.{name}", "is set by the agency: leave it empty")
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            stored = await replay(conn, request_id, "RecordSpecialDisease", request)
            if stored is not None:
                return pb.RecordSpecialDiseaseResponse.FromString(stored)
            check_recognisable(self.policies, Disease(disease), diagnosis, valid_from)  # after the replay, as RegisterMember
            if await store.find_member_row(conn, member_id, lock=True) is None:
                raise NotFound(f"regions/{self.region}/members/{member_id}")
            standing = await store.overlapping_recognition(conn, member_id, disease, valid_from, valid_to)
            if standing is not None:
                raise PreconditionFailed(
                    "recognition.valid_from", f"recognition {standing['recognition_id']} of {disease} stands from "
                    f"{standing['valid_from']} to {standing['valid_to'] or 'open'}: cancel it first (2504)")
            row = await store.insert_recognition(conn, member_id, disease, valid_from, valid_to, diagnosis, certified_by)
            response = pb.RecordSpecialDiseaseResponse(recognition=recognition_message(row))
            await remember(conn, request_id, "RecordSpecialDisease", request, response)
        log.info("special_disease_recognised", member_id=member_id, disease=disease,
                 recognition_id=row["recognition_id"])
        return response

    @rpc
    async def CancelSpecialDisease(self, request: pb.CancelSpecialDiseaseRequest,
                                   context: grpc.aio.ServicerContext) -> pb.CancelSpecialDiseaseResponse:
        request_id = check_request_id(request.request_id)
        member_id = check_text(request.member_id, "member_id", 64)
        if not request.recognition_id.isdigit() or len(request.recognition_id) > 18:
            raise InvalidField("recognition_id", "must be the recognition_id RecordSpecialDisease answered")
        reason = check_text(request.reason, "reason", 200)
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            stored = await replay(conn, request_id, "CancelSpecialDisease", request)
            if stored is not None:
                return pb.CancelSpecialDiseaseResponse.FromString(stored)
            row = await store.cancel_recognition(conn, member_id, int(request.recognition_id), reason)
            if row is None:
                raise NotFound(f"regions/{self.region}/members/{member_id}/special_diseases/{request.recognition_id}")
            response = pb.CancelSpecialDiseaseResponse(recognition=recognition_message(row))
            await remember(conn, request_id, "CancelSpecialDisease", request, response)
        return response

    @rpc
    async def ListSpecialDiseases(self, request: pb.ListSpecialDiseasesRequest,
                                  context: grpc.aio.ServicerContext) -> pb.ListSpecialDiseasesResponse:
        member_id = check_text(request.member_id, "member_id", 64)
        valid_on = parse_day(request.valid_on, "valid_on") if request.valid_on else None
        async with self.pool.acquire() as conn:
            if await store.find_member_row(conn, member_id) is None:
                raise NotFound(f"regions/{self.region}/members/{member_id}")
            rows = await store.recognitions_of(conn, member_id, valid_on)
        return pb.ListSpecialDiseasesResponse(recognitions=[recognition_message(row) for row in rows])


MEMBERS_PAGE_DEFAULT = 100
MEMBERS_PAGE_MAX = 1000


def check_recognisable(policies: PolicyBook, disease: Disease, diagnosis: str, valid_from: date) -> None:
    """A recognition is of a disease the region's policy covers, on a diagnosis within the disease's ICD prefixes
    (the `icd:` reading of SPEC §13.4: case and dots ignored). The policy is the version in force on `valid_from`,
    or the first version when none is in force yet."""
    in_force = [policy for policy in policies.versions if policy.effective_from <= valid_from]
    policy = in_force[-1] if in_force else policies.versions[0]
    section = policy.outpatient_special.get(disease)
    if section is None:
        raise PreconditionFailed(f"outpatient_special.{disease.value}", f"the {policies.region} policy in force (from "
                                 f"{policy.effective_from}) does not cover {disease.value} outpatient visits")
    code = diagnosis.upper().replace(".", "")
    if not any(code.startswith(prefix) for prefix in section.icd_prefixes):
        raise InvalidField("recognition.diagnosis", f"{diagnosis} is not within {disease.value}'s ICD-10 "
                                                    f"prefixes ({', '.join(section.icd_prefixes[:8])}"
                                                    f"{', …' if len(section.icd_prefixes) > 8 else ''})")


def other_stay(row: Mapping[str, Any]) -> OtherStay:
    return OtherStay(str(row["settlement_id"]), row["admitted_on"], row["discharged_on"], tuple(row["diagnoses"]))


def member_message(row: Mapping[str, Any]) -> pb.Member:
    """A member's row as the agency answers it: the ID number masked, no name (it keeps none)."""
    return pb.Member(member_id=row["member_id"], id_number=row["id_number_masked"], scheme=convert.SCHEMES[row["scheme"]],
                     retired=row["retired"], poverty=row["poverty"], assistance=convert.TIERS[row["assistance"]])


def filing_message(item: Mapping[str, Any]) -> pb.Filing:
    """A filing's row (or its JSON object in a listing, where the days are ISO text already)."""
    def day(value: Any) -> str:  # noqa: ANN401 - a date, or ISO text from jsonb
        return "" if value is None else value if isinstance(value, str) else value.isoformat()

    return pb.Filing(category=convert.FILINGS[FilingStatus(item["category"])],
                     treating_region=item["treating_region"] or "", valid_from=day(item["valid_from"]),
                     valid_to=day(item["valid_to"]))


HASHED = "hmac-sha256:"
EXPORT_MONTHS_MAX = 36
EXPORT_MESSAGE_BYTES = 4 * 1024 * 1024  # a message of ExportAdjudications ends after the settlement that passes this
EXPORT_PAGES_MAX = 10**7  # 5·10⁹ settlements: far more than a region records
STATUSES = {"settled": types_pb2.SETTLEMENT_STATUS_SETTLED, "cancelled": types_pb2.SETTLEMENT_STATUS_CANCELLED,
            "reversed": types_pb2.SETTLEMENT_STATUS_REVERSED}


def export_days(request: pb.ExportAdjudicationsRequest) -> tuple[date, date]:
    """The first and last discharge day of ExportAdjudications' months."""
    from_month = check_month(request.from_month, "from_month")
    to_month = check_month(request.to_month, "to_month")
    months = (int(to_month[:4]) - int(from_month[:4])) * 12 + int(to_month[5:]) - int(from_month[5:])
    if months < 0:
        raise InvalidField("to_month", f"{to_month} is before from_month {from_month}")
    if months >= EXPORT_MONTHS_MAX:
        raise InvalidField("to_month", f"at most {EXPORT_MONTHS_MAX} months from from_month")
    first_day = date(int(from_month[:4]), int(from_month[5:]), 1)
    following = next_month(to_month)
    return first_day, date(int(following[:4]), int(following[5:]), 1) - timedelta(days=1)


def exported(row: asyncpg.Record, filings: list[asyncpg.Record]) -> pb.ExportedAdjudication:
    """One settlement of ExportAdjudications: the stored claim and answer, the member as it then stood."""
    claim = pb.AdjudicateRequest.FromString(bytes(row["request"])).claim
    adjudication = pb.AdjudicateResponse.FromString(bytes(row["response"])).adjudication
    adjudication.ClearField("lines")  # the claim carries them
    adjudication.ClearField("explanation")
    filing = store.filing_then(filings, claim.treating_region, date.fromisoformat(claim.stay.admitted_on),
                               row["settled_at"])
    member = pb.Member(member_id=row["member_id"], scheme=convert.SCHEMES[Scheme(row["scheme"])],
                       retired=row["retired"], poverty=row["poverty"],
                       assistance=convert.TIERS[AssistanceTier(row["assistance"]) if row["assistance"] else None])
    return pb.ExportedAdjudication(
        settlement_id=str(row["settlement_id"]), sequence=row["sequence"], status=STATUSES[row["status"]],
        undone_sequence=row["undone_sequence"] or 0, member=member, filing=convert.FILINGS[filing], claim=claim,
        adjudication=adjudication)


def masked(member: pb.Member) -> pb.Member:
    """A copy as the agency answers it: the ID number masked, no name (it keeps none, not even masked)."""
    copy = pb.Member()
    copy.CopyFrom(member)
    copy.id_number = mask_id_number(member.id_number.upper())
    copy.ClearField("name")
    return copy


def redacted_registration(request: pb.RegisterMemberRequest, key: bytes) -> pb.RegisterMemberRequest:
    """The request as the agency keeps it for idempotency: the ID number and the name replaced by keyed hashes,
    so a retry is still compared field by field (another ID number or name is ALREADY_EXISTS naming it) while
    neither is stored. The ID number is hashed normalised, as `id_hash` is."""
    copy = pb.RegisterMemberRequest()
    copy.CopyFrom(request)
    copy.member.id_number = HASHED + keys.id_hash(key, request.member.id_number)
    copy.member.name = HASHED + keys.name_hash(key, request.member.name)
    return copy


def recognition_message(row: Mapping[str, Any]) -> types_pb2.SpecialDiseaseRecognition:
    """A recognition's row as the agency answers it."""
    return types_pb2.SpecialDiseaseRecognition(
        recognition_id=str(row["recognition_id"]), disease=convert.SPECIAL_DISEASES[row["disease"]],
        valid_from=row["valid_from"].isoformat(), valid_to=row["valid_to"].isoformat() if row["valid_to"] else "",
        diagnosis=row["diagnosis"], certified_by=row["certified_by"] or "",
        recorded_at=rfc3339(row["recorded_at"]), cancelled_at=rfc3339(row["cancelled_at"]) if row["cancelled_at"] else "",
        cancel_reason=row["cancel_reason"] or "")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
