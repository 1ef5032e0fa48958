"""ClearingHouseService: translate, apply the region-pair agreement, route, record in the ledger.

SettleClaim follows the pending/post protocol: record the routed claim as pending and commit,
call the insured agency with the caller's remaining deadline, then post the ledger and mark it
settled in a second transaction. A retry of a pending claim drives the same call again (the
insured agency is idempotent on the settlement id).
"""

from __future__ import annotations

import asyncio

import grpc
import structlog
from clearinghouse.v1 import clearing_house_pb2 as pb
from clearinghouse.v1 import clearing_house_pb2_grpc as pb_grpc
from clearinghouse.v1 import insured_agency_pb2, insured_agency_pb2_grpc, types_pb2

from clearing import limits
from clearing.bill import check_region, check_text
from clearing.catalogue import Catalogue
from clearing.dates import check_month, check_year, parse_day
from clearing.lifecycle import ReversalOutcome, check_cancellable, check_not_reversed, reversal_outcome
from clearing.errors import InvalidField, NotFound, PreconditionFailed
from clearing.ledger import clearing_postings, mirror, prepayment, settlement_postings, topup_postings
from clearing.prepayment import (
    OUTFLOW_WINDOW_MONTHS, PREPAYMENT_MONTHS_MAX, Draw, draw, prepayment_state, required_prepayment_fen,
)
from clearing import disputes
from clearing.smart_audit.library import RuleId
from clearing.translate import Agreements, CatalogueRule, Translated, apply_agreement, translate
from clearing.classify import Reason, check_classification
from services.clearinghouse import disputes as dispute_store
from services.clearinghouse import statements, store
from services.clearinghouse.partitions import MonthPartitions, month_of_day
from services.clearinghouse.reconciler import ClearingReconciliation
from services.clearinghouse.closing import (
    first_open_month, hub_transfer_of, month_closing, month_state, transfer_status, transfer_statuses,
)
from services.common.batch_settings import BatchSettings
from services.common.batching import (
    StreamBatcher, check_batch_size, refusal_for, serve_batches,
)
from services.common.locks import holding_settlement_key, lock_disputed_settlement, lock_settlement_key, undo_key
from services.common.metrics import PREPAYMENT_USAGE, PREPAYMENT_WARNINGS, SETTLEMENTS
from services.common import convert, ledger_sql, reconciling
from services.common.catalogues import CatalogueVersions, parsed_catalogue, sha256_of
from services.common.clock import clearing_month, now_utc
from services.common.errors import (
    StoredRefusal, downstream_conflict, downstream_timeout_s, is_definite, refusal_status, rpc, rpc_bidi, rpc_stream,
)
from services.common.requests import (
    check_request_id, remember, replay, same_request_or_conflict, stored_answer,
)
from services.security.caller import authorise, current_caller, current_decision
from services.security.party import Security
from services.security.policy import require, require_caller
from services.security.audit_log import AuditLog
from google.rpc import status_pb2
from datetime import UTC, date

log = structlog.get_logger()


BATCHES_AT_ONCE = 4  # a batch stream's batches settled at once
BATCH_CLAIM_TIMEOUT_S = 10.0  # a claim of a batch waits this long for its insured agency (a unary call's default)


def claim_refused(error: BaseException) -> pb.SettleClaimOutcome:
    """A claim's refusal inside a batch: the status SettleClaim would have answered with (INTERNAL for a fault)."""
    return pb.SettleClaimOutcome(refusal=refusal_for(error))


def claim_months(claim: types_pb2.Claim) -> tuple[str, ...]:
    """The month of the claim's settlement day (its row's partition), if the day is a valid one (route() names a
    bad one)."""
    try:
        return (month_of_day(convert.claim_settlement_day(claim)),)
    except InvalidField:
        return ()


def request_key(claim, insured_region: str = "", month: str = "") -> tuple[str, str]:  # noqa: ANN001 - a claims record or None
    """Where the request log files a request about a claim: the claim's insured region and the month of its
    settlement day — what a first try and every retry agree on, whenever they arrive. A reversal of a claim never
    recorded here (no claim ever will be: the reversal blocks it) is filed under `insured_region` and `month`."""
    if claim is None:
        return insured_region, month
    return claim["insured_region"], month_of_day(claim["settlement_day"])


