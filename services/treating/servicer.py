"""TreatingAgencyService: what a hospital's HIS calls (2201 admit, 2301 charges, 2303 quote, 2304 settle,
2305 cancel).

Personal data (SPEC §9): the patient's ID number and name stay here. Admit asks the patient's insured agency
once (VerifyMember, directly: the clearing house never sees the number) whether the ID number is the member's,
and refuses the admission when it is not; the claim downstream carries only the member number.

Lines are classified here with the treating region's catalogue (就医地目录). A same-region patient
is adjudicated by this region's own insured agency; everyone else goes through the clearing
house. Settle records a pending settlement and commits before calling downstream, so a retry of
the same request_id re-drives the same settlement id and nothing is paid twice.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime

import asyncpg
import grpc
import structlog
from clearinghouse.v1 import clearing_house_pb2, clearing_house_pb2_grpc, insured_agency_pb2, insured_agency_pb2_grpc
from clearinghouse.v1 import treating_agency_pb2 as pb
from clearinghouse.v1 import treating_agency_pb2_grpc as pb_grpc
from clearinghouse.v1 import types_pb2
from google.rpc import status_pb2

from clearing import limits
from clearing.bill import (
    Bill, BillLine, check_diagnoses, check_hospital_code, check_id_number, check_region, check_text, make_bill,
)
from clearing import catalogue_search
from clearing.catalogue import Catalogue, CatalogueRow
from clearing.classify import classify_bill
from clearing.outpatient.icd import national_icd
from clearing.outpatient.visit import Visit
from clearing.policy import Disease
from clearing.smart_audit.library import Action
from clearing.smart_audit.model import AuditResult
from clearing.smart_audit.report import member_facts_from_id_number
from clearing.smart_audit.rules import line_findings
from clearing.dates import check_month, check_year, first_open_month, parse_day
from clearing.lifecycle import ReversalOutcome, check_cancellable, check_not_reversed, reversal_outcome
from clearing.errors import InvalidField, NotAllowed, NotFound, PreconditionFailed, RequestConflict
from clearing.hospital_payment import (
    CasePayment, CrossRegionBalance, HospitalYear, Method, PaymentParams, PointValue, WeightTable, YearEnd,
    cross_region_balance, drg_year_end, drg_year_to_date, global_budget_year_end, hospital_years,
)
from clearing.hospital_payment.settle import MONTHS_PER_YEAR
from clearing.ledger import (
    check_payouts_match_ledger, mirror, payment_month_postings, payment_year_postings, payout_postings,
)
from clearing.drg.case import AGE_YEARS_MAX, BIRTH_WEIGHT_G_MAX
from clearing.medical_record import MedicalRecord, ages_at, check_discharge_status, check_procedures, check_whole
from services.common.batching import StreamBatcher
from services.common import convert, ledger_sql, reconciling
from services.common.catalogues import CatalogueVersions, parsed_catalogue, sha256_of
from services.common.hospital_payment import (
    MonthResult, case_payments_of, month_result, weight_table_from_json, weight_table_json, weights_from_stays,
)
from services.common.regions import load_payment_params
from services.common.clock import check_not_after_today, clearing_month, now_utc, shanghai_today
from services.common.errors import (
    StoredRefusal, downstream_conflict, downstream_timeout_s, is_definite, refusal_status, rpc, rpc_stream,
)
from services.common.requests import (
    check_request_id, lock_request, remember, replay, same_request_or_conflict, stored_answer,
)
from services.common.locks import lock_settlement_key
from services.common.metrics import SETTLEMENTS
from services.common.smart_audit import (
    AuditLibraries, audit_to_proto, blocked_refusal, load_audit_libraries, not_blocking, with_action,
)
from services.treating import store
from services.security.caller import current_decision
from services.security.party import Security
from services.security.policy import require_caller
from services.treating.reconciler import TreatingReconciliation
from services.security.audit_log import AuditLog

log = structlog.get_logger()
REASON_LENGTH_MAX = 256


class TreatingAgencyServicer(pb_grpc.TreatingAgencyServiceServicer):
    def __init__(self, region: str, pool: asyncpg.Pool, hospital_levels: dict[str, int],
                 clearing_house: clearing_house_pb2_grpc.ClearingHouseServiceStub,
                 local_insured: insured_agency_pb2_grpc.InsuredAgencyServiceStub, *, security: Security,
                 audit: AuditLibraries | None = None) -> None:
        self.region = region
        self.security = security  # this agency's identity and deny list: every call is authenticated with it
        self.pool = pool
        self.audit_log = AuditLog(pool, f"treating:{region}")  # operators' calls, recorded by the rpc decorators
        self.hospital_levels = hospital_levels
        self.clearing_house = clearing_house
        self.local_insured = local_insured
        # The insured agencies of the other regions, for VerifyMember only (services/stack/wiring.py).
        self.other_insured: dict[str, insured_agency_pb2_grpc.InsuredAgencyServiceStub] = {}
        # The batch stream this agency sends the clearing house its cross-region claims over (批量; wiring makes
        # it when batching is on); None: each claim goes as a SettleClaim call of its own.
        self.claim_batcher: StreamBatcher | None = None
        self.catalogues = CatalogueVersions()
        # Smart audit (智能审核): the knowledge base and this region's rule library, loaded once (versioned).
        self.audit = audit if audit is not None else load_audit_libraries(region)

    async def load_catalogue(self) -> None:
        """Warm the cache with the newest version (parsing is the slow part)."""
        async with self.pool.acquire() as conn:
            row = await store.latest_catalogue(conn)
        if row is not None:
            self.catalogues.put(self.region, row["version"], row["csv_text"])

    async def catalogue(self, conn: asyncpg.Connection) -> tuple[int, Catalogue]:
        """The current version of this region's catalogue, read from the database on every call, so every
        process of this agency classifies with the version the last import made current."""
        version = await store.current_catalogue_version(conn)
        if version is None:
            raise PreconditionFailed("catalogue", f"no catalogue of region {self.region} has been imported")
        return version, await self.catalogues.get(self.region, version, lambda: store.catalogue_text(conn, version))

    @rpc
    async def Admit(self, request: pb.AdmitRequest, context: grpc.aio.ServicerContext) -> pb.AdmitResponse:
        request_id = check_request_id(request.request_id)
        hospital_code = check_hospital_code(request.hospital_code, "hospital_code")
        level = self.hospital_levels.get(hospital_code)
        if level is None:
            raise NotAllowed(hospital_code, f"settle at the {self.region} agency: not one of its designated hospitals")
        patient = request.patient
        insured_region = check_region(patient.insured_region, "patient.insured_region")
        member_id = check_text(patient.member_id, "patient.member_id", 64)
        id_number = check_id_number(patient.id_number, "patient.id_number")
        name = check_text(patient.name, "patient.name", 64)
        admitted_on = check_not_after_today(parse_day(request.admitted_on, "admitted_on"), "admitted_on")
        diagnoses = check_diagnoses(list(request.diagnoses), "diagnoses")
        check_member_facts(id_number, admitted_on)
        record = admission_record(id_number, admitted_on, request)
        async with self.pool.acquire() as conn:
            earlier = await store.find_encounter_by_request(conn, request_id)
        if earlier is None:  # a retry of a recorded admission is replayed without asking again
            await self.verify_patient(insured_region, member_id, id_number, context)
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            await lock_request(conn, request_id)  # a concurrent copy waits here, then finds this one's encounter
            earlier = await store.find_encounter_by_request(conn, request_id)
            if earlier is not None:
                same_request_or_conflict(bytes(earlier["request"]), request)
                return pb.AdmitResponse(encounter_id=str(earlier["encounter_id"]), hospital_level=earlier["hospital_level"])
            encounter_id = str(uuid.uuid4())
            await store.insert_encounter(conn, encounter_id, request_id, request.SerializeToString(), hospital_code,
                                         level, insured_region, member_id, id_number, name, admitted_on,
                                         request.emergency, diagnoses, record)
        log.info("patient_admitted", encounter_id=encounter_id, hospital_code=hospital_code, id_number=id_number)
        return pb.AdmitResponse(encounter_id=encounter_id, hospital_level=level)

    @rpc
    async def RegisterVisit(self, request: pb.RegisterVisitRequest,
                            context: grpc.aio.ServicerContext) -> pb.RegisterVisitResponse:
        """门诊慢特病就诊登记: an encounter of one outpatient special-disease visit (med_type 14) on one day, checked
        as an admission is; its day is kept as the encounter's `admitted_on`, its disease beside it."""
        request_id = check_request_id(request.request_id)
        hospital_code = check_hospital_code(request.hospital_code, "hospital_code")
        level = self.hospital_levels.get(hospital_code)
        if level is None:
            raise NotAllowed(hospital_code, f"settle at the {self.region} agency: not one of its designated hospitals")
        patient = request.patient
        insured_region = check_region(patient.insured_region, "patient.insured_region")
        member_id = check_text(patient.member_id, "patient.member_id", 64)
        id_number = check_id_number(patient.id_number, "patient.id_number")
        name = check_text(patient.name, "patient.name", 64)
        visit_on = check_not_after_today(parse_day(request.visit_on, "visit_on"), "visit_on")
        disease = convert.from_enum(convert.SPECIAL_DISEASES, request.disease, "disease")
        check_member_facts(id_number, visit_on, "visit")
        async with self.pool.acquire() as conn:
            earlier = await store.find_encounter_by_request(conn, request_id)
        if earlier is None:  # a retry of a recorded registration is replayed without asking again
            await self.verify_patient(insured_region, member_id, id_number, context)
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            await lock_request(conn, request_id)
            earlier = await store.find_encounter_by_request(conn, request_id)
            if earlier is not None:
                same_request_or_conflict(bytes(earlier["request"]), request)
                return pb.RegisterVisitResponse(encounter_id=str(earlier["encounter_id"]),
                                                hospital_level=earlier["hospital_level"])
            encounter_id = str(uuid.uuid4())
            await store.insert_encounter(conn, encounter_id, request_id, request.SerializeToString(), hospital_code,
                                         level, insured_region, member_id, id_number, name, visit_on, False, (),
                                         visit_record(id_number, visit_on), disease=disease)
        log.info("visit_registered", encounter_id=encounter_id, hospital_code=hospital_code, disease=disease,
                 id_number=id_number)
        return pb.RegisterVisitResponse(encounter_id=encounter_id, hospital_level=level)

    def insured_agency(self, insured_region: str) -> insured_agency_pb2_grpc.InsuredAgencyServiceStub:
        if insured_region == self.region:
            return self.local_insured
        stub = self.other_insured.get(insured_region)
        if stub is None:
            raise NotFound(f"regions/{insured_region}", "no insured agency of this region is connected")
        return stub

    async def verify_patient(self, insured_region: str, member_id: str, id_number: str,
                             context: grpc.aio.ServicerContext) -> None:
        """The patient is the member: the insured agency compares the ID number with its keyed hash of the
        member's (anyone could otherwise settle on any member number). NOT_FOUND for an unknown member,
        FAILED_PRECONDITION naming `patient.id_number` for another person's number: the request is well formed,
        it does not agree with the insured region's register. An outage passes on (UNAVAILABLE: retry)."""
        try:
            answer = await self.insured_agency(insured_region).VerifyMember(insured_agency_pb2.VerifyMemberRequest(
                member_id=member_id, id_number=id_number), timeout=downstream_timeout_s(context))
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"regions/{insured_region}/members/{member_id}", "no such member") from None
            raise
        if not answer.matches:
            raise PreconditionFailed("patient.id_number", f"is not the ID number of member {member_id} of region "
                                                          f"{insured_region}")

    @rpc
    async def UploadCharges(self, request: pb.UploadChargesRequest, context: grpc.aio.ServicerContext) -> pb.UploadChargesResponse:
        request_id = check_request_id(request.request_id)
        encounter_id = check_request_id(request.encounter_id, "encounter_id")
        if not request.lines:
            raise InvalidField("lines", "must have at least one line")
        if len(request.lines) > limits.LINES_PER_UPLOAD_MAX:
            raise InvalidField("lines", f"must have at most {limits.LINES_PER_UPLOAD_MAX} lines per upload, got "
                                        f"{len(request.lines)}: upload a longer bill in several parts")
        new_lines = [convert.bill_line_from_proto(line, index) for index, line in enumerate(request.lines)]
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            encounter = await store.find_encounter(conn, encounter_id, lock=True)
            if encounter is None:
                raise NotFound(f"regions/{self.region}/encounters/{encounter_id}")
            own_encounter(encounter)
            await lock_request(conn, request_id)
            earlier = await store.find_upload(conn, request_id)
            if earlier is not None:
                same_request_or_conflict(bytes(earlier["request"]), request)
                return pb.UploadChargesResponse.FromString(bytes(earlier["response"]))
            if await store.live_settlement(conn, encounter_id) is not None:
                raise PreconditionFailed("encounter_id", "the encounter is already settled")
            check_service_dates(new_lines, encounter["admitted_on"], is_visit(encounter))
            so_far = await store.lines_so_far(conn, encounter_id, [line.line_id for line in new_lines])
            check_new_lines(so_far.uploaded, so_far.taken, new_lines)
            await store.insert_lines(conn, encounter_id, so_far.uploaded, new_lines)
            response = pb.UploadChargesResponse(  # the bill as it is now, without reading it again
                encounter_id=encounter_id, line_count=so_far.live + len(new_lines),
                total_fen=so_far.live_fen + sum(line.amount_fen for line in new_lines))
            await store.record_upload(conn, request_id, encounter_id, request.SerializeToString(),
                                      response.SerializeToString())
        return response

    @rpc
    async def VoidCharges(self, request: pb.VoidChargesRequest, context: grpc.aio.ServicerContext) -> pb.VoidChargesResponse:
        """退费: void uploaded lines of an encounter that is not settled; they leave the bill, kept on record."""
        request_id = check_request_id(request.request_id)
        encounter_id = check_request_id(request.encounter_id, "encounter_id")
        line_ids = check_line_ids(list(request.line_ids))
        if len(request.reason) > REASON_LENGTH_MAX:
            raise InvalidField("reason", f"is longer than {REASON_LENGTH_MAX} characters")
        reason = check_text(request.reason, "reason", REASON_LENGTH_MAX) if request.reason else ""
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            # The encounter's lock before the request id's, as UploadCharges and Settle take them.
            encounter = await store.find_encounter(conn, encounter_id, lock=True)
            if encounter is None:
                raise NotFound(f"regions/{self.region}/encounters/{encounter_id}")
            own_encounter(encounter)
            stored = await replay(conn, request_id, "VoidCharges", request)
            if stored is not None:
                return pb.VoidChargesResponse.FromString(stored)
            if await store.live_settlement(conn, encounter_id) is not None:
                raise PreconditionFailed("encounter_id", "the encounter has a settlement in progress or settled: "
                                                         "cancel (撤销) it before voiding its lines")
            states = await store.all_line_states(conn, encounter_id)
            for index, line_id in enumerate(line_ids):
                if line_id not in states:
                    raise InvalidField(f"line_ids[{index}]", f"{line_id!r} is not a line of the encounter")
                if states[line_id]:
                    raise InvalidField(f"line_ids[{index}]", f"{line_id!r} is voided already")
            voided = [line for line in await store.charge_lines(conn, encounter_id) if line.line_id in set(line_ids)]
            assert await store.void_lines(conn, encounter_id, line_ids, request_id, reason) == len(line_ids)
            bill = await store.charge_lines(conn, encounter_id)
            response = pb.VoidChargesResponse(encounter_id=encounter_id, line_count=len(bill),
                                              total_fen=sum(line.amount_fen for line in bill),
                                              voided_count=len(voided), voided_fen=sum(line.amount_fen for line in voided))
            await remember(conn, request_id, "VoidCharges", request, response)
        log.info("charges_voided", encounter_id=encounter_id, voided=len(voided), voided_fen=response.voided_fen)
        return response

    async def build_claim(self, conn: asyncpg.Connection, encounter_id: str, discharged_on_text: str,
                          diagnoses_override: list[str], settlement_id: str, settlement_day: date,
                          lock: bool = True, encounter: asyncpg.Record | None = None, discharge: object = None,
                          ) -> tuple[types_pb2.Claim, asyncpg.Record, AuditResult]:
        """Load the encounter (locked when settling; or take the one the caller has loaded and locked) and its
        lines, validate the bill and classify it (就医地目录). `settlement_day` is the day the settlement is made
        on (today, by the services' clock): the claim carries it to every party, which reconciles the settlement
        on it. Also the line rules' smart audit (智能审核) of the bill, with the same catalogue. `discharge`: the
        PreSettle or Settle request, whose procedures and discharge status the claim's stay carries."""
        bill, encounter = await self.load_bill(conn, encounter_id, discharged_on_text, diagnoses_override, lock,
                                               encounter, discharge)
        version, catalogue = await self.catalogue(conn)
        audit = self.audit_lines(bill, catalogue, encounter)
        classified = classify_bill(bill, catalogue)
        claim = types_pb2.Claim(
            settlement_id=settlement_id, treating_region=self.region, insured_region=encounter["insured_region"],
            member_id=encounter["member_id"], treating_catalogue_version=version,
            settlement_day=settlement_day.isoformat(),
            stay=convert.put_record(types_pb2.Stay(
                hospital_code=bill.hospital_code, hospital_level=bill.hospital_level,
                admitted_on=bill.admitted_on.isoformat(), discharged_on=bill.discharged_on.isoformat(),
                emergency=bill.emergency, diagnoses=list(bill.diagnoses)), bill.record),
            lines=[convert.line_class_to_proto(item) for item in classified])
        if is_visit(encounter):  # the prefixes classified it; every party takes them from the disease again
            del claim.stay.diagnoses[:]
            claim.med_type = types_pb2.MED_TYPE_OUTPATIENT_SPECIAL
            claim.disease = convert.SPECIAL_DISEASES[encounter["disease"]]
        return claim, encounter, audit

    async def load_bill(self, conn: asyncpg.Connection, encounter_id: str, discharged_on_text: str,
                        diagnoses_override: list[str], lock: bool = False, encounter: asyncpg.Record | None = None,
                        discharge: object = None, discharged_by_default: str = "") -> tuple[Bill, asyncpg.Record]:
        """The encounter's bill of its live lines, discharged on `discharged_on_text` (or, empty, on
        `discharged_by_default` for a stay: a visit's day is its own), validated; a stay's 病案首页 facts are the
        admission's (sex, age, birth weight) and `discharge`'s (a request with procedures and discharge_status;
        None: not given). A visit has none."""
        if encounter is None:
            encounter = await store.find_encounter(conn, encounter_id, lock=lock)
        if encounter is None:
            raise NotFound(f"regions/{self.region}/encounters/{encounter_id}")
        own_encounter(encounter)
        visit = is_visit(encounter)
        if not visit:
            diagnoses = check_diagnoses(diagnoses_override, "diagnoses") if diagnoses_override else tuple(encounter["diagnoses"])
            record = discharge_record(encounter, discharge)
        lines = tuple(await store.charge_lines(conn, encounter_id))
        if not lines:
            raise PreconditionFailed("encounter_id", "the encounter has no charge lines")
        if visit:
            check_no_stay_facts(discharge)
            return visit_bill(self.region, encounter, discharged_on_text, diagnoses_override, lines), encounter
        discharged_on_text = discharged_on_text or discharged_by_default
        bill = make_bill(self.region, encounter["hospital_code"], encounter["hospital_level"],
                         encounter["admitted_on"].isoformat(), discharged_on_text, encounter["emergency"], diagnoses, lines,
                         record)
        check_not_after_today(bill.discharged_on, "discharged_on")
        return bill, encounter

    def audit_lines(self, bill: Bill, catalogue: Catalogue, encounter: asyncpg.Record) -> AuditResult:
        """事前/事中 smart audit at the treating agency: the line rules (SEX, AGE, LEVEL, DAYQTY, BEDDAYS, EXCL, IDLE),
        the member's sex and birth date read from the ID number kept since admission. The cross-stay rules need
        the member's other stays: the insured agency runs them (SPEC §12.2 stage scope)."""
        member = member_facts_from_id_number(encounter["id_number"])
        findings = line_findings(bill, catalogue, self.audit.knowledge, self.audit.rules, member)
        return AuditResult(findings, self.audit.knowledge.version, self.audit.rules.version)

    @rpc
    async def AuditBill(self, request: pb.AuditBillRequest, context: grpc.aio.ServicerContext) -> pb.AuditBillResponse:
        """事前 advice: the line rules' findings on the bill so far; nothing is recorded."""
        encounter_id = check_request_id(request.encounter_id, "encounter_id")
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            bill, encounter = await self.load_bill(conn, encounter_id, request.discharged_on, list(request.diagnoses),
                                                   discharge=request, discharged_by_default=shanghai_today().isoformat())
            _, catalogue = await self.catalogue(conn)
        audit = self.audit_lines(bill, catalogue, encounter)
        return pb.AuditBillResponse(encounter_id=encounter_id, smart_audit=audit_to_proto(audit),
                                    line_count=len(bill.lines))

    @rpc
    async def PreSettle(self, request: pb.PreSettleRequest, context: grpc.aio.ServicerContext) -> pb.PreSettleResponse:
        encounter_id = check_request_id(request.encounter_id, "encounter_id")
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            claim, _, audit = await self.build_claim(conn, encounter_id, request.discharged_on,
                                                     list(request.diagnoses), str(uuid.uuid4()), shanghai_today(),
                                                     lock=False, discharge=request)
        timeout_s = downstream_timeout_s(context)
        if claim.insured_region == self.region:
            answer = await self.local_insured.QuoteAdjudication(
                insured_agency_pb2.QuoteAdjudicationRequest(claim=claim), timeout=timeout_s)
            settlement = local_settlement("", claim, answer.adjudication, types_pb2.SETTLEMENT_STATUS_PENDING)
        else:
            quoted = await self.clearing_house.QuoteClaim(clearing_house_pb2.QuoteClaimRequest(claim=claim),
                                                          timeout=timeout_s)
            settlement = quoted.settlement
        return pb.PreSettleResponse(settlement=settlement, smart_audit=audit_to_proto(audit))

    @rpc
    async def Settle(self, request: pb.SettleRequest, context: grpc.aio.ServicerContext) -> pb.SettleResponse:
        request_id = check_request_id(request.request_id)
        encounter_id = check_request_id(request.encounter_id, "encounter_id")
        structlog.contextvars.bind_contextvars(request_id=request_id)
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            # Lock the encounter before looking the request up: two concurrent copies of one request
            # queue here, and the second finds the first's pending row and replays or re-drives it.
            encounter = await store.find_encounter(conn, encounter_id, lock=True)
            if encounter is not None:  # else build_claim's NOT_FOUND, below
                own_encounter(encounter)
            await lock_settlement_key(conn, request_id)  # a reversal (冲正) of this request waits, or is seen
            check_not_reversed(await store.find_reversal(conn, request_id) is not None)
            earlier = await store.find_settlement_by_request(conn, request_id, lock=True)
            if earlier is not None:
                same_request_or_conflict(bytes(earlier["request"]), request)
                if earlier["status"] in ("settled", "cancelled"):
                    return pb.SettleResponse.FromString(bytes(earlier["response"]))
                if earlier["status"] == "failed":
                    raise StoredRefusal(status_pb2.Status.FromString(bytes(earlier["error"])))
                claim = types_pb2.Claim.FromString(bytes(earlier["claim"]))  # pending: drive it again
                recorded = recorded_audit(earlier)  # the audit it was recorded with, never audited again
            else:
                # The settlement id and its day are made here, once: a retry re-drives the stored claim, so
                # every party records the settlement on this day, whenever the claim reaches it.
                settlement_id, settlement_day = str(uuid.uuid4()), shanghai_today()
                claim, encounter, audit = await self.build_claim(conn, encounter_id, request.discharged_on,
                                                                 list(request.diagnoses), settlement_id,
                                                                 settlement_day, encounter=encounter, discharge=request)
                if await store.live_settlement(conn, encounter_id) is not None:
                    raise PreconditionFailed("encounter_id", "the encounter is already settled")
                if with_action(audit, Action.BLOCK):
                    # 事中: refused, nothing recorded (the transaction rolls back); the same bill gets the same
                    # answer on a retry, a bill whose violating lines were voided (退费) settles.
                    log.info("settlement_blocked_by_audit", encounter_id=encounter_id,
                             rules=sorted({item.rule_id.value for item in with_action(audit, Action.BLOCK)}))
                    raise blocked_refusal(audit)
                recorded = audit_to_proto(audit, not_blocking(audit))
                await store.insert_pending(conn, settlement_id, request_id, encounter_id, encounter["hospital_code"],
                                           claim.insured_region, claim.insured_region == self.region,
                                           request.SerializeToString(), claim.SerializeToString(),
                                           date.fromisoformat(claim.stay.discharged_on), settlement_day,
                                           audit.knowledge_version, audit.rules_version,
                                           recorded.SerializeToString(), tuple(claim.stay.procedures),
                                           claim.stay.discharge_status or None, encounter["med_type"])
        structlog.contextvars.bind_contextvars(settlement_id=claim.settlement_id)
        settlement = await self.settle_downstream(request_id, claim, context)
        if recorded is not None:
            settlement.smart_audit.CopyFrom(recorded)
        return await self.record_settled(request_id, settlement)

    async def settle_downstream(self, request_id: str, claim: types_pb2.Claim,
                                context: grpc.aio.ServicerContext) -> types_pb2.Settlement:
        """Send the claim to the local insured agency or the clearing house; record a definite refusal."""
        timeout_s = downstream_timeout_s(context)
        try:
            if claim.insured_region == self.region:
                answer = await self.local_insured.Adjudicate(
                    insured_agency_pb2.AdjudicateRequest(request_id=claim.settlement_id, claim=claim), timeout=timeout_s)
                settlement = local_settlement(request_id, claim, answer.adjudication,
                                              types_pb2.SETTLEMENT_STATUS_SETTLED)
                settlement.settled_at.FromDatetime(now_utc())
                return settlement
            cleared = await self.clear_claim(
                clearing_house_pb2.SettleClaimRequest(request_id=claim.settlement_id, claim=claim), timeout_s)
            settlement = types_pb2.Settlement()
            settlement.CopyFrom(cleared.settlement)
            settlement.request_id = request_id
            return settlement
        except grpc.aio.AioRpcError as error:
            conflict = downstream_conflict(error, "request_id")
            if conflict is not None:
                raise conflict from None
            if is_definite(error):
                async with self.pool.acquire() as conn:
                    await store.mark_failed(conn, claim.settlement_id, refusal_status(error).SerializeToString())
            raise

    async def clear_claim(self, request: clearing_house_pb2.SettleClaimRequest,
                          timeout_s: float) -> clearing_house_pb2.SettleClaimResponse:
        """Step 2: the clearing house settles the claim, in a batch over this agency's stream or in a call of its
        own; the answer and every refusal are the same either way."""
        if self.claim_batcher is not None:
            return await self.claim_batcher.call(request, timeout_s)
        return await self.clearing_house.SettleClaim(request, timeout=timeout_s)

    async def record_settled(self, request_id: str, settlement: types_pb2.Settlement) -> pb.SettleResponse:
        response = pb.SettleResponse(settlement=settlement)
        split = settlement.adjudication.split
        claim = settlement.claim
        settled_at = settlement.settled_at.ToDatetime(tzinfo=UTC)  # the clearing house's, for a cross-region stay
        postings = payout_postings(claim.stay.hospital_code, self.region, claim.insured_region, split.fund_pay_fen)
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            await store.lock_payouts_for_posting(conn)
            # The payout month is when this agency records it, never the clearing house's settled_at: an answer
            # that arrives after the month's payout list was closed counts in the first open month.
            month = await payout_month_now(conn)
            if not await store.mark_settled(conn, settlement.settlement_id, response.SerializeToString(),
                                            split.total_fen, split.fund_pay_fen, split.psn_pay_fen, settled_at, month):
                row = await store.find_settlement_by_request(conn, request_id)
                check_not_reversed(row["status"] == "reversed")  # reversed while downstream answered
                if row["status"] == "failed":
                    raise StoredRefusal(status_pb2.Status.FromString(bytes(row["error"])))
                return pb.SettleResponse.FromString(bytes(row["response"]))  # a concurrent retry recorded it
            if postings:  # the hospital's receivable, in the payout month of the settlement (拨付)
                await store.post_transaction(conn, settlement.settlement_id, "settlement", month, postings)
        SETTLEMENTS.labels("treating", self.region, "local" if settlement.local else "cross_region", self.region,
                           claim.insured_region).inc()
        log.info("settlement_recorded", fund_pay_fen=split.fund_pay_fen, psn_pay_fen=split.psn_pay_fen,
                 local=settlement.local)
        return response

    @rpc
    async def Cancel(self, request: pb.CancelRequest, context: grpc.aio.ServicerContext) -> pb.CancelResponse:
        request_id = check_request_id(request.request_id)
        settlement_id = check_request_id(request.settlement_id, "settlement_id")
        structlog.contextvars.bind_contextvars(request_id=request_id, settlement_id=settlement_id)
        async with self.pool.acquire() as conn:
            stored = await stored_answer(conn, request_id, "Cancel", request)
            row = await store.find_settlement(conn, settlement_id)
        if row is not None:
            own_settlement(row)
        if stored is not None:
            return pb.CancelResponse.FromString(stored)
        if row is None:
            raise NotFound(f"regions/{self.region}/settlements/{settlement_id}")
        if row["status"] == "cancelled" and str(row["cancel_request_id"]) == request_id:
            return pb.CancelResponse.FromString(bytes(row["cancel_response"]))  # completed by reconciliation
        check_cancellable(row["status"])
        timeout_s = downstream_timeout_s(context)
        settlement = pb.SettleResponse.FromString(bytes(row["response"])).settlement
        if row["local"]:
            answer = await self.local_insured.CancelAdjudication(
                insured_agency_pb2.CancelAdjudicationRequest(request_id=request_id, settlement_id=settlement_id),
                timeout=timeout_s)
            settlement.adjudication.ytd_after.CopyFrom(answer.adjudication.ytd_after)
        else:
            answer = await self.clearing_house.CancelClaim(
                clearing_house_pb2.CancelClaimRequest(request_id=request_id, settlement_id=settlement_id,
                                                      reason=request.reason), timeout=timeout_s)
            settlement.adjudication.ytd_after.CopyFrom(answer.settlement.adjudication.ytd_after)
        settlement.status = types_pb2.SETTLEMENT_STATUS_CANCELLED
        response = pb.CancelResponse(settlement=settlement)
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            await store.lock_payouts_for_posting(conn)
            locked = await store.find_settlement(conn, settlement_id, lock=True)
            stored = await replay(conn, request_id, "Cancel", request)
            if stored is not None:  # a concurrent copy of this request finished first
                return pb.CancelResponse.FromString(stored)
            if locked["status"] == "cancelled" and str(locked["cancel_request_id"]) == request_id:
                return pb.CancelResponse.FromString(bytes(locked["cancel_response"]))  # reconciliation completed this cancel
            # Under the lock, whatever happened meanwhile: a reversal (冲正) that won the race leaves the row
            # reversed, and only a settled row can be cancelled (issue 9 item 8).
            check_cancellable(locked["status"])
            month = await payout_month_now(conn, not_before=locked["payout_month"])
            await mirror_receivable(conn, settlement_id, "cancel", month)
            await store.mark_cancelled(conn, settlement_id, request_id, response.SerializeToString(), now_utc(), month)
            await remember(conn, request_id, "Cancel", request, response)
        log.info("settlement_cancelled")
        return response

    @rpc
    async def Reverse(self, request: pb.ReverseRequest, context: grpc.aio.ServicerContext) -> pb.ReverseResponse:
        """冲正 (2601): the HIS does not know whether Settle `original_request_id` went through. Record the
        reversal first (from then on that Settle is refused), reverse downstream, then mark it here."""
        return await self.reverse(request, downstream_timeout_s(context))

    async def reverse(self, request: pb.ReverseRequest, timeout_s: float | None,
                      only_if_pending: bool = False) -> pb.ReverseResponse:
        """The reversal; with `only_if_pending` (reconciliation's own), nothing happens unless the settlement
        is still pending when the id is locked — a HIS retry may have completed it meanwhile."""
        request_id = check_request_id(request.request_id)
        original_request_id = check_request_id(request.original_request_id, "original_request_id")
        if len(request.reason) > REASON_LENGTH_MAX:
            raise InvalidField("reason", f"is longer than {REASON_LENGTH_MAX} characters")
        reason = request.reason
        structlog.contextvars.bind_contextvars(request_id=request_id, original_request_id=original_request_id)
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            stored = await replay(conn, request_id, "Reverse", request)
            if stored is not None:
                return pb.ReverseResponse.FromString(stored)
            await lock_settlement_key(conn, original_request_id)
            reversal = await store.find_reversal(conn, original_request_id)
            if reversal is not None and reversal["status"] == "done":  # reversed before under another id
                response = pb.ReverseResponse.FromString(bytes(reversal["response"]))
                await remember(conn, request_id, "Reverse", request, response)
                return response
            row = await store.find_settlement_by_request(conn, original_request_id, lock=True)
            if row is not None:  # a Settle never received has nothing to protect: its tombstone is recorded
                own_settlement(row)
            if only_if_pending and reversal is None and (row is None or row["status"] != "pending"):
                raise PreconditionFailed("original_request_id", "is no longer pending")
            if reversal is None:
                await store.begin_reversal(conn, original_request_id, request_id, reason,
                                           str(row["settlement_id"]) if row else None)
            outcome = reversal_outcome(row["status"] if row else None)
            if outcome is not ReversalOutcome.REVERSED:  # nothing went downstream, or nothing stands
                response = pb.ReverseResponse(outcome=convert.OUTCOMES[outcome],
                                              settlement_id=str(row["settlement_id"]) if row else "")
                await store.finish_reversal(conn, original_request_id, outcome.value, response.SerializeToString())
                await remember(conn, request_id, "Reverse", request, response)
                log.info("settlement_reversed", outcome=outcome.value)
                return response
        claim = types_pb2.Claim.FromString(bytes(row["claim"]))
        structlog.contextvars.bind_contextvars(settlement_id=claim.settlement_id)
        adjudication = await self.reverse_downstream(request_id, claim, timeout_s)
        return await self.record_reversed(request_id, request, claim.settlement_id, adjudication)

    async def reverse_downstream(self, request_id: str, claim: types_pb2.Claim,
                                 timeout_s: float | None) -> types_pb2.Adjudication | None:
        """Reverse at the local insured agency or through the clearing house; the adjudication as reversed
        (accumulators restored), or None when nothing had been adjudicated."""
        if claim.insured_region == self.region:
            answer = await self.local_insured.ReverseAdjudication(
                insured_agency_pb2.ReverseAdjudicationRequest(request_id=request_id,
                                                              settlement_id=claim.settlement_id), timeout=timeout_s)
            return answer.adjudication if answer.HasField("adjudication") else None
        answer = await self.clearing_house.ReverseClaim(
            clearing_house_pb2.ReverseClaimRequest(request_id=request_id, settlement_id=claim.settlement_id,
                                                   treating_region=claim.treating_region,
                                                   insured_region=claim.insured_region), timeout=timeout_s)
        return answer.settlement.adjudication if answer.HasField("settlement") else None

    async def record_reversed(self, request_id: str, request: pb.ReverseRequest, settlement_id: str,
                              adjudication: types_pb2.Adjudication | None) -> pb.ReverseResponse:
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            await store.lock_payouts_for_posting(conn)
            await lock_settlement_key(conn, request.original_request_id)
            reversal = await store.find_reversal(conn, request.original_request_id)
            if reversal["status"] == "done":  # a concurrent copy finished first
                return pb.ReverseResponse.FromString(bytes(reversal["response"]))
            row = await store.find_settlement(conn, settlement_id, lock=True)
            outcome = reversal_outcome(row["status"])
            response = pb.ReverseResponse(outcome=convert.OUTCOMES[outcome], settlement_id=settlement_id)
            if row["status"] == "settled":
                settlement = pb.SettleResponse.FromString(bytes(row["response"])).settlement
                settlement.status = types_pb2.SETTLEMENT_STATUS_REVERSED
                if adjudication is not None:
                    settlement.adjudication.ytd_after.CopyFrom(adjudication.ytd_after)
                response.settlement.CopyFrom(settlement)
            if row["status"] in ("pending", "settled"):
                stored = (pb.SettleResponse(settlement=response.settlement).SerializeToString()
                          if response.HasField("settlement") else None)
                month = None  # a settlement that never completed here counts in no payout list
                if row["status"] == "settled":
                    month = await payout_month_now(conn, not_before=row["payout_month"])
                    await mirror_receivable(conn, settlement_id, "reversal", month)
                await store.mark_reversed(conn, settlement_id, stored, now_utc(), month)
            await store.finish_reversal(conn, request.original_request_id, outcome.value, response.SerializeToString())
            await remember(conn, request_id, "Reverse", request, response)
        log.info("settlement_reversed", outcome=outcome.value)
        return response

    async def finish_cancel(self, settlement_id: str, cancel_request_id: str) -> None:
        """Reconciliation: downstream cancelled (撤销) but the cancel never completed here (a crash in between).
        Complete it under the same cancel id, so the HIS's retry of that Cancel gets the cancelled settlement."""
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            await store.lock_payouts_for_posting(conn)
            row = await store.find_settlement(conn, settlement_id, lock=True)
            if row is None or row["status"] != "settled":
                raise PreconditionFailed("settlement_id", "is no longer settled")
            settlement = pb.SettleResponse.FromString(bytes(row["response"])).settlement
            settlement.status = types_pb2.SETTLEMENT_STATUS_CANCELLED
            month = await payout_month_now(conn, not_before=row["payout_month"])
            await mirror_receivable(conn, settlement_id, "cancel", month)
            await store.mark_cancelled(conn, settlement_id, cancel_request_id,
                                       pb.CancelResponse(settlement=settlement).SerializeToString(), now_utc(), month)
        log.warning("cancel_completed_by_reconciliation", settlement_id=settlement_id)

    async def day_detail(self, day, day_key, hospital_code: str | None = None) -> list[types_pb2.DetailLine]:  # noqa: ANN001
        async with self.pool.acquire() as conn:
            rows = await store.day_lines(conn, day, day_key, hospital_code)
        return [reconciling.detail_line(row, request_id=str(row["request_id"]), local=row["local"],
                                        reversing=row["reversing"], treating_region=self.region,
                                        insured_region=row["insured_region"]) for row in rows]

    def day_filters(self, request) -> tuple:  # noqa: ANN001, ANN201
        day, day_key = reconciling.day_request(request)
        hospital = check_hospital_code(request.hospital_code, "hospital_code") if request.hospital_code else None
        return day, day_key, hospital

    @rpc
    async def GetDailyTotals(self, request: pb.GetDailyTotalsRequest, context: grpc.aio.ServicerContext) -> pb.GetDailyTotalsResponse:
        return pb.GetDailyTotalsResponse(totals=reconciling.totals(await self.day_detail(*self.day_filters(request))))

    @rpc_stream
    async def StreamDailyDetail(self, request: pb.StreamDailyDetailRequest, context: grpc.aio.ServicerContext):  # noqa: ANN201
        for line in await self.day_detail(*self.day_filters(request)):
            yield pb.StreamDailyDetailResponse(line=line)

    @rpc
    async def Reconcile(self, request: pb.ReconcileRequest, context: grpc.aio.ServicerContext) -> pb.ReconcileResponse:
        day, grace_s, day_key = reconciling.reconcile_request(request)
        reports = await TreatingReconciliation(self).run(day, grace_s, day_key)
        reports.append(await self.reconcile_deductions(day.isoformat(), reports[0].day_key))
        return pb.ReconcileResponse(reports=reports)

    @rpc
    async def GetSettlement(self, request: pb.GetSettlementRequest, context: grpc.aio.ServicerContext) -> pb.GetSettlementResponse:
        settlement_id = check_request_id(request.settlement_id, "settlement_id")
        async with self.pool.acquire() as conn:
            row = await store.find_settlement(conn, settlement_id)
        if row is not None:
            own_settlement(row)
        if row is None or row["status"] not in ("settled", "cancelled", "reversed") or row["response"] is None:
            raise NotFound(f"regions/{self.region}/settlements/{settlement_id}")
        stored = row["cancel_response"] if row["status"] == "cancelled" else row["response"]
        return pb.GetSettlementResponse(settlement=pb.SettleResponse.FromString(bytes(stored)).settlement)

    async def sync_dispute_deductions(self) -> int:
        """Book, once each, the dispute adjustments the clearing house has posted against this region's hospitals
        (扣款, SPEC §12.3; migration 0014). Asked before every payout close (reconciliation books them too, see
        `reconcile_deductions`); when the clearing house cannot be reached the close freezes what was booked so far
        (logged) and the next month's list has the rest. Returns how many were booked now."""
        try:
            adjusted = await self.adjusted_disputes(3.0)
        except grpc.aio.AioRpcError as error:
            log.warning("dispute_deductions_not_synced", code=error.code().name)
            return 0
        return len(await self.book_deductions(adjusted))

    async def adjusted_disputes(self, timeout_s: float) -> list[clearing_house_pb2.Dispute]:
        """The disputes the clearing house has adjusted against this region's hospitals."""
        answer = await self.clearing_house.ListDisputes(clearing_house_pb2.ListDisputesRequest(region=self.region),
                                                        timeout=timeout_s)
        return [item for item in answer.disputes if item.treating_region == self.region and item.adjusted_month]

    async def book_deductions(self, adjusted: list[clearing_house_pb2.Dispute]) -> list[str]:
        """Book those of `adjusted` not booked yet, each once (under its id's lock), in the month the clearing house
        adjusted in — both ledgers count it in the same month — or the first open payout month after it when that
        list is closed. Returns the ids booked now."""
        booked = []
        async with self.pool.acquire() as conn:
            done = await store.deducted_dispute_ids(conn)
            for dispute in adjusted:
                if dispute.dispute_id in done:
                    continue
                async with conn.transaction(isolation="read_committed"):
                    await lock_settlement_key(conn, dispute.dispute_id)
                    if dispute.dispute_id in await store.deducted_dispute_ids(conn):  # a concurrent sync booked it
                        continue
                    await store.lock_payouts_for_posting(conn)
                    month = first_open_month(dispute.adjusted_month,
                                             await store.closed_payout_months_from(conn, dispute.adjusted_month))
                    postings = mirror(payout_postings(dispute.hospital_code, self.region, dispute.insured_region,
                                                      dispute.amount_fen))
                    tx_id = await store.post_transaction(conn, dispute.settlement_id, "dispute", month, postings)
                    await store.insert_deduction(conn, dispute.dispute_id, dispute.settlement_id,
                                                 dispute.hospital_code, dispute.insured_region, dispute.amount_fen,
                                                 dispute.adjusted_month, month, tx_id, now_utc())
                booked.append(dispute.dispute_id)
                log.info("dispute_deducted", dispute_id=dispute.dispute_id, payout_month=month,
                         amount_fen=dispute.amount_fen)
        return booked

    async def reconcile_deductions(self, day: str, day_key: int) -> types_pb2.ReconciliationReport:
        """Reconciliation of the dispute deductions with the clearing house (all of them, whatever the day): its
        adjustments against this region's hospitals and this agency's deductions, count and amount; an adjustment
        not booked here is booked (the repair), a deduction the clearing house does not know is reported."""
        pair = f"treating_agency:{self.region}<->clearing_house:disputes"
        adjusted = await self.adjusted_disputes(30.0)
        async with self.pool.acquire() as conn:
            booked = {str(row["dispute_id"]): row["amount_fen"]
                      for row in await conn.fetch("SELECT dispute_id, amount_fen FROM dispute_deductions")}
        down = {item.dispute_id: item.amount_fen for item in adjusted}
        report = types_pb2.ReconciliationReport(
            pair=pair, day=day, day_key=day_key,
            upstream_totals=[types_pb2.DailyTotals(clearing_type="dispute_deductions", settled=len(booked),
                                                   fund_pay_fen=sum(booked.values()))],
            downstream_totals=[types_pb2.DailyTotals(clearing_type="dispute_deductions", settled=len(down),
                                                     fund_pay_fen=sum(down.values()))],
            totals_agreed=booked == down, lines_compared=0 if booked == down else len(set(booked) | set(down)))
        if booked == down:
            return report
        missing = [item for item in adjusted if item.dispute_id not in booked]
        done = set(await self.book_deductions(missing))
        for item in missing:
            report.repairs.append(types_pb2.Repair(
                key=item.dispute_id, pair=pair, upstream_status="", downstream_status="adjusted", action="book_deduction",
                note=f"adjusted at the clearing house in {item.adjusted_month}, not yet deducted here: booked now",
                repaired=item.dispute_id in done))
        for dispute_id in sorted(set(booked) - set(down)):
            report.repairs.append(types_pb2.Repair(
                key=dispute_id, pair=pair, upstream_status="deducted", downstream_status="", action="report",
                note="deducted here but not adjusted at the clearing house: for an operator to look into"))
        for dispute_id in sorted(set(booked) & set(down)):
            if booked[dispute_id] != down[dispute_id]:
                report.repairs.append(types_pb2.Repair(
                    key=dispute_id, pair=pair, upstream_status="deducted", downstream_status="adjusted",
                    action="report", note=f"deducted {booked[dispute_id]} fen here, adjusted {down[dispute_id]} fen"))
        return report

    @rpc
    async def ListPayouts(self, request: pb.ListPayoutsRequest, context: grpc.aio.ServicerContext) -> pb.ListPayoutsResponse:
        month = check_month(request.month, "month")
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            frozen = await store.find_payout_closing(conn, month)
            rows = await store.payouts(conn, month)
            # One snapshot: the list (from the settlements) must agree with the ledger, for the month
            # and over all months against the hospitals' running balances.
            check_payouts_match_ledger(fund_pay_by_hospital(rows), await store.receivable_movements(conn, month), month)
            check_payouts_match_ledger(fund_pay_by_hospital(await store.payouts(conn, None)),
                                       await store.receivable_balances(conn), "all months")
        running = payout_list(month, rows, None)
        if frozen is None:
            return running
        answer = pb.ListPayoutsResponse.FromString(frozen)  # the stored bytes, the same answer every time
        # A closed list never changes, and nothing counts in a closed month any more (the database refuses it):
        # what the settlements say of the month is still what was frozen.
        assert list(answer.payouts) == list(running.payouts) and answer.total_fen == running.total_fen, \
            f"the frozen payout list of {month} differs from its settlements"
        return answer

    @rpc
    async def ListSettledStays(self, request: pb.ListSettledStaysRequest,
                               context: grpc.aio.ServicerContext) -> pb.ListSettledStaysResponse:
        """The settled stays of a payout month or year with their grouping facts, for DRG weights and payments."""
        period = request.period
        if len(period) == 4:
            period = check_year(period, "period")
        else:
            try:
                period = check_month(period, "period")
            except InvalidField:
                raise InvalidField("period", "must be a payout month YYYY-MM or a year YYYY") from None
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await store.settled_stays(conn, period)
        return pb.ListSettledStaysResponse(stays=[settled_stay(row) for row in rows])

    @rpc
    async def ClosePayoutMonth(self, request: pb.ClosePayoutMonthRequest,
                               context: grpc.aio.ServicerContext) -> pb.ClosePayoutMonthResponse:
        """Freeze a month's payout list (拨付月结), as the clearing house closes a clearing month (CloseMonth)."""
        request_id = check_request_id(request.request_id)
        month = check_month(request.month, "month")
        await self.sync_dispute_deductions()  # deductions the clearing house posted count before the close
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            stored = await replay(conn, request_id, "ClosePayoutMonth", request)
            if stored is not None:
                return pb.ClosePayoutMonthResponse.FromString(stored)
            current = clearing_month(now_utc())
            if month >= current:  # the rest of the month would otherwise count silently in the next one
                raise PreconditionFailed("month", f"{month} is not over: the current payout month is {current} "
                                                  "(Asia/Shanghai); a month is closed once it has ended")
            await store.lock_payouts_for_close(conn)  # waits for posts in flight; later posts see the close
            closed = await store.find_payout_closing(conn, month)
            if closed is not None:  # closing twice returns the first result and changes nothing
                response = pb.ClosePayoutMonthResponse(payout_list=pb.ListPayoutsResponse.FromString(closed))
            else:
                earlier = await store.earliest_open_payout_month_before(conn, month)
                if earlier is not None:
                    raise PreconditionFailed("month", f"{earlier} has payouts and is still open: close it first")
                rows = await store.payouts(conn, month)
                if not rows and not request.allow_empty:
                    raise PreconditionFailed("month", f"{month} has no payouts; a closed month is closed for good, "
                                                      "so close an empty month only on purpose (allow_empty, --empty)")
                check_payouts_match_ledger(fund_pay_by_hospital(rows), await store.receivable_movements(conn, month),
                                           month)
                frozen = payout_list(month, rows, now_utc())
                await store.insert_payout_closing(conn, month, frozen.closed_at.ToDatetime(tzinfo=UTC),
                                                  frozen.SerializeToString())
                response = pb.ClosePayoutMonthResponse(payout_list=frozen)
                log.info("payout_month_closed", month=month, hospitals=len(frozen.payouts), total_fen=frozen.total_fen)
            await remember(conn, request_id, "ClosePayoutMonth", request, response)
        return response

    @rpc
    async def CloseHospitalPaymentMonth(self, request: pb.CloseHospitalPaymentMonthRequest,
                                        context: grpc.aio.ServicerContext) -> pb.CloseHospitalPaymentMonthResponse:
        """Pay the hospitals for a closed payout month (月度预拨), computed here; posted once, or validate_only."""
        month = check_month(request.month, "month")
        weights_year = check_year(request.weights_year or month[:4], "weights_year")
        special = check_special_review_ids(request.special_review_case_ids)
        params = self.payment_params()
        normalized = pb.CloseHospitalPaymentMonthRequest(month=month, weights_year=weights_year,
                                                         special_review_case_ids=special)
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed",
                                                                 readonly=request.validate_only):
            if not request.validate_only:
                await store.lock_payment_closings(conn)  # one post at a time; a repeat then finds the first
            posted = await store.find_payment_closing(conn, month)
            if posted is not None:
                return same_payment_request(posted, normalized)
            frozen_payouts = await store.find_payout_closing(conn, month)
            if frozen_payouts is None:
                raise PreconditionFailed("month", f"payout month {month} is not closed: its stays and receivable "
                                                  "movements are final only once it is (ClosePayoutMonth)")
            payouts = pb.ListPayoutsResponse.FromString(frozen_payouts)
            table, table_json = await self.payment_weights(conn, month[:4], weights_year, params)
            month_stays = [settled_stay(row) for row in await store.settled_stays(conn, month)]
            try:
                result = month_result(self.region, month, weights_year, table, params, month_stays, special)
            except InvalidField as error:  # the core names its own argument; the request's field is this one
                if error.field.startswith("special_review"):
                    raise InvalidField("special_review_case_ids", error.reason) from None
                raise
            response = month_payment_response(normalized, params, result, payouts)
            if request.validate_only:
                return response
            posted_at = now_utc()
            response.posted = True
            response.posted_at.FromDatetime(posted_at)
            await store.insert_payment_closing(conn, month, normalized.SerializeToString(),
                                               response.SerializeToString(), posted_at)
            if table_json is not None:
                await store.insert_weight_table(conn, month[:4], weights_year, table_json)
            for hospital in response.hospitals:
                postings = payment_month_postings(hospital.hospital_code, self.region, hospital.receivable_fen,
                                                  hospital.hold_back_fen, hospital.paid_fen)
                if postings:
                    await store.post_payment(conn, month, hospital.hospital_code, postings)
        log.info("hospital_payment_month_posted", month=month, hospitals=len(response.hospitals),
                 paid_fen=response.paid_fen)
        return response

    @rpc
    async def CloseHospitalPaymentYear(self, request: pb.CloseHospitalPaymentYearRequest,
                                       context: grpc.aio.ServicerContext) -> pb.CloseHospitalPaymentYearResponse:
        """The year-end clearing (年终清算) of the hospitals' payments; posted once, or validate_only (a
        year-to-date preview on an unfinished year)."""
        year = check_year(request.year, "year")
        params = self.payment_params()
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed",
                                                                 readonly=request.validate_only):
            if not request.validate_only:
                await store.lock_payment_closings(conn)
            posted = await store.find_payment_closing(conn, year)
            if posted is not None:
                return pb.CloseHospitalPaymentYearResponse.FromString(posted["response"])
            months = {row["period"]: pb.CloseHospitalPaymentMonthResponse.FromString(row["response"])
                      for row in await store.payment_closings_of_year(conn, year)}
            every_month = [f"{year}-{number:02d}" for number in range(1, MONTHS_PER_YEAR + 1)]
            payouts_closed = await store.closed_payout_months_of_year(conn, year)
            unfinished = [month for month in every_month if month not in months or month not in payouts_closed]
            if unfinished and not request.validate_only:
                first = unfinished[0]
                what = "payout month" if first not in payouts_closed else "payment month"
                raise PreconditionFailed("year", f"{what} {first} of {year} is not closed yet: the year end clears "
                                                 "a year whose every payout month is closed and payment month posted")
            weights_year = next(iter(months.values())).weights_year if months else year
            table, _ = await self.payment_weights(conn, year, weights_year, params)
            stays = [settled_stay(row) for row in await store.settled_stays(conn, year)]
            special = sorted({case_id for month in months.values() for case_id in month.special_review_case_ids})
            payments = case_payments_of(self.region, table, params, stays, special)
            response = year_end_response(year, params, payments, list(months.values()),
                                         year_to_date=bool(unfinished))
            if request.validate_only:
                return response
            posted_at = now_utc()
            response.posted = True
            response.posted_at.FromDatetime(posted_at)
            await store.insert_payment_closing(conn, year, request.SerializeToString(), response.SerializeToString(),
                                               posted_at)
            for hospital in response.hospitals:
                postings = payment_year_postings(hospital.hospital_code, self.region, hospital.held_back_fen,
                                                 hospital.settlement_fen)
                if postings:
                    await store.post_payment(conn, year, hospital.hospital_code, postings)
        log.info("hospital_payment_year_posted", year=year, hospitals=len(response.hospitals))
        return response

    def payment_params(self) -> PaymentParams:
        """This region's [hospital_payment] parameters (services/regions/payment/<region>.toml)."""
        try:
            return load_payment_params(self.region)
        except InvalidField as error:
            raise PreconditionFailed("region", f"{self.region} cannot pay its hospitals: {error}") from None

    async def payment_weights(self, conn: asyncpg.Connection, payment_year: str, weights_year: str,
                              params: PaymentParams) -> tuple[WeightTable, str | None]:
        """The payment year's frozen weight table, or (not stored yet) the one computed from `weights_year`'s
        settled stays with its JSON to store when the month is posted."""
        stored = await store.find_weight_table(conn, payment_year)
        if stored is not None:
            if stored["weights_year"] != weights_year:
                raise PreconditionFailed("weights_year", f"{payment_year} is paid with the weights of "
                                                         f"{stored['weights_year']}, frozen with its first posted month")
            return weight_table_from_json(stored["weight_table"]), None
        history = [settled_stay(row) for row in await store.settled_stays(conn, weights_year)]
        table = weights_from_stays(history, params, "weights_year", weights_year)
        return table, weight_table_json(table)

    @rpc
    async def ImportCatalogue(self, request: pb.ImportCatalogueRequest, context: grpc.aio.ServicerContext) -> pb.ImportCatalogueResponse:
        request_id = check_request_id(request.request_id)
        catalogue = parsed_catalogue(request.csv_text, self.region)  # errors name the row
        digest = sha256_of(request.csv_text)
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            stored = await replay(conn, request_id, "ImportCatalogue", request)
            if stored is not None:
                return pb.ImportCatalogueResponse.FromString(stored)
            await store.lock_catalogue_versions(conn)
            version = await self.version_for_import(conn, request_id, digest, request.csv_text, len(catalogue.rows))
        await self.clearing_house.PublishCatalogue(
            clearing_house_pb2.PublishCatalogueRequest(request_id=request_id, region=self.region, version=version,
                                                       csv_text=request.csv_text),
            timeout=downstream_timeout_s(context, default_s=60.0))
        self.catalogues.keep(self.region, version, catalogue)
        response = pb.ImportCatalogueResponse(version=version, sha256=digest, row_count=len(catalogue.rows))
        async with self.pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            # Current only now that the clearing house has it; published before remembered: a retry after a crash
            # in between publishes again, idempotently.
            await store.mark_catalogue_published(conn, version)
            await conn.execute("INSERT INTO requests (request_id, rpc, request, response) VALUES ($1, $2, $3, $4) "
                               "ON CONFLICT (request_id) DO NOTHING", uuid.UUID(request_id), "ImportCatalogue",
                               request.SerializeToString(), response.SerializeToString())
        log.info("catalogue_imported", version=version, rows=len(catalogue.rows))
        return response

    @rpc
    async def SearchCatalogue(self, request: pb.SearchCatalogueRequest,
                              context: grpc.aio.ServicerContext) -> pb.SearchCatalogueResponse:
        """The rows of the version in force with a local code, or matching a text (a read: nothing is written)."""
        code, text = catalogue_search.check_query(request.code, request.text)
        on = parse_day(request.on_date, "on_date") if request.on_date else None
        limit = catalogue_search.check_limit(request.limit)
        async with self.pool.acquire() as conn:
            version, catalogue = await self.catalogue(conn)
        found = catalogue_search.search(catalogue, code=code, text=text, on=on, limit=limit)
        return pb.SearchCatalogueResponse(version=version, items=[catalogue_item(row) for row in found.rows],
                                          truncated=found.truncated)

    @staticmethod
    async def version_for_import(conn: asyncpg.Connection, request_id: str, digest: str, csv_text: str,
                                 row_count: int) -> int:
        """The version in force after importing `csv_text`: the newest import wins. The text of the version in
        force keeps its number (nothing changes); any other text, the text of an earlier version included (the
        region went back to it), becomes a new version. A retry finds the version its first attempt made."""
        made = await store.catalogue_by_request(conn, request_id)
        if made is not None:
            if made["sha256"] != digest:
                raise RequestConflict("csv_text")
            return made["version"]
        latest = await store.newest_import(conn)
        if latest is not None and latest["sha256"] == digest:
            return latest["version"]
        return await store.insert_catalogue(conn, request_id, digest, csv_text, row_count)


