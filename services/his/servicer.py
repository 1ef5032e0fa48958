"""HospitalService: many hospitals' HIS discharging generated patients through their treating agencies.

Each discharge is admission (2201), charge upload in batches (2301) and settlement (2304). A
call that times out or finds the agency unavailable is retried with the same request id, which
the agencies guarantee is safe (SPEC §8).
"""

from __future__ import annotations

import asyncio
from datetime import date
from uuid import UUID

import asyncpg
import grpc
import structlog
from grpc_status import rpc_status
from clearinghouse.v1 import hospital_pb2 as pb
from clearinghouse.v1 import hospital_pb2_grpc as pb_grpc
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import treating_agency_pb2_grpc as ta_grpc
from clearinghouse.v1 import types_pb2

from clearing.bill import check_region
from clearing.dates import check_month
from clearing.errors import InvalidField
from clearing.smart_audit.report import member_facts_from_id_number
from services.common import convert, reconciling
from services.common.clock import shanghai_today
from services.common.errors import domain_error_from_status, rpc, rpc_stream
from services.common.regions import load_regions
from services.common.smart_audit import audit_from_status
from services.common.requests import check_request_id
from services.datagen.bills import CatalogueIndex, generate_bill
from services.datagen.catalogue import BASE_VALID_FROM, generate_catalogue_rows
from services.datagen.population import generate_members
from services.datagen.visits import SpecialPatient, special_patients, visit_days, visit_lines
from services.his.plan import Discharge, plan_run, request_id
from services.his.reconciler import reconcile_region
from services.security.party import Security
from services.security.audit_log import AuditLog

log = structlog.get_logger()


def blocking_audit(error: grpc.aio.AioRpcError) -> types_pb2.SmartAudit | None:
    """The smart-audit findings of a Settle refused by a `block` finding (FAILED_PRECONDITION), else None."""
    if error.code() is not grpc.StatusCode.FAILED_PRECONDITION:
        return None
    status = rpc_status.from_call(error)
    return audit_from_status(status) if status is not None else None
UPLOAD_BATCH_LINES = 25
RETRIES_MAX = 5
RETRY_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED})
CALL_TIMEOUT_S = 10.0
COUNT_MAX = 100_000
CONCURRENCY_MAX = 64
FIRST_MONTH = BASE_VALID_FROM.replace(day=1)  # the generated catalogues start here
LAST_MONTH = date(2100, 12, 1)