class ClearingHouseServicer(pb_grpc.ClearingHouseServiceServicer):
    def __init__(self, pool, agreements: Agreements,  # noqa: ANN001
                 insured_stubs: dict[str, insured_agency_pb2_grpc.InsuredAgencyServiceStub], *, security: Security) -> None:
        self.pool = pool
        self.partitions = MonthPartitions(pool)  # a month's partitions are made before it is written into
        self.audit_log = AuditLog(pool, "clearinghouse")  # operators' calls, recorded by the rpc decorators
        self.security = security  # the clearing house's identity and deny list: every call is authenticated with it
        self.agreements = agreements
        self.insured_stubs = insured_stubs
        # Region → the batch stream its insured agency adjudicates this house's claims over (批量; wiring makes
        # them when batching is on). A region without one gets each claim as an Adjudicate call of its own.
        self.adjudicators: dict[str, StreamBatcher] = {}
        self.batching = BatchSettings(enabled=False)  # the stack's, set by wiring
        self.catalogues = CatalogueVersions()

    async def load_catalogues(self) -> None:
        """Warm the cache with the newest published version of every region (parsing is the slow part)."""
        async with self.pool.acquire() as conn:
            for row in await store.latest_catalogues(conn):
                self.catalogues.put(row["region"], row["version"], row["csv_text"])

    async def catalogue(self, conn, region: str, field: str, version: int | None = None) -> tuple[int, Catalogue]:  # noqa: ANN001
        """Version `version` of a region's catalogue, or the current one (read from the database on every call,
        so every clearing-house process uses the version the last publication made current)."""
        if version is None:
            version = await store.current_catalogue_version(conn, region)
            if version is None:
                raise PreconditionFailed(field, f"no catalogue of region {region} has been published")

        async def text() -> str:
            found = await store.catalogue_text(conn, region, version)
            if found is None:
                raise PreconditionFailed(field, f"version {version} of the {region} catalogue has not been published")
            return found

        return version, await self.catalogues.get(region, version, text)

    def stub_for(self, region: str) -> insured_agency_pb2_grpc.InsuredAgencyServiceStub:
        stub = self.insured_stubs.get(region)
        if stub is None:
            raise NotFound(f"regions/{region}", "no insured agency is connected for this region")
        return stub

    async def route(self, conn, claim: types_pb2.Claim) -> tuple[types_pb2.Claim, CatalogueRule, list[str]]:  # noqa: ANN001
        """Validate the claim, check its classification and apply the pair's agreement; returns the claim as the
        insured agency sees it, with the catalogue versions that classified it."""
        _, treating_region, insured_region = convert.claim_header(claim)
        if treating_region == insured_region:
            raise InvalidField("claim.insured_region", "a same-region stay is settled locally, not cleared")
        check_text(claim.member_id, "claim.member_id", 64)
        # A visit's lines are judged by its disease's ICD prefixes (SPEC §13.4) where a stay's by its diagnoses.
        stay, diagnoses = convert.stay_from_proto(claim.stay, treating_region, disease=convert.claim_disease(claim))
        convert.claim_settlement_day(claim)
        lines = convert.claim_lines(claim)
        self.stub_for(insured_region)
        if claim.treating_catalogue_version <= 0:
            raise InvalidField("claim.treating_catalogue_version", "must name the catalogue version that classified "
                                                                   "the lines")
        treating_version, treating_catalogue = await self.catalogue(
            conn, treating_region, "claim.treating_catalogue_version", claim.treating_catalogue_version)
        check_classification(lines, treating_catalogue, diagnoses, treating_version)
        agreement = self.agreements.between(treating_region, insured_region)
        insured_catalogue, insured_version = None, 0
        if agreement.catalogue_rule is CatalogueRule.INSURED:
            insured_version, insured_catalogue = await self.catalogue(conn, insured_region, "claim.insured_region")
        routed_lines = apply_agreement(lines, agreement, insured_catalogue, diagnoses)
        routed = types_pb2.Claim()
        routed.CopyFrom(claim)
        del routed.lines[:]
        routed.lines.extend(convert.line_class_to_proto(item) for item in routed_lines)
        routed.insured_catalogue_version = insured_version
        flags = sorted({"UNMAPPED_LINE" for item in routed_lines if item.reason is Reason.UNMAPPED})
        return routed, agreement.catalogue_rule, flags

    def settlement(self, request_id: str, routed: types_pb2.Claim, adjudication: types_pb2.Adjudication,
                   rule: CatalogueRule, flags: list[str], status: int) -> types_pb2.Settlement:
        message = types_pb2.Settlement(
            name=f"regions/{routed.treating_region}/settlements/{routed.settlement_id}",
            settlement_id=routed.settlement_id, request_id=request_id, status=status, claim=routed,
            adjudication=adjudication, catalogue_rule=convert.RULES[rule], local=False, flags=flags)
        return message

    @rpc
    async def QuoteClaim(self, request: pb.QuoteClaimRequest, context: grpc.aio.ServicerContext) -> pb.QuoteClaimResponse:
        async with self.pool.acquire() as conn:
            routed, rule, flags = await self.route(conn, request.claim)
        answer = await self.stub_for(routed.insured_region).QuoteAdjudication(
            insured_agency_pb2.QuoteAdjudicationRequest(claim=routed), timeout=downstream_timeout_s(context))
        return pb.QuoteClaimResponse(settlement=self.settlement(
            "", routed, answer.adjudication, rule, flags, types_pb2.SETTLEMENT_STATUS_PENDING))

    @rpc
    async def SettleClaim(self, request: pb.SettleClaimRequest, context: grpc.aio.ServicerContext) -> pb.SettleClaimResponse:
        return await self.settle_claim(request, downstream_timeout_s(context))

    @rpc_bidi(pb.SettleClaimBatchRequest)
    def SettleClaimBatch(self, requests, context: grpc.aio.ServicerContext):  # noqa: ANN001, ANN201
        """A treating agency's batches (批量): each answered with one outcome per claim, as SettleClaim would."""
        return serve_batches(requests, self.settle_batch, BATCHES_AT_ONCE)

    async def settle_batch(self, batch: pb.SettleClaimBatchRequest) -> pb.SettleClaimBatchResponse:
        """Every claim of the batch through SettleClaim's own steps, at once: their adjudications meet again in the
        insured agencies' batches."""
        check_batch_size(len(batch.claims))  # a batch over the size the protos allow ends the stream
        outcomes = await asyncio.gather(*(self.settle_in_batch(request) for request in batch.claims))
        return pb.SettleClaimBatchResponse(batch_id=batch.batch_id, outcomes=outcomes)

    async def settle_in_batch(self, request: pb.SettleClaimRequest) -> pb.SettleClaimOutcome:
        try:
            authorise(self.security, current_caller(), "ClearingHouseService.SettleClaim", request)
            return pb.SettleClaimOutcome(answer=await self.settle_claim(request, BATCH_CLAIM_TIMEOUT_S))
        except Exception as error:  # noqa: BLE001 - every claim gets an answer; an unexpected error is INTERNAL
            return claim_refused(error)

    async def settle_claim(self, request: pb.SettleClaimRequest, timeout_s: float) -> pb.SettleClaimResponse:
        """Steps 3–6 of the protocol for one claim (docs/settlement-protocol.md)."""
        request_id = check_request_id(request.request_id)
        if request_id != check_request_id(request.claim.settlement_id, "claim.settlement_id"):
            raise InvalidField("request_id", "must equal claim.settlement_id")
        structlog.contextvars.bind_contextvars(request_id=request_id, settlement_id=request_id)
        # The claim's row goes into its settlement day's partition, its posting into the current month's.
        await self.partitions.ensure(*claim_months(request.claim), clearing_month(now_utc()),
                                     field="claim.settlement_day")
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            # The id's lock first: a reversal of this id, or a concurrent copy of this request, waits or is seen.
            await lock_settlement_key(conn, request_id)
            check_not_reversed(await store.find_reversal(conn, request_id) is not None)
            earlier = await store.find_claim(conn, request_id, lock=True)
            if earlier is not None:  # looked up before routing: a retry never re-applies the agreement
                same_request_or_conflict(bytes(earlier["request"]), request)
                if earlier["status"] in ("settled", "cancelled"):
                    return pb.SettleClaimResponse.FromString(bytes(earlier["response"]))
                if earlier["status"] == "failed":
                    raise StoredRefusal(status_pb2.Status.FromString(bytes(earlier["error"])))
                assert earlier["status"] == "pending", earlier["status"]  # reversed ones have a reversal record
                routed = types_pb2.Claim.FromString(bytes(earlier["routed"]))  # re-drive exactly what was sent
                rule, flags = CatalogueRule(earlier["catalogue_rule"]), list(earlier["flags"])
            else:
                routed, rule, flags = await self.route(conn, request.claim)
                await store.insert_pending_claim(
                    conn, request_id, routed.treating_region, routed.insured_region, routed.member_id,
                    routed.stay.hospital_code, rule.value, request.SerializeToString(), routed.SerializeToString(),
                    flags, date.fromisoformat(routed.stay.discharged_on), date.fromisoformat(routed.settlement_day),
                    routed.med_type or types_pb2.MED_TYPE_INPATIENT)
        try:
            answer = await self.adjudicate(routed.insured_region, insured_agency_pb2.AdjudicateRequest(
                request_id=request_id, claim=routed), timeout_s)
        except grpc.aio.AioRpcError as error:
            conflict = downstream_conflict(error, "claim.settlement_id")
            if conflict is not None:
                raise conflict from None
            if is_definite(error):
                async with self.pool.acquire() as conn:
                    await store.mark_failed(conn, request_id, refusal_status(error).SerializeToString())
            raise
        return await self.post(request_id, routed, answer.adjudication, rule, flags)

    async def adjudicate(self, region: str, request: insured_agency_pb2.AdjudicateRequest,
                         timeout_s: float) -> insured_agency_pb2.AdjudicateResponse:
        """Step 4: the insured agency adjudicates the claim, in a batch over its stream or in a call of its own;
        the answer and every refusal are the same either way."""
        batcher = self.adjudicators.get(region)
        if batcher is not None:
            return await batcher.call(request, timeout_s)
        return await self.stub_for(region).Adjudicate(request, timeout=timeout_s)

    async def post(self, request_id: str, routed: types_pb2.Claim, adjudication: types_pb2.Adjudication,
                   rule: CatalogueRule, flags: list[str]) -> pb.SettleClaimResponse:
        """Second step: post the obligation and mark the claim settled, in one transaction."""
        settled_at = now_utc()
        split = adjudication.split
        postings = settlement_postings(routed.treating_region, routed.insured_region, split.fund_pay_fen)
        await self.partitions.ensure(clearing_month(settled_at))
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            row = await store.find_claim(conn, request_id, lock=True)
            if row["status"] in ("settled", "cancelled"):  # a concurrent retry posted it first
                return pb.SettleClaimResponse.FromString(bytes(row["response"]))
            check_not_reversed(row["status"] == "reversed")  # reversed while the insured agency answered
            assert row["status"] == "pending", row["status"]
            await store.lock_aggregates_for_posting(conn)
            month = clearing_month(settled_at)
            month = first_open_month(month, await store.closed_months_from(conn, month))
            await self.partitions.ensure_within(conn, month)
            drawn = await self.draw_prepayment(conn, routed.insured_region, split.fund_pay_fen)
            if drawn.exhausted:
                flags = sorted({*flags, "PREPAYMENT_EXHAUSTED"})
            settlement = self.settlement(request_id, routed, adjudication, rule, flags,
                                         types_pb2.SETTLEMENT_STATUS_SETTLED)
            settlement.settled_at.FromDatetime(settled_at)
            response = pb.SettleClaimResponse(settlement=settlement)
            await store.post_transaction(conn, request_id, "settlement", month, postings, routed.insured_region,
                                         routed.treating_region, split.fund_pay_fen)
            await store.mark_settled(conn, request_id, response.SerializeToString(), split, routed.stay,
                                     settled_at, month)
        SETTLEMENTS.labels("clearinghouse", "", "claim", routed.treating_region, routed.insured_region).inc()
        log.info("claim_settled", fund_pay_fen=split.fund_pay_fen, insured_region=routed.insured_region,
                 treating_region=routed.treating_region)
        return response

    async def draw_prepayment(self, conn, insured_region: str, fund_pay_fen: int) -> Draw:  # noqa: ANN001
        """Count a settlement's draw on the region's prepayment; warn and request a top-up on crossing
        the threshold. Never refuses: an exhausted prepayment only flags the settlement."""
        terms = await store.lock_prepayment(conn, insured_region)
        balance_fen = await store.balance_of(conn, prepayment(insured_region))
        drawn = draw(balance_fen, fund_pay_fen, terms["required_fen"], terms["threshold_bp"])
        PREPAYMENT_USAGE.labels("clearinghouse", "", insured_region).set(drawn.usage_bp / 10_000)  # bp → 0–1: display only
        if drawn.crossed_threshold:
            topup_fen = max(0, terms["required_fen"] - drawn.balance_fen)
            await store.request_topup(conn, insured_region, topup_fen)
            PREPAYMENT_WARNINGS.labels("clearinghouse", "", insured_region).inc()
            log.warning("prepayment_threshold_crossed", insured_region=insured_region, usage_bp=drawn.usage_bp,
                        balance_fen=drawn.balance_fen, topup_requested_fen=topup_fen)
        if drawn.exhausted:
            log.warning("prepayment_exhausted", insured_region=insured_region, balance_fen=drawn.balance_fen)
        return drawn

    @rpc
    async def TopUpPrepayment(self, request: pb.TopUpPrepaymentRequest, context: grpc.aio.ServicerContext) -> pb.TopUpPrepaymentResponse:
        request_id = check_request_id(request.request_id)
        region = check_region(request.insured_region, "insured_region")
        if not 0 < request.amount_fen <= limits.PREPAYMENT_FEN_MAX:
            raise InvalidField("amount_fen", f"must be a positive number of fen, at most {limits.PREPAYMENT_FEN_MAX}")
        if not 0 <= request.required_fen <= limits.PREPAYMENT_FEN_MAX:
            raise InvalidField("required_fen", f"must be from 0 to {limits.PREPAYMENT_FEN_MAX} fen")
        self.stub_for(region)  # NOT_FOUND for a region without an insured agency
        key = (region, clearing_month(now_utc()))  # no month in the request: the log's row is filed under today's
        await self.partitions.ensure(key[1])
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            stored = await replay(conn, request_id, "TopUpPrepayment", request)
            if stored is not None:
                return pb.TopUpPrepaymentResponse.FromString(stored)
            await store.lock_aggregates_for_posting(conn)  # same lock order as a settlement's post
            terms = await store.lock_prepayment(conn, region)
            month = clearing_month(now_utc())
            month = first_open_month(month, await store.closed_months_from(conn, month))
            await self.partitions.ensure_within(conn, month)
            await store.post_topup(conn, month, region, topup_postings(region, request.amount_fen))
            required_fen = request.required_fen or terms["required_fen"] or request.amount_fen
            balance_fen = await store.balance_of(conn, prepayment(region))
            state = prepayment_state(balance_fen, required_fen, terms["threshold_bp"])
            await store.set_prepayment_terms(conn, region, required_fen, terms["threshold_bp"],
                                             terms["topup_requested_fen"] if state.threshold_crossed else 0)
            response = pb.TopUpPrepaymentResponse(prepayment=prepayment_message(
                (await store.prepayment_rows(conn, region))[0]))
            await remember(conn, request_id, "TopUpPrepayment", request, response, key)
        log.info("prepayment_topped_up", insured_region=region, amount_fen=request.amount_fen, balance_fen=balance_fen)
        return response

    @rpc
    async def ListPrepayments(self, request: pb.ListPrepaymentsRequest, context: grpc.aio.ServicerContext) -> pb.ListPrepaymentsResponse:
        region = check_region(request.insured_region, "insured_region") if request.insured_region else None
        async with self.pool.acquire() as conn:
            rows = await store.prepayment_rows(conn, region)
        return pb.ListPrepaymentsResponse(prepayments=[prepayment_message(row) for row in rows])

    @rpc
    async def CancelClaim(self, request: pb.CancelClaimRequest, context: grpc.aio.ServicerContext) -> pb.CancelClaimResponse:
        request_id = check_request_id(request.request_id)
        settlement_id = check_request_id(request.settlement_id, "settlement_id")
        structlog.contextvars.bind_contextvars(request_id=request_id, settlement_id=settlement_id)
        async with self.pool.acquire() as conn:
            stored = await stored_answer(conn, request_id, "CancelClaim", request)
            row = await store.find_claim(conn, settlement_id)
        if row is not None:
            require_caller(current_decision(), "claim_of_caller", row["treating_region"],
                           f"cancel claim {settlement_id}: sent by the agency of {row['treating_region']}")
        if stored is not None:
            return pb.CancelClaimResponse.FromString(stored)
        if row is None:
            raise NotFound(f"settlements/{settlement_id}")
        if row["status"] == "cancelled" and str(row["cancel_request_id"]) == request_id:
            # Completed by reconciliation under this very cancel id (finish_cancel): the cancel's answer (issue 9
            # item 9), as the treating agency replays it.
            return pb.CancelClaimResponse.FromString(bytes(row["cancel_response"]))
        check_cancellable(row["status"])
        # The settlement's undo lock is held from the dispute check to the undo, across the insured agency's cancel:
        # a dispute raised or accepted meanwhile (every dispute step takes this lock) would otherwise be adjusted on
        # top of the undo, giving its amount back twice. A reversal (冲正) does not wait for it. A cancel is rare;
        # holding a connection for it is cheap.
        async with self.pool.acquire() as conn, holding_settlement_key(conn, undo_key(settlement_id)):
            await self.refuse_if_disputed(conn, settlement_id, "cancel")
            # Committed before the call: if this process dies after the insured agency cancelled, no dispute
            # adjustment is posted until the cancel is completed (retry or reconciliation) — migration 0021.
            await store.record_cancel_intent(conn, settlement_id, request_id, now_utc())
            try:
                answer = await self.stub_for(row["insured_region"]).CancelAdjudication(
                    insured_agency_pb2.CancelAdjudicationRequest(request_id=request_id, settlement_id=settlement_id),
                    timeout=downstream_timeout_s(context))
            except grpc.aio.AioRpcError as error:
                if is_definite(error):  # refused there, nothing cancelled: the intent is void
                    await store.drop_cancel_intent(conn, settlement_id)
                raise
            cancelled_at = now_utc()
            settlement = pb.SettleClaimResponse.FromString(bytes(row["response"])).settlement
            settlement.status = types_pb2.SETTLEMENT_STATUS_CANCELLED
            settlement.adjudication.ytd_after.CopyFrom(answer.adjudication.ytd_after)
            response = pb.CancelClaimResponse(settlement=settlement)
            await self.partitions.ensure(clearing_month(cancelled_at))
            async with conn.transaction(isolation="read_committed"):
                locked = await store.find_claim(conn, settlement_id, lock=True)
                await store.drop_cancel_intent(conn, settlement_id)  # the insured agency answered: no longer unknown
                stored = await replay(conn, request_id, "CancelClaim", request)
                if stored is not None:  # a concurrent copy of this request finished first
                    return pb.CancelClaimResponse.FromString(stored)
                if locked["status"] == "cancelled" and str(locked["cancel_request_id"]) == request_id:
                    return pb.CancelClaimResponse.FromString(bytes(locked["cancel_response"]))  # reconciliation did
                # Under the lock, whatever happened meanwhile: a reversal (冲正) that won the race leaves the row
                # reversed, and only a settled row can be cancelled (issue 9 item 8).
                check_cancellable(locked["status"])
                await self.post_undo(conn, locked, "cancel", cancelled_at)
                await store.mark_cancelled(conn, settlement_id, request_id, response.SerializeToString(), cancelled_at)
                await remember(conn, request_id, "CancelClaim", request, response, request_key(locked))
        log.info("claim_cancelled")
        return response

    @rpc
    async def ReverseClaim(self, request: pb.ReverseClaimRequest, context: grpc.aio.ServicerContext) -> pb.ReverseClaimResponse:
        """冲正 (2601): record the reversal (blocking the id), reverse at the insured agency, then undo here."""
        return await self.reverse_claim(request, downstream_timeout_s(context))

    async def reverse_claim(self, request: pb.ReverseClaimRequest, timeout_s: float | None,
                            only_if_pending: bool = False) -> pb.ReverseClaimResponse:
        """The reversal; with `only_if_pending` (reconciliation's own), nothing happens unless the claim is still
        pending when its id is locked — a retry from the treating agency may have completed it meanwhile."""
        request_id = check_request_id(request.request_id)
        settlement_id = check_request_id(request.settlement_id, "settlement_id")
        treating_region = check_region(request.treating_region, "treating_region")
        insured_region = check_region(request.insured_region, "insured_region")
        structlog.contextvars.bind_contextvars(request_id=request_id, settlement_id=settlement_id)
        now_month = clearing_month(now_utc())
        await self.partitions.ensure(now_month)
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            stored = await replay(conn, request_id, "ReverseClaim", request)
            if stored is not None:
                return pb.ReverseClaimResponse.FromString(stored)
            await lock_settlement_key(conn, settlement_id)
            claim = await store.find_claim(conn, settlement_id, lock=True)
            if claim is not None:
                require_caller(current_decision(), "claim_of_caller", claim["treating_region"],
                               f"reverse claim {settlement_id}: sent by the agency of {claim['treating_region']}")
            if claim is not None and (claim["treating_region"], claim["insured_region"]) != (treating_region, insured_region):
                raise InvalidField("insured_region", "the claim was recorded between other regions")
            self.stub_for(insured_region)
            reversal = await store.find_reversal(conn, settlement_id)
            if only_if_pending and reversal is None and (claim is None or claim["status"] != "pending"):
                raise PreconditionFailed("settlement_id", "is no longer pending")
            if reversal is not None and reversal["status"] == "done":
                response = pb.ReverseClaimResponse.FromString(bytes(reversal["response"]))
                await remember(conn, request_id, "ReverseClaim", request, response,
                               request_key(claim, insured_region, now_month))
                return response
            if reversal is None:
                await self.refuse_if_disputed(conn, settlement_id, "reverse")
                await store.begin_reversal(conn, settlement_id, request_id)
            outcome = reversal_outcome(claim["status"] if claim else None)
            if outcome is not ReversalOutcome.REVERSED:  # nothing reached the insured agency, or nothing stands
                response = pb.ReverseClaimResponse(outcome=convert.OUTCOMES[outcome])
                await store.finish_reversal(conn, settlement_id, outcome.value, response.SerializeToString())
                await remember(conn, request_id, "ReverseClaim", request, response,
                               request_key(claim, insured_region, now_month))
                log.info("claim_reversed", outcome=outcome.value)
                return response
        # Committed: from here a late SettleClaim of this id is refused, so reversing downstream is final.
        answer = await self.stub_for(insured_region).ReverseAdjudication(
            insured_agency_pb2.ReverseAdjudicationRequest(request_id=request_id, settlement_id=settlement_id),
            timeout=timeout_s)
        return await self.undo_claim(request_id, request, settlement_id, answer)

    async def undo_claim(self, request_id: str, request: pb.ReverseClaimRequest, settlement_id: str,
                         answer: insured_agency_pb2.ReverseAdjudicationResponse) -> pb.ReverseClaimResponse:
        """The insured agency has reversed: mirror a settled claim's ledger transaction and mark it reversed."""
        reversed_at = now_utc()
        await self.partitions.ensure(clearing_month(reversed_at))
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            await lock_settlement_key(conn, settlement_id)
            reversal = await store.find_reversal(conn, settlement_id)
            if reversal["status"] == "done":  # a concurrent copy finished first
                return pb.ReverseClaimResponse.FromString(bytes(reversal["response"]))
            claim = await store.find_claim(conn, settlement_id, lock=True)
            outcome = reversal_outcome(claim["status"])
            response = pb.ReverseClaimResponse(outcome=convert.OUTCOMES[outcome])
            if claim["status"] == "settled":
                settlement = pb.SettleClaimResponse.FromString(bytes(claim["response"])).settlement
                settlement.status = types_pb2.SETTLEMENT_STATUS_REVERSED
                if answer.HasField("adjudication"):
                    settlement.adjudication.ytd_after.CopyFrom(answer.adjudication.ytd_after)
                response.settlement.CopyFrom(settlement)
                await self.post_undo(conn, claim, "reversal", reversed_at)
            if claim["status"] in ("pending", "settled"):
                await store.mark_reversed(conn, settlement_id, pb.SettleClaimResponse(
                    settlement=response.settlement).SerializeToString() if response.HasField("settlement") else None,
                                          reversed_at)
            await store.finish_reversal(conn, settlement_id, outcome.value, response.SerializeToString())
            await remember(conn, request_id, "ReverseClaim", request, response, request_key(claim))
        log.info("claim_reversed", outcome=outcome.value)
        return response

    @staticmethod
    async def refuse_if_disputed(conn, settlement_id: str, verb: str) -> None:  # noqa: ANN001
        """A settlement with a dispute that is not rejected is not undone: the undo gives the whole fund pay back,
        and an accepted or upheld dispute gives its amount back too (twice). Its disputes are decided first."""
        for dispute in await dispute_store.of_settlement(conn, settlement_id):
            if dispute.state is not disputes.State.REJECTED:
                raise PreconditionFailed("settlement_id", f"is disputed (拒付 {dispute.dispute_key}, "
                                                          f"{dispute.state.value}): it cannot be {verb}d while a "
                                                          "dispute on it stands")

    async def post_undo(self, conn, claim, kind: str, committed_at) -> None:  # noqa: ANN001
        """Mirror the claim's settlement transaction, clearing in the month the undo is committed in
        (SPEC §7 adjustment) or the next open one."""
        settlement_id = str(claim["settlement_id"])
        original = await ledger_sql.postings_of(conn, settlement_id, "settlement", store.LEG_COLUMNS)
        await store.lock_aggregates_for_posting(conn)
        month = clearing_month(committed_at)
        month = first_open_month(month, await store.closed_months_from(conn, month))
        await self.partitions.ensure_within(conn, month)
        await store.post_transaction(conn, settlement_id, kind, month, mirror(original), claim["insured_region"],
                                     claim["treating_region"], claim["fund_pay_fen"])

    async def finish_cancel(self, settlement_id: str, cancel_request_id: str) -> None:
        """Reconciliation: the insured agency cancelled (撤销) but the cancel never completed here (a crash in
        between). Complete it: post the mirror and mark the claim cancelled under the same cancel id."""
        cancelled_at = now_utc()
        await self.partitions.ensure(clearing_month(cancelled_at))
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            claim = await store.find_claim(conn, settlement_id, lock=True)
            if claim is None or claim["status"] != "settled":
                raise PreconditionFailed("settlement_id", "is no longer settled")
            settlement = pb.SettleClaimResponse.FromString(bytes(claim["response"])).settlement
            settlement.status = types_pb2.SETTLEMENT_STATUS_CANCELLED
            await self.post_undo(conn, claim, "cancel", cancelled_at)
            await store.mark_cancelled(conn, settlement_id, cancel_request_id,
                                       pb.CancelClaimResponse(settlement=settlement).SerializeToString(), cancelled_at)
            await store.drop_cancel_intent(conn, settlement_id)
        log.warning("claim_cancel_completed_by_reconciliation", settlement_id=settlement_id)

    async def day_detail(self, day, day_key, treating_region: str | None, insured_region: str | None) -> list[types_pb2.DetailLine]:  # noqa: ANN001
        async with self.pool.acquire() as conn:
            rows = await store.day_lines(conn, day, day_key, treating_region, insured_region)
        return [reconciling.detail_line(row, reversing=row["reversing"], treating_region=row["treating_region"],
                                        insured_region=row["insured_region"]) for row in rows]

    def day_filters(self, request) -> tuple:  # noqa: ANN001, ANN201
        day, day_key = reconciling.day_request(request)
        treating = check_region(request.treating_region, "treating_region") if request.treating_region else None
        insured = check_region(request.insured_region, "insured_region") if request.insured_region else None
        return day, day_key, treating, insured

    @rpc
    async def GetClaimDailyTotals(self, request: pb.GetClaimDailyTotalsRequest, context: grpc.aio.ServicerContext) -> pb.GetClaimDailyTotalsResponse:
        return pb.GetClaimDailyTotalsResponse(totals=reconciling.totals(await self.day_detail(*self.day_filters(request))))

    @rpc_stream
    async def StreamClaimDailyDetail(self, request: pb.StreamClaimDailyDetailRequest, context: grpc.aio.ServicerContext):  # noqa: ANN201
        for line in await self.day_detail(*self.day_filters(request)):
            yield pb.StreamClaimDailyDetailResponse(line=line)

    @rpc
    async def ReconcileInsuredAgencies(self, request: pb.ReconcileInsuredAgenciesRequest, context: grpc.aio.ServicerContext) -> pb.ReconcileInsuredAgenciesResponse:
        day, grace_s, day_key = reconciling.reconcile_request(request)
        return pb.ReconcileInsuredAgenciesResponse(reports=await ClearingReconciliation(self).run(day, grace_s,
                                                                                                  day_key))

    @rpc
    async def GetClaim(self, request: pb.GetClaimRequest, context: grpc.aio.ServicerContext) -> pb.GetClaimResponse:
        settlement_id = check_request_id(request.settlement_id, "settlement_id")
        async with self.pool.acquire() as conn:
            row = await store.find_claim(conn, settlement_id)
        if row is not None:
            decision = current_decision()
            require(decision, "claim_involves_caller", decision is not None and decision.caller.subject in (
                row["treating_region"], row["insured_region"]), f"read claim {settlement_id}: between "
                f"{row['treating_region']} and {row['insured_region']}")
        if row is None or row["status"] in ("pending", "failed") or row["response"] is None:
            raise NotFound(f"settlements/{settlement_id}", "no settled claim with this id")
        stored = row["cancel_response"] if row["status"] == "cancelled" else row["response"]
        return pb.GetClaimResponse(settlement=pb.SettleClaimResponse.FromString(bytes(stored)).settlement)

    @rpc
    async def Translate(self, request: pb.TranslateRequest, context: grpc.aio.ServicerContext) -> pb.TranslateResponse:
        from_region = check_region(request.from_region, "from_region")
        code = check_text(request.code, "code", 64)
        to_region = check_region(request.to_region, "to_region") if request.to_region else None
        on = parse_day(request.on_date, "on_date")
        async with self.pool.acquire() as conn:
            _, source = await self.catalogue(conn, from_region, "from_region")
            destination = (await self.catalogue(conn, to_region, "to_region"))[1] if to_region else None
        result = translate(source, code, destination, on)
        if isinstance(result, Translated):
            return pb.TranslateResponse(
                mapped=True, national_code=result.national_code,
                relation=convert.RELATIONS.get(result.relation, 0),
                targets=[pb.TranslationTarget(local_code=target.local_code,
                                              relation=convert.RELATIONS.get(target.relation, 0), name=target.name)
                         for target in result.targets])
        return pb.TranslateResponse(mapped=False, national_code=result.national_code,
                                    unmapped_reason=result.reason.value)

    @rpc
    async def PublishCatalogue(self, request: pb.PublishCatalogueRequest, context: grpc.aio.ServicerContext) -> pb.PublishCatalogueResponse:
        check_request_id(request.request_id)
        region = check_region(request.region, "region")
        if request.version <= 0:
            raise InvalidField("version", "must be positive")
        catalogue = parsed_catalogue(request.csv_text, region)
        digest = sha256_of(request.csv_text)
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            existing = await store.catalogue_version(conn, region, request.version)
            if existing is not None and existing["sha256"] != digest:
                raise PreconditionFailed("version", f"version {request.version} of {region} was published with other content")
            if existing is None:
                await store.insert_catalogue(conn, region, request.version, digest, request.csv_text,
                                             len(catalogue.rows))
        self.catalogues.keep(region, request.version, catalogue)
        log.info("catalogue_published", region=region, version=request.version, rows=len(catalogue.rows))
        return pb.PublishCatalogueResponse(version=request.version, row_count=len(catalogue.rows))

    @rpc
    async def CloseMonth(self, request: pb.CloseMonthRequest, context: grpc.aio.ServicerContext) -> pb.CloseMonthResponse:
        request_id = check_request_id(request.request_id)
        month = check_month(request.month, "month")
        # The request is filed under its month; the clearings a close posts go into the current month.
        await self.partitions.ensure(month, clearing_month(now_utc()))
        await self.sweep_disputes()  # lapses due are adjusted before the close, in their own transactions
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            stored = await replay(conn, request_id, "CloseMonth", request)
            if stored is not None:
                return pb.CloseMonthResponse.FromString(stored)
            current = clearing_month(now_utc())
            if month >= current:  # the rest of the month would otherwise clear silently in the next one
                raise PreconditionFailed("month", f"{month} is not over: the current clearing month is {current} "
                                                  "(Asia/Shanghai); a month is closed once it has ended")
            await store.lock_aggregates_for_close(conn)  # waits for posts in flight; later posts see the close
            closed = await store.find_closing(conn, month)
            if closed is not None:  # closing twice returns the first result and changes nothing
                response = pb.CloseMonthResponse(closing=pb.MonthClosing.FromString(closed))
            else:
                earlier = await store.earliest_open_month_before(conn, month)
                if earlier is not None:
                    raise PreconditionFailed("month", f"{earlier} has obligations and is still open: close it first")
                cells = await store.month_cells(conn, month)
                if not request.allow_empty and not any(cell["settlements"] or cell["cancels"] or cell["adjustments"]
                                                     for cell in cells):
                    raise PreconditionFailed("month", f"{month} has no obligations; a closed month is closed for good, "
                                                      "so close an empty month only on purpose (allow_empty, --empty)")
                closing = month_closing(month, now_utc(), cells)
                await store.insert_closing(conn, month, closing.closed_at.ToDatetime(tzinfo=UTC),
                                           closing.SerializeToString())
                response = pb.CloseMonthResponse(closing=closing)
                await self.clear_regions_with_nothing_to_pay(conn, closing)
                await self.resize_prepayments(conn)
                log.info("month_closed", month=month, net_total_fen=closing.net_total_fen,
                         gross_total_fen=closing.gross_total_fen)
            await remember(conn, request_id, "CloseMonth", request, response, ("", month))
        return response

    # -- disputes (拒付 / 申诉, SPEC §12.3; services/clearinghouse/disputes.py) -------------------------------

    async def sweep_disputes(self) -> tuple:
        """Apply the lapses due now; returns (now, its clearing month) for the step that follows."""
        now = now_utc()
        month = clearing_month(now)
        await self.partitions.ensure(month)
        await dispute_store.sweep(self.pool, self.partitions, now, month)
        return now, month

    @staticmethod
    def step_now(now, month: str) -> disputes.Step:  # noqa: ANN001
        caller = current_caller()
        return disputes.Step(by=caller.path if caller is not None else "insecure", at=now, month=month)

    async def locked_dispute(self, conn, dispute_id: str) -> disputes.Dispute:  # noqa: ANN001
        """The dispute under its settlement's lock (every step of a dispute, and its adjustment, holds it)."""
        found = await dispute_store.find(conn, dispute_id)
        if found is None:
            raise NotFound(f"disputes/{dispute_id}", "no dispute with this id")
        await lock_disputed_settlement(conn, found.settlement_id)
        return await dispute_store.find(conn, dispute_id)

    @rpc
    async def RaiseDispute(self, request: pb.RaiseDisputeRequest, context: grpc.aio.ServicerContext) -> pb.RaiseDisputeResponse:
        dispute_key = check_request_id(request.request_id)
        settlement_id = check_request_id(request.settlement_id, "settlement_id")
        insured_region = check_region(request.insured_region, "insured_region")
        if request.rule_id and request.rule_id not in {rule.value for rule in RuleId}:
            raise InvalidField("rule_id", f"is not a rule id of SPEC §12.2 ({request.rule_id})")
        if request.amount_fen <= 0:
            raise InvalidField("amount_fen", "must be a positive number of fen")
        disputes.check_reason(request.reason, request.rule_id)
        now, month = await self.sweep_disputes()
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            await lock_disputed_settlement(conn, settlement_id)
            await lock_settlement_key(conn, dispute_key)
            first = await dispute_store.find(conn, dispute_key)
            if first is not None:
                differs = disputes.same_raise(first, settlement_id=settlement_id, amount_fen=request.amount_fen,
                                              rule_id=request.rule_id, reason=request.reason) \
                    if first.insured_region == insured_region else "insured_region"
                if differs is not None:
                    raise PreconditionFailed(differs, "differs from the dispute first raised with this request_id")
                return pb.RaiseDisputeResponse(dispute=dispute_store.message(first))
            claim = await store.find_claim(conn, settlement_id, lock=True)  # serialised with a cancel's post
            if claim is None or claim["insured_region"] != insured_region or claim["clearing_month"] is None:
                raise NotFound(f"settlements/{settlement_id}", f"no settled claim of a member of {insured_region}")
            if claim["status"] != "settled":
                raise PreconditionFailed("settlement_id", f"the settlement is {claim['status']}: nothing to dispute")
            if await store.find_reversal(conn, settlement_id) is not None:
                raise PreconditionFailed("settlement_id", "the settlement is being reversed (冲正): nothing to dispute")
            earlier = await dispute_store.of_settlement(conn, settlement_id)
            dispute = disputes.raise_dispute(
                dispute_key=dispute_key, settlement_id=settlement_id, insured_region=insured_region,
                treating_region=claim["treating_region"], hospital_code=claim["hospital_code"],
                settlement_month=claim["clearing_month"], fund_pay_fen=claim["fund_pay_fen"],
                claimed_fen=disputes.claimed_fen(earlier), amount_fen=request.amount_fen, rule_id=request.rule_id,
                reason=request.reason, step=self.step_now(now, month))
            await dispute_store.insert(conn, dispute)
        log.info("dispute_raised", dispute_id=dispute_key, amount_fen=dispute.amount_fen, rule_id=dispute.rule_id,
                 insured_region=insured_region, treating_region=dispute.treating_region)
        return pb.RaiseDisputeResponse(dispute=dispute_store.message(dispute))

    @rpc
    async def AnswerDispute(self, request: pb.AnswerDisputeRequest, context: grpc.aio.ServicerContext) -> pb.AnswerDisputeResponse:
        check_request_id(request.request_id)
        dispute_id = check_request_id(request.dispute_id, "dispute_id")
        answers = {pb.DISPUTE_ANSWER_ACCEPT: disputes.Answer.ACCEPT, pb.DISPUTE_ANSWER_APPEAL: disputes.Answer.APPEAL}
        if request.answer not in answers:
            raise InvalidField("answer", "must be DISPUTE_ANSWER_ACCEPT or DISPUTE_ANSWER_APPEAL")
        now, month = await self.sweep_disputes()
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            before = await self.locked_dispute(conn, dispute_id)
            require_caller(current_decision(), "dispute_treated_by_caller", before.treating_region,
                           f"answer dispute {dispute_id}: its hospital is of region {before.treating_region}")
            after = disputes.answer(before, answers[request.answer], request.appeal_text, self.step_now(now, month))
            after = await dispute_store.store_step(conn, self.partitions, before, after, now, month)
        log.info("dispute_answered", dispute_id=dispute_id, state=after.state.value)
        return pb.AnswerDisputeResponse(dispute=dispute_store.message(after))

    @rpc
    async def DecideDispute(self, request: pb.DecideDisputeRequest, context: grpc.aio.ServicerContext) -> pb.DecideDisputeResponse:
        check_request_id(request.request_id)
        dispute_id = check_request_id(request.dispute_id, "dispute_id")
        decisions = {pb.DISPUTE_DECISION_UPHELD: disputes.Decision.UPHELD,
                     pb.DISPUTE_DECISION_REJECTED: disputes.Decision.REJECTED}
        if request.decision not in decisions:
            raise InvalidField("decision", "must be DISPUTE_DECISION_UPHELD or DISPUTE_DECISION_REJECTED")
        now, month = await self.sweep_disputes()
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            before = await self.locked_dispute(conn, dispute_id)
            after = disputes.decide(before, decisions[request.decision], self.step_now(now, month))
            after = await dispute_store.store_step(conn, self.partitions, before, after, now, month)
        log.info("dispute_decided", dispute_id=dispute_id, state=after.state.value)
        return pb.DecideDisputeResponse(dispute=dispute_store.message(after))

    @rpc
    async def GetDispute(self, request: pb.GetDisputeRequest, context: grpc.aio.ServicerContext) -> pb.GetDisputeResponse:
        dispute_id = check_request_id(request.dispute_id, "dispute_id")
        await self.sweep_disputes()
        async with self.pool.acquire() as conn:
            found = await dispute_store.find(conn, dispute_id)
        if found is None:
            raise NotFound(f"disputes/{dispute_id}", "no dispute with this id")
        decision = current_decision()
        require(decision, "dispute_involves_caller", decision is not None and decision.caller.subject in (
            found.insured_region, found.treating_region), f"read dispute {dispute_id}: between "
            f"{found.insured_region} and {found.treating_region}")
        return pb.GetDisputeResponse(dispute=dispute_store.message(found))

    @rpc
    async def ListDisputes(self, request: pb.ListDisputesRequest, context: grpc.aio.ServicerContext) -> pb.ListDisputesResponse:
        region = check_region(request.region, "region") if request.region else None
        month = check_month(request.settlement_month, "settlement_month") if request.settlement_month else None
        await self.sweep_disputes()
        async with self.pool.acquire() as conn:
            found = await dispute_store.listed(conn, region, month)
        return pb.ListDisputesResponse(disputes=[dispute_store.message(item) for item in found])

    async def clear_regions_with_nothing_to_pay(self, conn, closing: pb.MonthClosing) -> None:  # noqa: ANN001
        """A region whose net position is zero has no transfer to wait for: its clearing is posted at the close."""
        for position in closing.positions:
            if position.net_fen == 0:
                await self.post_region_clearing(conn, closing, position.region, None, "")

    async def post_region_clearing(self, conn, closing: pb.MonthClosing, region: str, request_id: str | None,  # noqa: ANN001
                                   reference: str) -> None:
        """Post the region's clearing of the closed month (clearing.ledger.clearing_postings) in the open month of
        its commit, and record that the region is cleared. The caller holds the aggregates lock."""
        cleared_at = now_utc()
        postings = clearing_postings(region, [(cell.insured_region, cell.treating_region, cell.amount_fen)
                                              for cell in closing.cells])
        tx_id = None
        if postings:
            booking = clearing_month(cleared_at)
            booking = first_open_month(booking, await store.closed_months_from(conn, booking))
            await self.partitions.ensure_within(conn, booking)
            tx_id = await store.post_clearing(conn, booking, closing.month, region, postings)
        net_fen = next(item.net_fen for item in closing.positions if item.region == region)
        await store.insert_month_clearing(conn, closing.month, region, net_fen, tx_id, request_id, reference, cleared_at)
        log.info("region_cleared", month=closing.month, region=region, net_fen=net_fen)

    @rpc
    async def ConfirmTransfer(self, request: pb.ConfirmTransferRequest, context: grpc.aio.ServicerContext) -> pb.ConfirmTransferResponse:
        request_id = check_request_id(request.request_id)
        month = check_month(request.month, "month")
        region = check_region(request.region, "region")
        if not 0 < request.amount_fen <= limits.PREPAYMENT_FEN_MAX:
            raise InvalidField("amount_fen", f"must be a positive number of fen, at most {limits.PREPAYMENT_FEN_MAX}")
        reference = check_text(request.reference, "reference", 64) if request.reference else ""
        await self.partitions.ensure(month, clearing_month(now_utc()))
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            stored = await replay(conn, request_id, "ConfirmTransfer", request)
            if stored is not None:
                return pb.ConfirmTransferResponse.FromString(stored)
            closed = await store.find_closing(conn, month)
            if closed is None:
                raise PreconditionFailed("month", f"{month} is not closed: its transfers are not known yet")
            closing = pb.MonthClosing.FromString(closed)
            transfer = hub_transfer_of(closing, region)
            if transfer is None:
                raise PreconditionFailed("region", f"{region} has no transfer to pay in {month}")
            if request.amount_fen != transfer.amount_fen:
                raise InvalidField("amount_fen", f"the {month} transfer of {region} is {transfer.amount_fen} fen")
            await store.lock_aggregates_for_posting(conn)  # the lock order of a settlement's post
            await store.lock_prepayment(conn, region)
            earlier = (await store.month_clearings(conn, month)).get(region)
            if earlier is not None:
                raise PreconditionFailed("region", f"the {month} transfer of {region} was confirmed at "
                                                   f"{earlier['cleared_at'].isoformat()} (request {earlier['request_id']})")
            await self.post_region_clearing(conn, closing, region, request_id, reference)
            cleared = await store.month_clearings(conn, month)
            statuses = transfer_statuses(closing, cleared)
            prepayment_row = await self.refresh_prepayment_warning(conn, region)
            response = pb.ConfirmTransferResponse(
                transfer=next(item for item in statuses if item.region == region), state=month_state(statuses),
                prepayment=prepayment_message(prepayment_row))
            await remember(conn, request_id, "ConfirmTransfer", request, response, (region, month))
        log.info("transfer_confirmed", month=month, region=region, amount_fen=request.amount_fen,
                 month_state=pb.MonthState.Name(response.state))
        return response

    async def refresh_prepayment_warning(self, conn, region: str):  # noqa: ANN001, ANN201 - a prepayment_rows record
        """Warn and request a top-up when the prepayment stands at or above its threshold, withdraw the request
        when it no longer does; returns the region's prepayment row. The caller holds its lock."""
        row = (await store.prepayment_rows(conn, region))[0]
        state = prepayment_state(row["balance_fen"], row["required_fen"], row["threshold_bp"])
        topup_fen = max(0, row["required_fen"] - row["balance_fen"]) if state.threshold_crossed else 0
        if topup_fen and not row["topup_requested_fen"]:
            PREPAYMENT_WARNINGS.labels("clearinghouse", "", region).inc()
            log.warning("prepayment_threshold_reached", insured_region=region, usage_bp=state.usage_bp,
                        balance_fen=row["balance_fen"], topup_requested_fen=topup_fen)
        PREPAYMENT_USAGE.labels("clearinghouse", "", region).set(state.usage_bp / 10_000)  # bp → 0–1: display only
        await store.set_prepayment_terms(conn, region, row["required_fen"], row["threshold_bp"], topup_fen)
        return (await store.prepayment_rows(conn, region))[0]

    async def resize_prepayments(self, conn, only: str | None = None) -> None:  # noqa: ANN001
        """Size every region's prepayment from its outflow over the last closed months — every region, also one
        absent from the month just closed (SPEC §7) — and warn where it now stands at or above its threshold."""
        months, outflows = await store.recent_outflows(conn, OUTFLOW_WINDOW_MONTHS)
        regions = {*self.insured_stubs, *outflows, *await store.prepayment_regions(conn)}
        for region in sorted(regions if only is None else {only}):
            terms = await store.lock_prepayment(conn, region)
            required_fen = required_prepayment_fen(outflows.get(region, [0] * len(months)), terms["months"]) \
                if months else 0
            if required_fen > 0:  # no outflow in the window keeps what the operator set
                await store.set_prepayment_terms(conn, region, required_fen, terms["threshold_bp"],
                                                 terms["topup_requested_fen"])
            await self.refresh_prepayment_warning(conn, region)

    @rpc
    async def SetPrepaymentTerms(self, request: pb.SetPrepaymentTermsRequest, context: grpc.aio.ServicerContext) -> pb.SetPrepaymentTermsResponse:
        request_id = check_request_id(request.request_id)
        region = check_region(request.insured_region, "insured_region")
        if not 1 <= request.months <= PREPAYMENT_MONTHS_MAX:
            raise InvalidField("months", f"must be from 1 to {PREPAYMENT_MONTHS_MAX}")
        if not 1 <= request.threshold_bp <= 10_000:
            raise InvalidField("threshold_bp", "must be from 1 to 10000 basis points")
        self.stub_for(region)  # NOT_FOUND for a region without an insured agency
        key = (region, clearing_month(now_utc()))  # no month in the request: the log's row is filed under today's
        await self.partitions.ensure(key[1])
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            stored = await replay(conn, request_id, "SetPrepaymentTerms", request)
            if stored is not None:
                return pb.SetPrepaymentTermsResponse.FromString(stored)
            await store.lock_aggregates_for_posting(conn)
            terms = await store.lock_prepayment(conn, region)
            await store.set_prepayment_terms(conn, region, terms["required_fen"], request.threshold_bp,
                                             terms["topup_requested_fen"], months=request.months)
            await self.resize_prepayments(conn, only=region)
            response = pb.SetPrepaymentTermsResponse(prepayment=prepayment_message(
                (await store.prepayment_rows(conn, region))[0]))
            await remember(conn, request_id, "SetPrepaymentTerms", request, response, key)
        log.info("prepayment_terms_set", insured_region=region, months=request.months, threshold_bp=request.threshold_bp)
        return response

    @rpc_stream
    async def StreamStatement(self, request: pb.StreamStatementRequest, context: grpc.aio.ServicerContext):  # noqa: ANN201
        region = check_region(request.region, "region")
        month = check_month(request.month, "month")
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            closed = await store.find_closing(conn, month)
            if closed is None:
                raise PreconditionFailed("month", f"{month} is not closed: statements are of closed months")
            totals = await store.statement_totals(conn, [month], region)
            closing = pb.MonthClosing.FromString(closed)
            yield pb.StreamStatementResponse(summary=statements.month_summary(
                region, closing, totals, await self.clearing_status(conn, closing, region)))
            async for row in conn.cursor(store.STATEMENT_ENTRIES_SQL, month, region, prefetch=500):
                yield pb.StreamStatementResponse(entry=statement_entry(row))
            for row in await conn.fetch(store.DISPUTE_ENTRIES_SQL, month, region):
                yield pb.StreamStatementResponse(entry=statement_entry(row))
            for row in await conn.fetch(store.DISPUTES_OF_MONTH_SQL, month, region):
                yield pb.StreamStatementResponse(dispute=dispute_store.message(dispute_store.from_row(row)))

    @rpc
    async def GetYearSummary(self, request: pb.GetYearSummaryRequest, context: grpc.aio.ServicerContext) -> pb.GetYearSummaryResponse:
        region = check_region(request.region, "region")
        year = check_year(request.year, "year")
        months = statements.months_of(year)
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            closings = await store.closings_in(conn, months)
            closed = sorted(closings)
            summaries = []
            for month in closed:
                closing = pb.MonthClosing.FromString(closings[month])
                summaries.append(statements.month_summary(region, closing, await store.statement_totals(conn, [month], region),
                                                          await self.clearing_status(conn, closing, region)))
            recomputed = await store.statement_totals(conn, closed, region)
            with_obligations = await store.months_with_obligations(conn, months)
        totals = statements.add_up(summaries)
        statements.check_totals(totals, recomputed)
        return pb.GetYearSummaryResponse(
            region=region, year=year, months=summaries, totals=totals,
            open_months=statements.open_months(year, set(closed), with_obligations, clearing_month(now_utc())))

    @staticmethod
    async def clearing_status(conn, closing: pb.MonthClosing, region: str) -> pb.TransferStatus | None:  # noqa: ANN001
        if region not in {item.region for item in closing.positions}:
            return None
        cleared = (await store.month_clearings(conn, closing.month)).get(region)
        return transfer_status(closing, region, cleared)

    @rpc
    async def GetMonthClosing(self, request: pb.GetMonthClosingRequest, context: grpc.aio.ServicerContext) -> pb.GetMonthClosingResponse:
        month = check_month(request.month, "month")
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            closed = await store.find_closing(conn, month)
            cleared = await store.month_clearings(conn, month)
        if closed is None:
            raise NotFound(f"months/{month}", "the month is not closed")
        closing = pb.MonthClosing.FromString(closed)
        statuses = transfer_statuses(closing, cleared)
        return pb.GetMonthClosingResponse(closing=closing, state=month_state(statuses), transfers=statuses)