def catalogue_item(row: CatalogueRow) -> pb.CatalogueItem:
    """A catalogue row as SearchCatalogue answers it: the CSV's columns (SPEC §4.1)."""
    return pb.CatalogueItem(
        local_code=row.local_code, national_code=row.national_code,
        relation=row.relation.value if row.relation else "", kind=row.kind.value, name=row.name,
        grade=row.grade.value, selfpay_bp=row.selfpay_bp, price_cap_fen=row.price_cap_fen, restriction=row.restriction,
        valid_from=row.valid_from.isoformat(), valid_to=row.valid_to.isoformat() if row.valid_to else "")


async def payout_month_now(conn: asyncpg.Connection, not_before: str | None = None) -> str:
    """The payout month of what this agency records now: the month of its own clock (Asia/Shanghai), or the first
    open month after it when that month's list is closed already — an adjustment, never an edit of a closed list.
    An undo (`not_before`: its settlement's month) never counts before its settlement. The caller holds the
    posting lock (store.lock_payouts_for_posting), so no close commits in between."""
    month = max(clearing_month(now_utc()), not_before or "")
    return first_open_month(month, await store.closed_payout_months_from(conn, month))


async def mirror_receivable(conn: asyncpg.Connection, settlement_id: str, kind: str, payout_month: str) -> None:
    """Undo the hospital's receivable of a settled settlement (a cancel or a reversal), in the payout month of
    the undo — never an edit of an earlier month. A settlement with no fund share posted nothing."""
    original = await ledger_sql.postings_of(conn, settlement_id, "settlement")
    if original:
        await store.post_transaction(conn, settlement_id, kind, payout_month, mirror(original))