class HospitalServicer(pb_grpc.HospitalServiceServicer):
    def __init__(self, pool: asyncpg.Pool, hospital_stubs: dict[str, ta_grpc.TreatingAgencyServiceStub], seed: int,
                 members_per_region: int, *, security: Security) -> None:
        self.pool = pool
        self.audit_log = AuditLog(pool, "his")  # operators' calls, recorded by the rpc decorators
        # One stub per hospital code, on a channel to its region's treating agency with that hospital's
        # certificate: the simulator discharges at many hospitals, and each settles only as itself.
        self.hospital_stubs = hospital_stubs
        self.security = security  # the simulator's own server (simulator/his): every call is authenticated
        self.seed = seed
        self.members_per_region = members_per_region
        self.regions = load_regions()
        self.catalogues: dict[str, CatalogueIndex] = {}
        self.rows: dict[str, list[dict[str, str]]] = {}  # the catalogues' rows, for the visits' items
        self.members: dict[str, list[dict]] = {}
        self.member_indexes: dict[str, dict[str, int]] = {}

    def treating_regions(self) -> list[str]:
        """The regions whose treating agencies this simulator dials (those of its hospitals)."""
        return sorted({code[1:7] for code in self.hospital_stubs})

    def hospitals_of(self, region: str) -> list[str]:
        return sorted(code for code in self.hospital_stubs if code[1:7] == region)

    def catalogue(self, region: str) -> CatalogueIndex:
        if region not in self.catalogues:
            self.catalogues[region] = CatalogueIndex(generate_catalogue_rows(region, self.seed))
        return self.catalogues[region]

    def member(self, region: str, index: int) -> dict:
        if region not in self.members:
            self.members[region] = generate_members(region, self.members_per_region, self.seed)
        return self.members[region][index]

    @rpc_stream
    async def RunDischarges(self, request: pb.RunDischargesRequest, context: grpc.aio.ServicerContext):  # noqa: ANN201
        run_id = check_request_id(request.request_id)
        if not 1 <= request.count <= COUNT_MAX:
            raise InvalidField("count", f"must be between 1 and {COUNT_MAX}")
        concurrency = request.concurrency or 8
        if not 1 <= concurrency <= CONCURRENCY_MAX:
            raise InvalidField("concurrency", f"must be between 1 and {CONCURRENCY_MAX}")
        month_start = parse_month(request.month, "month")
        if not FIRST_MONTH <= month_start <= LAST_MONTH:
            # Outside, the generated catalogues have no items (before) or the stays' dates overflow (after):
            # every discharge would crash instead of being refused here.
            raise InvalidField("month", f"must be a month from {FIRST_MONTH:%Y-%m} to {LAST_MONTH:%Y-%m}")
        if month_start > shanghai_today():
            # Its stays would be discharged after today, which every agency refuses.
            raise InvalidField("month", f"{request.month} has not begun (today is {shanghai_today().isoformat()})")
        treating_region = None
        if request.treating_region:
            treating_region = check_region(request.treating_region, "treating_region")
            if treating_region not in self.treating_regions():
                raise InvalidField("treating_region", f"{treating_region} is not a region of this stack")
        seed = request.seed or self.seed
        queue: asyncio.Queue[tuple[bool, str]] = asyncio.Queue()
        semaphore = asyncio.Semaphore(concurrency)

        # The whole run's plan at once: it keeps each member's stays apart (but for the odd overlap).
        plans = plan_run(seed, request.count, self.regions, self.members_per_region, month_start, treating_region,
                         earlier=await self.stays_of_other_runs(run_id, month_start))

        async def one(index: int) -> None:
            outcome = (False, "")
            try:
                async with semaphore:
                    outcome = await self.discharge(run_id, plans[index], request.month)
            except Exception:  # noqa: BLE001 - every discharge reports, or the stream would wait forever
                log.exception("discharge_crashed", index=index)
            finally:
                await queue.put(outcome)

        # The request is accepted: say so at once (a client shows progress only once its run is not refused).
        yield pb.RunDischargesResponse(done=0, total=request.count, failed=0)
        tasks = [asyncio.create_task(one(index)) for index in range(request.count)]
        done = failed = 0
        last = ""
        try:
            while done < request.count:
                ok, settlement_id = await queue.get()
                done += 1
                failed += 0 if ok else 1
                last = settlement_id or last
                if done % 10 == 0 or done == request.count:
                    yield pb.RunDischargesResponse(done=done, total=request.count, failed=failed,
                                                   last_settlement_id=last)
        finally:
            for task in tasks:
                task.cancel()

    @rpc_stream
    async def RunVisits(self, request: pb.RunVisitsRequest, context: grpc.aio.ServicerContext):  # noqa: ANN201
        """A month of outpatient special-disease visits (门诊慢特病) of the recognised members, each patient's in day
        order at their own hospital; progress as RunDischarges reports it."""
        run_id = check_request_id(request.request_id)
        if not 1 <= request.count <= COUNT_MAX:
            raise InvalidField("count", f"must be between 1 and {COUNT_MAX}")
        concurrency = request.concurrency or 8
        if not 1 <= concurrency <= CONCURRENCY_MAX:
            raise InvalidField("concurrency", f"must be between 1 and {CONCURRENCY_MAX}")
        month_start = parse_month(request.month, "month")
        if not FIRST_MONTH <= month_start <= LAST_MONTH:
            raise InvalidField("month", f"must be a month from {FIRST_MONTH:%Y-%m} to {LAST_MONTH:%Y-%m}")
        today = shanghai_today()
        if month_start > today:
            raise InvalidField("month", f"{request.month} has not begun (today is {today.isoformat()})")
        regions = self.treating_regions()
        patients = [patient for region in regions
                    for patient in special_patients(region, self.members_per_region, self.seed, regions)]
        planned = sorted(((day, patient) for patient in patients for day in visit_days(patient, month_start, today)),
                         key=lambda item: (item[0], item[1].insured_region, item[1].member_index))[:request.count]
        by_patient: dict[tuple[str, int], list[tuple[int, date, SpecialPatient]]] = {}
        for index, (day, patient) in enumerate(planned):
            by_patient.setdefault((patient.insured_region, patient.member_index), []).append((index, day, patient))
        queue: asyncio.Queue[tuple[bool, str]] = asyncio.Queue()
        semaphore = asyncio.Semaphore(concurrency)

        async def patient_visits(visits: list[tuple[int, date, SpecialPatient]]) -> None:
            for index, day, patient in visits:  # one after the other: each reads the accumulators the last left
                outcome = (False, "")
                try:
                    async with semaphore:
                        outcome = await self.visit(run_id, index, day, patient, request.month)
                except Exception:  # noqa: BLE001 - every visit reports, or the stream would wait forever
                    log.exception("visit_crashed", index=index)
                finally:
                    await queue.put(outcome)

        yield pb.RunVisitsResponse(done=0, total=len(planned), failed=0)
        tasks = [asyncio.create_task(patient_visits(visits)) for visits in by_patient.values()]
        done = failed = 0
        last = ""
        try:
            while done < len(planned):
                ok, settlement_id = await queue.get()
                done += 1
                failed += 0 if ok else 1
                last = settlement_id or last
                if done % 10 == 0 or done == len(planned):
                    yield pb.RunVisitsResponse(done=done, total=len(planned), failed=failed,
                                                   last_settlement_id=last)
        finally:
            for task in tasks:
                task.cancel()

    async def visit(self, run_id: str, index: int, day: date, patient: SpecialPatient, month: str) -> tuple[bool, str]:
        """One visit: RegisterVisit, UploadCharges, Settle (2207); recorded like a discharge, med_type 14."""
        member = self.member(patient.insured_region, patient.member_index)
        codes = self.hospitals_of(patient.treating_region)
        code = codes[patient.hospital_index % len(codes)]
        lines = visit_lines(patient, day, self.catalogue_rows(patient.treating_region))
        plan = Discharge(index, patient.treating_region, code, 0, patient.insured_region, patient.member_index, day,
                         patient.seed)
        stub = self.hospital_stubs[code]
        settle_id = request_id(run_id, index, "visit:settle")
        disease = patient.disease.value
        if not lines:  # the treating catalogue has none of the disease's items: nothing to bill
            await self.record(settle_id, run_id, plan, member["member_id"], month, None, "no items to bill",
                              discharged_on=day.isoformat(), disease=disease)
            return False, ""
        try:
            registered = await self.call(stub.RegisterVisit, ta.RegisterVisitRequest(
                request_id=request_id(run_id, index, "visit"), hospital_code=code, visit_on=day.isoformat(),
                disease=convert.SPECIAL_DISEASES[disease],
                patient=ta.Patient(insured_region=patient.insured_region, member_id=member["member_id"],
                                   id_number=member["id_number"], name=member["name"])))
            await self.call(stub.UploadCharges, ta.UploadChargesRequest(
                request_id=request_id(run_id, index, "visit:upload"), encounter_id=registered.encounter_id,
                lines=[types_pb2.BillLine(**line) for line in lines]))
        except grpc.aio.AioRpcError as error:
            await self.record(settle_id, run_id, plan, member["member_id"], month, None,
                              domain_error_from_status(error), discharged_on=day.isoformat(), disease=disease)
            return False, ""
        requested_on = shanghai_today()
        try:
            settled = await self.call(stub.Settle, ta.SettleRequest(request_id=settle_id,
                                                                    encounter_id=registered.encounter_id))
        except grpc.aio.AioRpcError as error:
            status = await self.reverse(stub, run_id, plan, settle_id) if error.code() in RETRY_CODES else "failed"
            await self.record(settle_id, run_id, plan, member["member_id"], month, None,
                              domain_error_from_status(error), status, day.isoformat(), requested_on, disease=disease)
            log.warning("visit_failed", error=domain_error_from_status(error), outcome=status)
            return False, ""
        visit = settled.settlement.adjudication.visit
        await self.record(settle_id, run_id, plan, member["member_id"], month, settled.settlement, None,
                          discharged_on=day.isoformat(), requested_on=requested_on, disease=disease,
                          limit_met=visit.HasField("limit_left_fen") and visit.limit_left_fen == 0)
        return True, settled.settlement.settlement_id

    def catalogue_rows(self, region: str) -> list[dict[str, str]]:
        if region not in self.rows:
            self.rows[region] = generate_catalogue_rows(region, self.seed)
        return self.rows[region]

    async def stays_of_other_runs(self, run_id: str, month_start: date) -> dict[tuple[str, int], list[tuple[date, date]]]:
        """The stays settled by other runs that a stay of this month can overlap, by (insured region, member
        index): a new run keeps its members' stays clear of them. The run's own are left out, so a replay of the
        run plans exactly what it planned the first time."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT insured_region, member_id, admitted_on, discharged_on FROM discharges WHERE status = 'settled' "
                "AND med_type = 21 AND admitted_on IS NOT NULL AND run_request_id <> $1 AND discharged_on >= $2",
                UUID(run_id), month_start)
        stays: dict[tuple[str, int], list[tuple[date, date]]] = {}
        for row in rows:
            if row["insured_region"] not in self.regions:
                continue
            index = self.member_index(row["insured_region"], row["member_id"])
            if index is not None:
                stays.setdefault((row["insured_region"], index), []).append((row["admitted_on"], row["discharged_on"]))
        return stays

    def member_index(self, region: str, member_id: str) -> int | None:
        if region not in self.member_indexes:
            self.member(region, 0)  # the region's members, generated on first use
            self.member_indexes[region] = {item["member_id"]: index for index, item in enumerate(self.members[region])}
        return self.member_indexes[region].get(member_id)

    async def call(self, method, message):  # noqa: ANN001, ANN201
        """Call with retries on transient failures; the request id makes each retry safe."""
        for attempt in range(RETRIES_MAX):
            try:
                return await method(message, timeout=CALL_TIMEOUT_S)
            except grpc.aio.AioRpcError as error:
                if error.code() not in RETRY_CODES or attempt == RETRIES_MAX - 1:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    async def discharge(self, run_id: str, plan: Discharge, month: str) -> tuple[bool, str]:
        member = self.member(plan.insured_region, plan.member_index)
        # The bill fits the patient (sex, age) and the hospital, but for the small share of violations the
        # generator injects on purpose for smart audit (智能审核) to catch.
        bill = generate_bill(plan.bill_seed, self.catalogue(plan.treating_region), plan.treating_region,
                             plan.hospital_code, plan.hospital_level, plan.admitted_on,
                             patient=member_facts_from_id_number(member["id_number"]))
        stub = self.hospital_stubs[plan.hospital_code]  # the hospital settles as itself
        settle_id = request_id(run_id, plan.index, "settle")
        try:
            admitted = await self.call(stub.Admit, ta.AdmitRequest(
                request_id=request_id(run_id, plan.index, "admit"), hospital_code=plan.hospital_code,
                patient=ta.Patient(insured_region=plan.insured_region, member_id=member["member_id"],
                                   id_number=member["id_number"], name=member["name"]),
                admitted_on=bill["admitted_on"], emergency=bill["emergency"], diagnoses=bill["diagnoses"],
                birth_weight_g=bill["birth_weight_g"]))  # None: unset (only a patient under one year has one)
            lines = bill["lines"]
            for batch, start in enumerate(range(0, len(lines), UPLOAD_BATCH_LINES)):
                await self.call(stub.UploadCharges, ta.UploadChargesRequest(
                    request_id=request_id(run_id, plan.index, f"upload:{batch}"), encounter_id=admitted.encounter_id,
                    lines=[types_pb2.BillLine(line_id=line["line_id"], code=line["code"], qty=line["qty"],
                                              unit_price_fen=line["unit_price_fen"], amount_fen=line["amount_fen"],
                                              service_date=line["service_date"])
                           for line in lines[start:start + UPLOAD_BATCH_LINES]]))
        except grpc.aio.AioRpcError as error:
            await self.record(settle_id, run_id, plan, member["member_id"], month, None, domain_error_from_status(error))
            log.warning("discharge_failed", error=domain_error_from_status(error))
            return False, ""
        requested_on = shanghai_today()  # the day of this Settle: its day until an answer names the settlement's
        blocked: list[str] = []
        try:
            try:
                settled = await self.call(stub.Settle, ta.SettleRequest(
                    request_id=settle_id, encounter_id=admitted.encounter_id, discharged_on=bill["discharged_on"],
                    procedures=bill["procedures"], discharge_status=bill["discharge_status"]))
            except grpc.aio.AioRpcError as error:
                audit = blocking_audit(error)
                if audit is None or not any(item.violating_line_ids for item in audit.findings
                                            if item.action == "block"):
                    raise  # not smart audit, or nothing to void (an overlapping stay): the refusal stands
                # 事中 smart audit refused it and recorded nothing: void (退费) the lines the blocking findings name,
                # as a discharge desk would, and settle again under a request id of its own.
                blocked = sorted({item.rule_id for item in audit.findings if item.action == "block"})
                violating = sorted({line_id for item in audit.findings if item.action == "block"
                                    for line_id in item.violating_line_ids})
                log.info("settle_blocked_by_audit", rules=blocked, voided=len(violating))
                if violating:
                    await self.call(stub.VoidCharges, ta.VoidChargesRequest(
                        request_id=request_id(run_id, plan.index, "void:audit"), encounter_id=admitted.encounter_id,
                        line_ids=violating, reason="智能审核: " + ", ".join(blocked)))
                settle_id = request_id(run_id, plan.index, "settle:audit")
                settled = await self.call(stub.Settle, ta.SettleRequest(
                    request_id=settle_id, encounter_id=admitted.encounter_id, discharged_on=bill["discharged_on"],
                    procedures=bill["procedures"], discharge_status=bill["discharge_status"]))
        except grpc.aio.AioRpcError as error:
            status = "failed"
            final = blocking_audit(error)  # refused by smart audit with nothing to void (an overlapping stay)
            if final is not None:
                blocked = sorted(set(blocked) | {item.rule_id for item in final.findings if item.action == "block"})
            if error.code() in RETRY_CODES:  # the outcome is unknown: reverse it (冲正) rather than guess
                status = await self.reverse(stub, run_id, plan, settle_id)
            await self.record(settle_id, run_id, plan, member["member_id"], month, None,
                              domain_error_from_status(error), status, bill["discharged_on"], requested_on,
                              audit_blocked=blocked)
            log.warning("discharge_failed", error=domain_error_from_status(error), outcome=status)
            return False, ""
        await self.record(settle_id, run_id, plan, member["member_id"], month, settled.settlement, None,
                          discharged_on=bill["discharged_on"], requested_on=requested_on, audit_blocked=blocked)
        return True, settled.settlement.settlement_id

    async def reverse(self, stub, run_id: str, plan: Discharge, settle_id: str) -> str:  # noqa: ANN001
        """冲正 2601 of a Settle that never answered: `reversed` when the agency confirms, else `unknown`."""
        try:
            await self.call(stub.Reverse, ta.ReverseRequest(
                request_id=request_id(run_id, plan.index, "reverse"), original_request_id=settle_id,
                reason="no answer to Settle at the discharge desk"))
        except grpc.aio.AioRpcError:
            return "unknown"
        return "reversed"

    async def record(self, settle_id: str, run_id: str, plan: Discharge, member_id: str, month: str,
                     settlement: types_pb2.Settlement | None, error: str | None, status: str | None = None,
                     discharged_on: str | None = None, requested_on: date | None = None,
                     audit_blocked: list[str] | None = None, disease: str | None = None,
                     limit_met: bool = False) -> None:
        """One row per Settle (or per discharge whose admission or upload failed, no Settle sent). Its day for
        reconciliation is the settlement day the answer named; without an answer, the day the Settle was sent,
        which is on or before the agency's day for it (the agency makes the day when the Settle arrives)."""
        split = settlement.adjudication.split if settlement is not None else None
        settlement_day = requested_on or shanghai_today()
        if settlement is not None and settlement.claim.settlement_day:  # (an answer stored before the field: none)
            settlement_day = date.fromisoformat(settlement.claim.settlement_day)
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO discharges (request_id, run_request_id, treating_region, insured_region, hospital_code, "
                "member_id, month, status, settlement_id, total_fen, fund_pay_fen, psn_pay_fen, error, discharged_on, "
                "settlement_day, audit_warned, audit_blocked, admitted_on, med_type, disease, limit_met) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, "
                "$21) "
                "ON CONFLICT (request_id) DO NOTHING",
                UUID(settle_id), UUID(run_id), plan.treating_region, plan.insured_region, plan.hospital_code,
                member_id, month, status or ("settled" if settlement is not None else "failed"),
                UUID(settlement.settlement_id) if settlement is not None else None,
                split.total_fen if split else None, split.fund_pay_fen if split else None,
                split.psn_pay_fen if split else None, error,
                date.fromisoformat(discharged_on) if discharged_on else None, settlement_day,
                sorted({item.rule_id for audit in (settlement.smart_audit, settlement.adjudication.smart_audit)
                        for item in audit.findings}) if settlement is not None else [],
                audit_blocked or [], plan.admitted_on, 14 if disease else 21, disease, limit_met)

    @rpc
    async def ReconcileWithAgencies(self, request: pb.ReconcileWithAgenciesRequest, context: grpc.aio.ServicerContext) -> pb.ReconcileWithAgenciesResponse:
        day, grace_s, day_key = reconciling.reconcile_request(request)
        return pb.ReconcileWithAgenciesResponse(reports=[await reconcile_region(self, region, day, grace_s, day_key)
                                                         for region in self.treating_regions()])

    @rpc
    async def GetSummary(self, request: pb.GetSummaryRequest, context: grpc.aio.ServicerContext) -> pb.GetSummaryResponse:
        if request.month:
            parse_month(request.month, "month")
        run = UUID(check_request_id(request.run_request_id, "run_request_id")) if request.run_request_id else None
        where = "($1 = '' OR month = $1) AND ($2::uuid IS NULL OR run_request_id = $2)"
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT treating_region, insured_region, count(*) AS stays, sum(total_fen)::bigint AS total_fen, "
                "sum(fund_pay_fen)::bigint AS fund_pay_fen, sum(psn_pay_fen)::bigint AS psn_pay_fen FROM discharges "
                f"WHERE status = 'settled' AND med_type = 21 AND {where} GROUP BY 1, 2 ORDER BY 1, 2", request.month, run)
            visits = await conn.fetch(
                "SELECT disease, insured_region, count(DISTINCT member_id)::int AS patients, count(*)::int AS visits, "
                "count(*) FILTER (WHERE treating_region <> insured_region)::int AS cross_region, "
                "sum(total_fen)::bigint AS total_fen, sum(fund_pay_fen)::bigint AS fund_pay_fen, "
                "count(*) FILTER (WHERE limit_met)::int AS limits_met FROM discharges "
                f"WHERE status = 'settled' AND med_type = 14 AND {where} GROUP BY 1, 2 ORDER BY 1, 2", request.month, run)
            failed = await conn.fetchval(f"SELECT count(*) FROM discharges WHERE status <> 'settled' AND {where}",
                                         request.month, run)
        return pb.GetSummaryResponse(
            pairs=[pb.PairSummary(treating_region=row["treating_region"], insured_region=row["insured_region"],
                                  stays=row["stays"], total_fen=row["total_fen"], fund_pay_fen=row["fund_pay_fen"],
                                  psn_pay_fen=row["psn_pay_fen"]) for row in rows],
            failed=failed,
            visits=[pb.VisitSummary(disease=convert.SPECIAL_DISEASES[row["disease"]],
                                    **{key: row[key] for key in ("insured_region", "patients", "visits", "cross_region",
                                                                 "total_fen", "fund_pay_fen", "limits_met")})
                    for row in visits])


def parse_month(text: str, field: str) -> date:
    """`YYYY-MM` → the first day of that month."""
    return date.fromisoformat(f"{check_month(text, field)}-01")