def statement_entry(row) -> pb.StatementEntry:  # noqa: ANN001 - a record of store.STATEMENT_ENTRIES_SQL
    return pb.StatementEntry(
        settlement_id=str(row["settlement_id"]), kind=row["kind"], insured_region=row["insured_region"],
        treating_region=row["treating_region"], hospital_code=row["hospital_code"],
        admitted_on=row["admitted_on"].isoformat() if row["admitted_on"] else "",
        discharged_on=row["discharged_on"].isoformat() if row["discharged_on"] else "",
        total_fen=row["total_fen"], hifp_fen=row["hifp_fen"] or 0, hifmi_fen=row["hifmi_fen"] or 0,
        maf_fen=row["maf_fen"] or 0, fund_pay_fen=row["fund_pay_fen"], psn_pay_fen=row["psn_pay_fen"],
        principal_diagnosis=row["principal_diagnosis"] or "", procedures=row["procedures"] or [],
        med_type=row["med_type"])


def prepayment_message(row) -> pb.Prepayment:  # noqa: ANN001 - an asyncpg record of store.prepayment_rows
    state = prepayment_state(row["balance_fen"], row["required_fen"], row["threshold_bp"])
    return pb.Prepayment(insured_region=row["insured_region"], balance_fen=row["balance_fen"],
                         required_fen=row["required_fen"], usage_bp=state.usage_bp, threshold_bp=row["threshold_bp"],
                         warning=state.threshold_crossed, exhausted=state.exhausted,
                         topup_requested_fen=row["topup_requested_fen"], months=row["months"])