def payout_list(month: str, rows: list[asyncpg.Record], closed_at: datetime | None) -> pb.ListPayoutsResponse:
    """A month's payout list per hospital; closed (frozen) when `closed_at` is given. Every total is the sum of
    its parts."""
    payouts = [pb.HospitalPayout(**dict(row)) for row in rows]
    for payout in payouts:
        assert payout.local_fen + payout.cross_region_fen == payout.fund_pay_fen
    response = pb.ListPayoutsResponse(month=month, payouts=payouts, total_fen=sum(item.fund_pay_fen for item in payouts),
                                      closed=closed_at is not None)
    if closed_at is not None:
        response.closed_at.FromDatetime(closed_at)
    return response


def member_key(insured_region: str, member_id: str) -> str:
    """An opaque key per member: the same member, the same key; neither the ID number nor the member id shows."""
    return hashlib.sha256(f"{insured_region}/{member_id}".encode()).hexdigest()[:24]


def settled_stay(row: asyncpg.Record) -> pb.SettledStay:
    """One settled stay's facts, its stay as in the claim it was settled with."""
    return pb.SettledStay(
        settlement_id=str(row["settlement_id"]), insured_region=row["insured_region"], local=row["local"],
        member_key=member_key(row["insured_region"], row["member_id"]),
        stay=types_pb2.Claim.FromString(row["claim"]).stay, total_fen=row["total_fen"],
        fund_pay_fen=row["fund_pay_fen"], payout_month=row["payout_month"])


def fund_pay_by_hospital(rows: list[asyncpg.Record]) -> dict[str, int]:
    return {row["hospital_code"]: row["fund_pay_fen"] for row in rows}


def check_service_dates(lines: list[BillLine], admitted_on: date, visit: bool = False) -> None:
    """A charge is for a day of the stay so far: not before admission (a bill with such a line could never be
    settled), not after today; a visit's charge is of the visit day (SPEC §13.3)."""
    for index, line in enumerate(lines):
        if visit and line.service_date != admitted_on:
            raise InvalidField(f"lines[{index}].service_date",
                               f"{line.service_date.isoformat()} is not the visit day {admitted_on.isoformat()}")
        if line.service_date < admitted_on:
            raise InvalidField(f"lines[{index}].service_date",
                               f"{line.service_date.isoformat()} is before the admission day {admitted_on.isoformat()}")
        check_not_after_today(line.service_date, f"lines[{index}].service_date")


def check_line_ids(line_ids: list[str]) -> list[str]:
    if not line_ids:
        raise InvalidField("line_ids", "must name at least one line")
    if len(line_ids) > limits.LINES_PER_BILL_MAX:
        raise InvalidField("line_ids", f"must name at most {limits.LINES_PER_BILL_MAX} lines")
    seen: set[str] = set()
    for index, line_id in enumerate(line_ids):
        check_text(line_id, f"line_ids[{index}]", limits.LINE_ID_LENGTH_MAX)
        if line_id in seen:
            raise InvalidField(f"line_ids[{index}]", f"{line_id!r} appears twice")
        seen.add(line_id)
    return line_ids


def check_new_lines(uploaded: int, taken: frozenset[str], new_lines: list[BillLine]) -> None:
    """An upload keeps the bill within its size and never repeats a line id: `uploaded` lines are on the encounter
    already (voided ones too), `taken` are the upload's ids among them."""
    if uploaded + len(new_lines) > limits.LINES_PER_BILL_MAX:
        raise InvalidField("lines", f"the encounter would have more than {limits.LINES_PER_BILL_MAX} lines")
    seen = set(taken)
    for index, line in enumerate(new_lines):
        if line.line_id in seen:
            raise InvalidField(f"lines[{index}].line_id", f"{line.line_id!r} is already on the encounter")
        seen.add(line.line_id)


def local_settlement(request_id: str, claim: types_pb2.Claim, adjudication: types_pb2.Adjudication,
                     status: int) -> types_pb2.Settlement:
    """A same-region settlement: this region's own catalogue and policy, no clearing house."""
    return types_pb2.Settlement(
        name=f"regions/{claim.treating_region}/settlements/{claim.settlement_id}", settlement_id=claim.settlement_id,
        request_id=request_id, status=status, claim=claim, adjudication=adjudication,
        catalogue_rule=types_pb2.CATALOGUE_RULE_TREATING, local=True,
        flags=sorted({"UNMAPPED_LINE" for line in claim.lines if line.reason == types_pb2.LINE_REASON_UNMAPPED}))


def check_member_facts(id_number: str, admitted_on: date, what: str = "admission") -> None:
    """Smart audit reads the patient's sex and birth date from the ID number (SPEC §12.2 member facts): a number
    whose birth date is not a real day, or after the admission (or visit), is refused at admission, naming it."""
    facts = member_facts_from_id_number(id_number, "patient.id_number")
    if facts.birth_date > admitted_on:
        raise InvalidField("patient.id_number", f"its birth date is after the {what} day")


def visit_bill(region: str, encounter: asyncpg.Record, discharged_on_text: str, diagnoses: list[str],
               lines: tuple[BillLine, ...]) -> Bill:
    """A visit's bill as classification sees it (`Visit.for_classification`): one day, the disease's national ICD
    prefixes in the diagnoses' place (SPEC §13.4). The HIS sends no day but the visit's and no diagnoses."""
    visit_on = encounter["admitted_on"]
    if discharged_on_text and discharged_on_text != visit_on.isoformat():
        raise InvalidField("discharged_on", f"must be empty or the visit day {visit_on.isoformat()} on a visit")
    if diagnoses:
        raise InvalidField("diagnoses", "must be empty on a visit: its disease's ICD prefixes judge the lines")
    disease = Disease(encounter["disease"])
    visit = Visit(region, encounter["hospital_code"], encounter["hospital_level"], visit_on, disease, lines)
    return visit.for_classification(national_icd(disease))


def check_no_stay_facts(request: object) -> None:
    """A visit has no 病案首页 discharge facts: procedures or a discharge status sent with it are refused, naming them."""
    if request is None:
        return
    if list(getattr(request, "procedures", ())):
        raise InvalidField("procedures", "must be empty on a visit (an outpatient special-disease visit has no "
                                         "discharge record)")
    if getattr(request, "discharge_status", ""):
        raise InvalidField("discharge_status", "must be empty on a visit")


def visit_record(id_number: str, visit_on: date) -> MedicalRecord:
    """A visit's facts kept with its encounter: sex and age on the visit day (no birth weight, no procedures)."""
    facts = member_facts_from_id_number(id_number, "patient.id_number")
    age_years, age_days = ages_at(facts.birth_date, visit_on)
    return MedicalRecord(sex=facts.sex, age_years=age_years if age_years <= AGE_YEARS_MAX else None, age_days=age_days)


def is_visit(encounter: asyncpg.Record) -> bool:
    """An outpatient special-disease visit's encounter (med_type 14), not a stay's."""
    return encounter["med_type"] == store.MED_VISIT


def admission_record(id_number: str, admitted_on: date, request: pb.AdmitRequest) -> MedicalRecord:
    """The admission's 病案首页 facts: sex and age read from the ID number (as smart audit reads them), and the
    birth weight sent for a patient under one year (refused, naming it, for an older one)."""
    facts = member_facts_from_id_number(id_number, "patient.id_number")
    age_years, age_days = ages_at(facts.birth_date, admitted_on)
    weight = None
    if request.HasField("birth_weight_g"):
        weight = check_whole(request.birth_weight_g, "birth_weight_g", 1, BIRTH_WEIGHT_G_MAX)
        if age_years != 0:
            raise InvalidField("birth_weight_g", f"only for a patient under one year; the ID number's birth date "
                                                 f"makes the patient {age_years} on the admission day")
    # An ID number's birth date over 150 years back (a test or legacy number; Admit has always taken it) gives no
    # age rather than a refusal: the age only feeds DRG grouping.
    return MedicalRecord(sex=facts.sex, age_years=age_years if age_years <= AGE_YEARS_MAX else None,
                         age_days=age_days, birth_weight_g=weight)


def discharge_record(encounter: asyncpg.Record, request: object) -> MedicalRecord:
    """The stay's facts at discharge: the admission's, with the procedures and discharge status of `request` (a
    PreSettle, AuditBill or Settle request; None: not given)."""
    procedures = check_procedures(list(request.procedures), "procedures") if request is not None else ()
    status = check_discharge_status(request.discharge_status, "discharge_status") if request is not None else None
    return MedicalRecord(procedures=procedures, sex=encounter["sex"], age_years=encounter["age_years"],
                         age_days=encounter["age_days"], birth_weight_g=encounter["birth_weight_g"],
                         discharge_status=status)


def recorded_audit(row: asyncpg.Record) -> types_pb2.SmartAudit | None:
    """The smart audit a settlement row was recorded with (None for a row from before smart audit)."""
    return None if row["smart_audit"] is None else types_pb2.SmartAudit.FromString(bytes(row["smart_audit"]))


def own_encounter(encounter: asyncpg.Record) -> None:
    """A hospital works only on the encounters it admitted itself (the authorisation table's `own_encounter`)."""
    require_caller(current_decision(), "own_encounter", encounter["hospital_code"],
                   f"work on encounter {encounter['encounter_id']}: admitted by another hospital")


def own_settlement(row: asyncpg.Record) -> None:
    """A hospital cancels, reverses and reads only its own settlements (`own_settlement`)."""
    require_caller(current_decision(), "own_settlement", row["hospital_code"],
                   f"act on settlement {row['settlement_id']}: made by another hospital")


SPECIAL_REVIEW_MAX = 100_000


def check_special_review_ids(ids: list[str]) -> list[str]:
    """The 特病单议 settlement ids, sorted; each a UUID, none twice."""
    if len(ids) > SPECIAL_REVIEW_MAX:
        raise InvalidField("special_review_case_ids", f"must have at most {SPECIAL_REVIEW_MAX} ids")
    seen: set[str] = set()
    for index, case_id in enumerate(ids):
        canonical = check_request_id(case_id, f"special_review_case_ids[{index}]")
        if canonical != case_id:
            raise InvalidField(f"special_review_case_ids[{index}]", "must be a settlement id in canonical form")
        if case_id in seen:
            raise InvalidField(f"special_review_case_ids[{index}]", f"{case_id} appears twice")
        seen.add(case_id)
    return sorted(seen)


def cross_region_message(balance: CrossRegionBalance) -> pb.CrossRegionGainLoss:
    return pb.CrossRegionGainLoss(cases=balance.cases, points_e4=balance.points_e4,
                                  drg_payment_fen=balance.drg_payment_fen, fund_pay_fen=balance.fund_pay_fen,
                                  patients_fen=balance.patients_fen, gain_fen=balance.gain_fen)


def same_payment_request(posted: asyncpg.Record, normalized: pb.CloseHospitalPaymentMonthRequest
                         ) -> pb.CloseHospitalPaymentMonthResponse:
    """A posted month answers its stored result to the same request; another choice is refused naming it."""
    first = pb.CloseHospitalPaymentMonthRequest.FromString(posted["request"])
    if first.weights_year != normalized.weights_year:
        raise PreconditionFailed("weights_year", f"{normalized.month} was posted with the weights of "
                                                 f"{first.weights_year}; a posted month never changes")
    if list(first.special_review_case_ids) != list(normalized.special_review_case_ids):
        raise PreconditionFailed("special_review_case_ids", f"{normalized.month} was posted with another 特病单议 "
                                                            "choice; a posted month never changes")
    return pb.CloseHospitalPaymentMonthResponse.FromString(posted["response"])


def month_payment_response(request: pb.CloseHospitalPaymentMonthRequest, params: PaymentParams,
                           result: MonthResult, payouts: pb.ListPayoutsResponse) -> pb.CloseHospitalPaymentMonthResponse:
    """Per hospital with stays, payouts or a global budget: the core's month, plus its visits (by item) and the
    receivable the payment settles (the frozen payout list's net for it)."""
    computed = {item.hospital: item for item in result.payment.hospitals}
    listed = {item.hospital_code: item for item in payouts.payouts}
    methods: dict[str, Counter[Method]] = {}
    for payment in result.payments:
        methods.setdefault(payment.hospital, Counter())[payment.method] += 1
    hospitals = []
    for code in sorted(set(computed) | set(listed)):
        item, payout = computed.get(code), listed.get(code)
        count = methods.get(code, Counter())
        visits_fen = payout.outpatient_special_fen if payout is not None else 0
        row = pb.HospitalMonthPayment(
            hospital_code=code, cases=sum(count.values()), drg_cases=item.drg_cases if item else 0,
            by_item_cases=count[Method.BY_ITEM], fixed_price_cases=count[Method.FIXED_PRICE],
            global_budget_cases=count[Method.GLOBAL_BUDGET], high_outlier_cases=count[Method.HIGH_OUTLIER],
            low_outlier_cases=count[Method.LOW_OUTLIER], visits_fen=visits_fen,
            receivable_fen=payout.fund_pay_fen if payout is not None else 0,
            paid_fen=(item.paid_fen if item else 0) + visits_fen)
        if item is not None:
            row.points_e4, row.patients_fen, row.advance_fen = item.points_e4, item.patients_fen, item.advance_fen
            row.hold_back_fen, row.by_item_fen, row.fixed_price_fen = item.hold_back_fen, item.by_item_fen, \
                item.fixed_price_fen
            row.global_budget_fen, row.cost_fen = item.global_budget_fen, item.cost_fen
        hospitals.append(row)
    balance = result.cross_region
    grouping = result.grouping
    return pb.CloseHospitalPaymentMonthResponse(
        stays=grouping["stays"], grouped=grouping["grouped"], ungroupable_by_reason=grouping["ungroupable_by_reason"],
        month=request.month, weights_year=request.weights_year,
        special_review_case_ids=request.special_review_case_ids, budget_form=params.budget_form,
        provisional_point_value_fen=params.provisional_point_value_fen, hospitals=hospitals,
        paid_fen=sum(row.paid_fen for row in hospitals),
        cross_region=cross_region_message(balance))


def year_end_response(year: str, params: PaymentParams, payments: tuple[CasePayment, ...],
                      months: list[pb.CloseHospitalPaymentMonthResponse],
                      year_to_date: bool) -> pb.CloseHospitalPaymentYearResponse:
    """The DRG year end (or a year-to-date preview against ⌊budget × k ÷ 12⌋) and the global-budget hospitals',
    each against the advances its posted months paid."""
    paid: dict[str, list[int]] = {}  # hospital → [advances paid, hold-backs, global budget paid]
    for month in months:
        for item in month.hospitals:
            row = paid.setdefault(item.hospital_code, [0, 0, 0])
            row[0] += item.advance_fen - item.hold_back_fen
            row[1] += item.hold_back_fen
            row[2] += item.global_budget_fen
    months_posted = max(1, len(months))
    drg_years = [replace(item, advances_paid_fen=paid.get(item.hospital, [0, 0, 0])[0])
                 for item in hospital_years(payments, [])]
    drg_years += [HospitalYear(code, 0, 0, row[0]) for code, row in sorted(paid.items())
                  if row[0] and code not in {item.hospital for item in drg_years}]
    drg_years = [item for item in drg_years if item.hospital not in params.global_budgets]
    fund_budget_fen = params.year_budget_fen * months_posted // MONTHS_PER_YEAR if year_to_date \
        else params.year_budget_fen
    if any(item.points_e4 for item in drg_years):
        drg = drg_year_to_date(drg_years, params, months_posted) if year_to_date else drg_year_end(drg_years, params)
    else:  # no DRG points in the year (and so no advance): nothing shares the budget; 总额预付 still clears
        drg = YearEnd(PointValue(0, 1), 0, (), 0)
    clearings = [(clearing, False) for clearing in drg.hospitals]
    costs: dict[str, int] = {}
    for payment in payments:
        # a global budget is fund money: it is weighed against the fund's part of its stays (what the patients
        # paid at discharge is theirs, in either budget form)
        costs[payment.hospital] = costs.get(payment.hospital, 0) + payment.cost_fen - payment.patient_paid_fen
    for code, budget in params.global_budgets.items():
        scaled = params
        if year_to_date:  # the preview clears k twelfths of the annual amount
            scaled = replace(params, global_budgets={code: replace(
                budget, annual_fen=budget.annual_fen * months_posted // MONTHS_PER_YEAR)})
        advances = paid.get(code, [0, 0, 0])[2]
        clearings.append((global_budget_year_end(HospitalYear(code, 0, costs.get(code, 0), advances), scaled), True))
    value = drg.point_value
    balance = cross_region_balance(payments, None, value, params.deducts_patients)
    hospitals = [pb.HospitalYearClearing(
        hospital_code=item.hospital, global_budget=budgeted, points_e4=item.points_e4, cost_fen=item.cost_fen,
        payment_fen=item.payment_fen, retained_fen=item.retained_fen, shared_fen=item.shared_fen,
        final_fen=item.final_fen, patients_fen=item.patients_fen, fund_final_fen=item.fund_final_fen,
        advances_paid_fen=item.advances_paid_fen, held_back_fen=0 if budgeted else paid.get(item.hospital, [0, 0, 0])[1],
        settlement_fen=item.settlement_fen) for item, budgeted in sorted(clearings, key=lambda pair: pair[0].hospital)]
    return pb.CloseHospitalPaymentYearResponse(
        year=year, year_to_date=year_to_date, months_posted=len(months), budget_form=params.budget_form,
        fund_budget_fen=fund_budget_fen, gross_budget_fen=drg.budget_fen if drg.hospitals else fund_budget_fen,
        point_value_exact=f"{value.numerator}/{value.denominator}", point_value_fen_e4=value.fen_e4(),
        hospitals=hospitals,
        cross_region=cross_region_message(balance))
