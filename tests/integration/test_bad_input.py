"""Bad input to every RPC of every party (SPEC §8, STYLE "Errors → gRPC status").

Each case sends one malformed or impossible request and checks that the answer is the right
status (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, PERMISSION_DENIED, never INTERNAL), that
its google.rpc detail names the field (BadRequest), the resource (ResourceInfo), the subject
(PreconditionFailure) or the identity (ErrorInfo), and that no row changed in any table of the
parties concerned (counted before and after).

The scene (one module fixture) holds a fresh cross-region member (610924, treated in 440100) with
an open encounter, an encounter with no lines, a settled and a cancelled settlement, an encounter
of a member unknown to the insured agency, and a valid classified claim taken from a PreSettle.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import clearing_house_pb2_grpc as ch_grpc
from clearinghouse.v1 import hospital_pb2 as hp
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

from clearing.catalogue import COLUMNS
from services.security.identity import agency

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
DENIED = grpc.StatusCode.PERMISSION_DENIED

TREATING = "440100"
INSURED = "610924"  # no agreement with 440100: the treating rule
H_GUANGZHOU = "H44010000001"
UNKNOWN = str(uuid.uuid4())  # an id no party has ever seen
ADMITTED_ON = "2026-03-02"
DISCHARGED_ON = "2026-03-06"
TREATING_PARTIES = ("treating_440100", "clearinghouse", "insured_610924", "insured_440100")
CLEARING_PARTIES = ("clearinghouse", "insured_610924", "treating_440100")
INSURED_PARTIES = ("insured_430100", "insured_610924")
HIS_PARTIES = ("his", "treating_440100", "clearinghouse")


@dataclass
class Scene:
    member: Any
    open_encounter: str  # one line on 2026-03-03, not settled
    empty_encounter: str  # admitted, no lines
    settled_encounter: str
    settlement_id: str  # settled
    cancelled_id: str  # settled, then cancelled
    ghost_encounter: str  # the patient's member number is unknown at the insured agency
    claim: types_pb2.Claim  # a valid routed claim (from PreSettle of the open encounter)


@pytest.fixture(scope="module")
async def scene(kit) -> Scene:
    member = await kit.new_member(INSURED, filing="resident")
    code = kit.plain_codes(TREATING)[7]
    line = [kit.bill_line("1", code, "2", 21000, "2026-03-03")]
    open_encounter = await kit.open_encounter(H_GUANGZHOU, member, line, ADMITTED_ON)
    empty_encounter = (await kit.admit(H_GUANGZHOU, member, ADMITTED_ON)).encounter_id
    settled_encounter = await kit.open_encounter(H_GUANGZHOU, member, line, ADMITTED_ON)
    settled = await kit.treating(TREATING).Settle(ta.SettleRequest(
        request_id=kit.rid(), encounter_id=settled_encounter, discharged_on=DISCHARGED_ON))
    cancelled = await kit.discharge(H_GUANGZHOU, member, line, ADMITTED_ON, DISCHARGED_ON)
    await kit.treating(TREATING).Cancel(ta.CancelRequest(request_id=kit.rid(), settlement_id=cancelled.settlement_id,
                                                         reason="test"))
    ghost_encounter = await ghost_encounter_of(kit, open_encounter, f"NOBODY{uuid.uuid4().hex[:10]}")
    quoted = await kit.treating(TREATING).PreSettle(ta.PreSettleRequest(encounter_id=open_encounter,
                                                                        discharged_on=DISCHARGED_ON))
    return Scene(member, open_encounter, empty_encounter, settled_encounter, settled.settlement.settlement_id,
                 cancelled.settlement_id, ghost_encounter, quoted.settlement.claim)


async def ghost_encounter_of(kit, encounter_id: str, member_id: str) -> str:  # noqa: ANN001
    """A copy of an encounter, with its lines, for a member number the insured agency does not know. Admit checks
    the patient with the insured agency now (VerifyMember), so such an encounter can only be one admitted before
    that check: written here in SQL as the treating agency of before wrote it."""
    ghost, request_id = uuid.uuid4(), uuid.uuid4()
    treating = await kit.db(f"treating_{TREATING}")
    async with treating.transaction():
        await treating.execute(
            "INSERT INTO encounters (encounter_id, request_id, request, hospital_code, hospital_level, insured_region, "
            "member_id, id_number, name, admitted_on, emergency, diagnoses) SELECT $2, $3, request, hospital_code, "
            "hospital_level, insured_region, $4, id_number, name, admitted_on, emergency, diagnoses FROM encounters "
            "WHERE encounter_id = $1", uuid.UUID(encounter_id), ghost, request_id, member_id)
        await treating.execute(
            "INSERT INTO charge_lines (encounter_id, line_id, position, code, qty_e4, unit_price_fen, amount_fen, "
            "service_date) SELECT $2, line_id, position, code, qty_e4, unit_price_fen, amount_fen, service_date "
            "FROM charge_lines WHERE encounter_id = $1", uuid.UUID(encounter_id), ghost)
    return str(ghost)


def other_id_number(id_number: str) -> str:
    """Another well-formed ID number: the same one with its sequence digits changed."""
    return id_number[:14] + ("000" if id_number[14:17] != "000" else "111") + id_number[17]


# ---------------------------------------------------------------------------------------------
# Request builders: a valid request with some fields replaced
# ---------------------------------------------------------------------------------------------

def with_fields(message, **fields):  # noqa: ANN001, ANN201
    """A copy of `message` with `a__b=value` replacing field a.b (a list replaces a repeated field)."""
    copy = type(message)()
    copy.CopyFrom(message)
    for name, value in fields.items():
        target = copy
        *path, last = name.split("__")
        for part in path:
            target = getattr(target, part)
        if isinstance(value, list):
            del getattr(target, last)[:]
            getattr(target, last).extend(value)
        else:
            setattr(target, last, value)
    return copy


def admit(kit, scene: Scene, **fields) -> ta.AdmitRequest:  # noqa: ANN001
    return with_fields(kit.admit_request(H_GUANGZHOU, scene.member, ADMITTED_ON), **fields)


def visit(kit, scene: Scene, **fields) -> ta.RegisterVisitRequest:  # noqa: ANN001
    request = ta.RegisterVisitRequest(
        request_id=kit.rid(), hospital_code=H_GUANGZHOU, visit_on=ADMITTED_ON,
        disease=types_pb2.SPECIAL_DISEASE_DIALYSIS,
        patient=ta.Patient(insured_region=scene.member.region, member_id=scene.member.member_id,
                           id_number=scene.member.id_number, name=scene.member.name))
    return with_fields(request, **fields)


def line(kit, line_id: str = "u1", **fields) -> types_pb2.BillLine:  # noqa: ANN001
    return with_fields(kit.bill_line(line_id, kit.plain_codes(TREATING)[8], "2", 1234, "2026-03-04"), **fields)


def upload(kit, scene: Scene, lines: list[types_pb2.BillLine] | None = None, **fields) -> ta.UploadChargesRequest:  # noqa: ANN001
    request = ta.UploadChargesRequest(request_id=kit.rid(), encounter_id=scene.open_encounter,
                                      lines=[line(kit)] if lines is None else lines)
    return with_fields(request, **fields)


def settle(kit, scene: Scene, **fields) -> ta.SettleRequest:  # noqa: ANN001
    return with_fields(ta.SettleRequest(request_id=kit.rid(), encounter_id=scene.open_encounter,
                                        discharged_on=DISCHARGED_ON), **fields)


def presettle(scene: Scene, **fields) -> ta.PreSettleRequest:
    return with_fields(ta.PreSettleRequest(encounter_id=scene.open_encounter, discharged_on=DISCHARGED_ON), **fields)


def catalogue_csv(**row_fields: str) -> str:
    """A one-row catalogue CSV with some cells replaced (`drop=` removes a column)."""
    row = {"local_code": "T0001", "national_code": "N0001", "relation": "equivalent", "kind": "drug",
           "name": "测试药", "grade": "A", "selfpay_bp": "0", "price_cap_fen": "", "restriction": "",
           "valid_from": "2024-01-01", "valid_to": ""}
    columns = [name for name in COLUMNS if name != row_fields.get("drop")]
    row.update({key: value for key, value in row_fields.items() if key != "drop"})
    return ",".join(columns) + "\n" + ",".join(row[name] for name in columns) + "\n"


def overlapping_csv() -> str:
    body = catalogue_csv()
    return body + "T0001,N0001,equivalent,drug,测试药,B,1000,,,2025-01-01,\n"


def claim(scene: Scene, **fields) -> types_pb2.Claim:
    return with_fields(scene.claim, **fields)


def claim_lines(scene: Scene, change: Callable[[types_pb2.Claim], None]) -> types_pb2.Claim:
    copy = claim(scene)
    change(copy)
    return copy


def before_policy(scene: Scene) -> types_pb2.Claim:
    return claim(scene, stay__admitted_on="2025-12-20", stay__discharged_on="2025-12-28")


def register(kit, **fields) -> ia.RegisterMemberRequest:  # noqa: ANN001
    request = ia.RegisterMemberRequest(request_id=kit.rid(), member=ia.Member(
        member_id=f"T430100{uuid.uuid4().hex[:12]}", id_number="430100198001011234", name="李四",
        scheme=types_pb2.SCHEME_EMPLOYEE, assistance=types_pb2.ASSISTANCE_TIER_NONE))
    return with_fields(request, **fields)


def filing(kit, scene: Scene, **fields) -> ia.RecordFilingRequest:  # noqa: ANN001
    request = ia.RecordFilingRequest(request_id=kit.rid(), member_id=scene.member.member_id, filing=ia.Filing(
        category=types_pb2.FILING_STATUS_REFERRAL, valid_from="2026-03-01"))
    return with_fields(request, **fields)


def run(kit, **fields) -> hp.RunDischargesRequest:  # noqa: ANN001
    return with_fields(hp.RunDischargesRequest(request_id=kit.rid(), count=1, seed=5, concurrency=1,
                                               month="2026-03"), **fields)


def unknown() -> str:
    return str(uuid.uuid4())


# ---------------------------------------------------------------------------------------------
# The cases: (id, call builder, expected code, what the detail names, parties whose rows must not change)
# ---------------------------------------------------------------------------------------------

Build = Callable[[Any, Scene], Awaitable[Any]]


def case(case_id: str, build: Build, code: grpc.StatusCode, parties: tuple[str, ...], **expect: str):  # noqa: ANN201
    """One case: the call, the status it must get, what the detail names, whose rows must not change."""
    return pytest.param(build, code, expect, parties, id=case_id)


def tr(kit):  # noqa: ANN001, ANN201
    return kit.treating(TREATING)


def current_month() -> str:
    from services.common.clock import clearing_month, now_utc

    return clearing_month(now_utc())


TREATING_CASES = [
    # RegisterVisit (门诊慢特病就诊登记, med_type 14)
    case("RegisterVisit-request_id-not-a-uuid", lambda k, s: tr(k).RegisterVisit(visit(k, s, request_id="visit-1")),
         INVALID, TREATING_PARTIES, field="request_id"),
    case("RegisterVisit-disease-unspecified", lambda k, s: tr(k).RegisterVisit(visit(
        k, s, disease=types_pb2.SPECIAL_DISEASE_UNSPECIFIED)), INVALID, TREATING_PARTIES, field="disease"),
    case("RegisterVisit-visit_on-not-a-day", lambda k, s: tr(k).RegisterVisit(visit(k, s, visit_on="2026-02-30")),
         INVALID, TREATING_PARTIES, field="visit_on"),
    case("RegisterVisit-visit_on-after-today", lambda k, s: tr(k).RegisterVisit(visit(k, s, visit_on="2099-01-01")),
         INVALID, TREATING_PARTIES, field="visit_on"),
    case("RegisterVisit-id_number-short", lambda k, s: tr(k).RegisterVisit(visit(
        k, s, patient__id_number=s.member.id_number[:17])), INVALID, TREATING_PARTIES, field="patient.id_number"),
    # Admit (2201)
    case("Admit-request_id-not-a-uuid", lambda k, s: tr(k).Admit(admit(k, s, request_id="admit-1")),
         INVALID, TREATING_PARTIES, field="request_id"),
    case("Admit-request_id-missing", lambda k, s: tr(k).Admit(admit(k, s, request_id="")),
         INVALID, TREATING_PARTIES, field="request_id"),
    case("Admit-hospital-of-another-region", lambda k, s: tr(k).Admit(admit(k, s, hospital_code="H43010000001")),
         DENIED, TREATING_PARTIES, subject="hospital/H43010000001"),  # its certificate, at the wrong region
    case("Admit-hospital-not-designated", lambda k, s: tr(k).Admit(admit(k, s, hospital_code="H44010099999")),
         DENIED, TREATING_PARTIES, subject="hospital/H44010000001"),  # a hospital naming another's code
    case("Admit-hospital_code-malformed", lambda k, s: tr(k).Admit(admit(k, s, hospital_code="44010000001")),
         INVALID, TREATING_PARTIES, field="hospital_code"),
    case("Admit-bad-insured-region", lambda k, s: tr(k).Admit(admit(k, s, patient__insured_region="61092")),
         INVALID, TREATING_PARTIES, field="patient.insured_region"),
    case("Admit-id_number-not-the-members", lambda k, s: tr(k).Admit(admit(
        k, s, patient__id_number=other_id_number(s.member.id_number))), PRECONDITION, TREATING_PARTIES,
        subject="patient.id_number"),
    case("Admit-id_number-short", lambda k, s: tr(k).Admit(admit(k, s, patient__id_number=s.member.id_number[:17])),
         INVALID, TREATING_PARTIES, field="patient.id_number"),
    case("Admit-id_number-letter-inside", lambda k, s: tr(k).Admit(admit(
        k, s, patient__id_number="X" + s.member.id_number[1:])), INVALID, TREATING_PARTIES, field="patient.id_number"),
    case("Admit-id_number-birth-date-not-a-day", lambda k, s: tr(k).Admit(admit(
        k, s, patient__id_number=s.member.id_number[:10] + "1399" + s.member.id_number[14:])), INVALID,
        TREATING_PARTIES, field="patient.id_number"),
    case("Admit-member-unknown-to-the-insured-agency", lambda k, s: tr(k).Admit(admit(
        k, s, patient__member_id="NOBODY-ADMIT")), NOT_FOUND, TREATING_PARTIES, resource="NOBODY-ADMIT"),
    case("Admit-insured-region-unknown", lambda k, s: tr(k).Admit(admit(k, s, patient__insured_region="999998")),
         NOT_FOUND, TREATING_PARTIES, resource="regions/999998"),
    case("Admit-member_id-missing", lambda k, s: tr(k).Admit(admit(k, s, patient__member_id="")),
         INVALID, TREATING_PARTIES, field="patient.member_id"),
    case("Admit-date-not-a-day", lambda k, s: tr(k).Admit(admit(k, s, admitted_on="2026-02-30")),
         INVALID, TREATING_PARTIES, field="admitted_on"),
    case("Admit-date-not-iso", lambda k, s: tr(k).Admit(admit(k, s, admitted_on="03/02/2026")),
         INVALID, TREATING_PARTIES, field="admitted_on"),
    case("Admit-no-diagnosis", lambda k, s: tr(k).Admit(admit(k, s, diagnoses=[])),
         INVALID, TREATING_PARTIES, field="diagnoses"),
    case("Admit-bad-diagnosis", lambda k, s: tr(k).Admit(admit(k, s, diagnoses=["J18.9", "pneumonia"])),
         INVALID, TREATING_PARTIES, field="diagnoses[1]"),
    case("Admit-after-today", lambda k, s: tr(k).Admit(admit(k, s, admitted_on="2099-01-01")),
         INVALID, TREATING_PARTIES, field="admitted_on"),
    # UploadCharges (2301)
    case("UploadCharges-service-date-before-admission",
         lambda k, s: tr(k).UploadCharges(upload(k, s, [line(k, service_date="2026-03-01")])),
         INVALID, TREATING_PARTIES, field="lines[0].service_date"),
    case("UploadCharges-service-date-after-today",
         lambda k, s: tr(k).UploadCharges(upload(k, s, [line(k, service_date="2099-03-01")])),
         INVALID, TREATING_PARTIES, field="lines[0].service_date"),
    # VoidCharges (退费 2302)
    case("VoidCharges-request_id-missing", lambda k, s: tr(k).VoidCharges(ta.VoidChargesRequest(
        encounter_id=s.open_encounter, line_ids=["1"])), INVALID, TREATING_PARTIES, field="request_id"),
    case("VoidCharges-unknown-encounter", lambda k, s: tr(k).VoidCharges(ta.VoidChargesRequest(
        request_id=k.rid(), encounter_id=UNKNOWN, line_ids=["1"])), NOT_FOUND, TREATING_PARTIES, resource=UNKNOWN),
    case("VoidCharges-no-lines", lambda k, s: tr(k).VoidCharges(ta.VoidChargesRequest(
        request_id=k.rid(), encounter_id=s.open_encounter)), INVALID, TREATING_PARTIES, field="line_ids"),
    case("VoidCharges-unknown-line", lambda k, s: tr(k).VoidCharges(ta.VoidChargesRequest(
        request_id=k.rid(), encounter_id=s.open_encounter, line_ids=["1", "no-such-line"])), INVALID,
        TREATING_PARTIES, field="line_ids[1]"),
    case("VoidCharges-line-id-with-a-control-character", lambda k, s: tr(k).VoidCharges(ta.VoidChargesRequest(
        request_id=k.rid(), encounter_id=s.open_encounter, line_ids=["1\x00"])), INVALID, TREATING_PARTIES,
        field="line_ids[0]"),
    case("VoidCharges-reason-too-long", lambda k, s: tr(k).VoidCharges(ta.VoidChargesRequest(
        request_id=k.rid(), encounter_id=s.open_encounter, line_ids=["1"], reason="退" * 257)), INVALID,
        TREATING_PARTIES, field="reason"),
    case("VoidCharges-settled-encounter", lambda k, s: tr(k).VoidCharges(ta.VoidChargesRequest(
        request_id=k.rid(), encounter_id=s.settled_encounter, line_ids=["1"])), PRECONDITION, TREATING_PARTIES,
        subject="encounter_id"),
    case("UploadCharges-request_id-not-a-uuid", lambda k, s: tr(k).UploadCharges(upload(k, s, request_id="x")),
         INVALID, TREATING_PARTIES, field="request_id"),
    case("UploadCharges-encounter_id-not-a-uuid",
         lambda k, s: tr(k).UploadCharges(upload(k, s, encounter_id="enc-1")),
         INVALID, TREATING_PARTIES, field="encounter_id"),
    case("UploadCharges-unknown-encounter", lambda k, s: tr(k).UploadCharges(upload(k, s, encounter_id=UNKNOWN)),
         NOT_FOUND, TREATING_PARTIES, resource=UNKNOWN),
    case("UploadCharges-no-lines", lambda k, s: tr(k).UploadCharges(upload(k, s, lines=[])),
         INVALID, TREATING_PARTIES, field="lines"),
    case("UploadCharges-qty-zero", lambda k, s: tr(k).UploadCharges(upload(k, s, [line(k, qty="0", amount_fen=0)])),
         INVALID, TREATING_PARTIES, field="lines[0].qty"),
    case("UploadCharges-qty-negative",
         lambda k, s: tr(k).UploadCharges(upload(k, s, [line(k, qty="-1", amount_fen=0)])),
         INVALID, TREATING_PARTIES, field="lines[0].qty"),
    case("UploadCharges-qty-five-places", lambda k, s: tr(k).UploadCharges(upload(k, s, [line(k, qty="1.00001")])),
         INVALID, TREATING_PARTIES, field="lines[0].qty"),
    case("UploadCharges-qty-exponent", lambda k, s: tr(k).UploadCharges(upload(k, s, [line(k, qty="2e0")])),
         INVALID, TREATING_PARTIES, field="lines[0].qty"),
    case("UploadCharges-amount-mismatch",
         lambda k, s: tr(k).UploadCharges(upload(k, s, [line(k, amount_fen=2469)])),  # 2 × 12.34 = 24.68
         INVALID, TREATING_PARTIES, field="lines[0].amount_fen"),
    case("UploadCharges-negative-price",
         lambda k, s: tr(k).UploadCharges(upload(k, s, [line(k, unit_price_fen=-1234, amount_fen=-2468)])),
         INVALID, TREATING_PARTIES, field="lines[0].unit_price_fen"),
    case("UploadCharges-second-line-bad-nothing-written",
         lambda k, s: tr(k).UploadCharges(upload(k, s, [line(k), line(k, "u2", qty="0", amount_fen=0)])),
         INVALID, TREATING_PARTIES, field="lines[1].qty"),
    case("UploadCharges-bad-service-date",
         lambda k, s: tr(k).UploadCharges(upload(k, s, [line(k, service_date="2026-3-4")])),
         INVALID, TREATING_PARTIES, field="lines[0].service_date"),
    case("UploadCharges-code-missing", lambda k, s: tr(k).UploadCharges(upload(k, s, [line(k, code="")])),
         INVALID, TREATING_PARTIES, field="lines[0].code"),
    case("UploadCharges-line_id-twice-in-upload",
         lambda k, s: tr(k).UploadCharges(upload(k, s, [line(k, "u9"), line(k, "u9")])),
         INVALID, TREATING_PARTIES, field="lines[1].line_id"),
    case("UploadCharges-line_id-already-on-encounter",
         lambda k, s: tr(k).UploadCharges(upload(k, s, [line(k, "1")])),
         INVALID, TREATING_PARTIES, field="lines[0].line_id"),
    case("UploadCharges-encounter-already-settled",
         lambda k, s: tr(k).UploadCharges(upload(k, s, encounter_id=s.settled_encounter)),
         PRECONDITION, TREATING_PARTIES, subject="encounter_id"),
    # PreSettle (2303)
    case("PreSettle-encounter_id-missing", lambda k, s: tr(k).PreSettle(presettle(s, encounter_id="")),
         INVALID, TREATING_PARTIES, field="encounter_id"),
    case("PreSettle-unknown-encounter", lambda k, s: tr(k).PreSettle(presettle(s, encounter_id=UNKNOWN)),
         NOT_FOUND, TREATING_PARTIES, resource=UNKNOWN),
    case("PreSettle-bad-discharge-date", lambda k, s: tr(k).PreSettle(presettle(s, discharged_on="2026-13-01")),
         INVALID, TREATING_PARTIES, field="discharged_on"),
    case("PreSettle-discharged-before-admitted",
         lambda k, s: tr(k).PreSettle(presettle(s, discharged_on="2026-03-01")),
         INVALID, TREATING_PARTIES, field="discharged_on"),
    case("PreSettle-line-after-discharge", lambda k, s: tr(k).PreSettle(presettle(s, discharged_on=ADMITTED_ON)),
         INVALID, TREATING_PARTIES, field="lines[0].service_date"),
    case("PreSettle-bad-diagnosis", lambda k, s: tr(k).PreSettle(presettle(s, diagnoses=["??"])),
         INVALID, TREATING_PARTIES, field="diagnoses[0]"),
    case("PreSettle-no-lines", lambda k, s: tr(k).PreSettle(presettle(s, encounter_id=s.empty_encounter)),
         PRECONDITION, TREATING_PARTIES, subject="encounter_id"),
    case("PreSettle-unknown-member", lambda k, s: tr(k).PreSettle(presettle(s, encounter_id=s.ghost_encounter)),
         NOT_FOUND, TREATING_PARTIES, resource="NOBODY"),
    # AuditBill (事前 smart audit)
    case("AuditBill-encounter_id-missing", lambda k, s: tr(k).AuditBill(ta.AuditBillRequest(encounter_id="")),
         INVALID, TREATING_PARTIES, field="encounter_id"),
    case("AuditBill-unknown-encounter", lambda k, s: tr(k).AuditBill(ta.AuditBillRequest(encounter_id=UNKNOWN)),
         NOT_FOUND, TREATING_PARTIES, resource=UNKNOWN),
    case("AuditBill-bad-discharge-date", lambda k, s: tr(k).AuditBill(ta.AuditBillRequest(
        encounter_id=s.open_encounter, discharged_on="2026-13-01")), INVALID, TREATING_PARTIES, field="discharged_on"),
    case("AuditBill-bad-diagnosis", lambda k, s: tr(k).AuditBill(ta.AuditBillRequest(
        encounter_id=s.open_encounter, discharged_on=DISCHARGED_ON, diagnoses=["??"])),
         INVALID, TREATING_PARTIES, field="diagnoses[0]"),
    case("AuditBill-no-lines", lambda k, s: tr(k).AuditBill(ta.AuditBillRequest(encounter_id=s.empty_encounter)),
         PRECONDITION, TREATING_PARTIES, subject="encounter_id"),
    # Settle (2304)
    case("Settle-request_id-not-a-uuid", lambda k, s: tr(k).Settle(settle(k, s, request_id="settle-1")),
         INVALID, TREATING_PARTIES, field="request_id"),
    case("Settle-encounter_id-not-a-uuid", lambda k, s: tr(k).Settle(settle(k, s, encounter_id="42")),
         INVALID, TREATING_PARTIES, field="encounter_id"),
    case("Settle-unknown-encounter", lambda k, s: tr(k).Settle(settle(k, s, encounter_id=UNKNOWN)),
         NOT_FOUND, TREATING_PARTIES, resource=UNKNOWN),
    case("Settle-bad-discharge-date", lambda k, s: tr(k).Settle(settle(k, s, discharged_on="2026-03-32")),
         INVALID, TREATING_PARTIES, field="discharged_on"),
    case("Settle-discharge-date-missing", lambda k, s: tr(k).Settle(settle(k, s, discharged_on="")),
         INVALID, TREATING_PARTIES, field="discharged_on"),
    case("Settle-line-after-discharge", lambda k, s: tr(k).Settle(settle(k, s, discharged_on=ADMITTED_ON)),
         INVALID, TREATING_PARTIES, field="lines[0].service_date"),
    case("Settle-encounter-twice", lambda k, s: tr(k).Settle(settle(k, s, encounter_id=s.settled_encounter)),
         PRECONDITION, TREATING_PARTIES, subject="encounter_id"),
    case("Settle-no-lines", lambda k, s: tr(k).Settle(settle(k, s, encounter_id=s.empty_encounter)),
         PRECONDITION, TREATING_PARTIES, subject="encounter_id"),
    # Cancel (2305)
    case("Cancel-request_id-missing", lambda k, s: tr(k).Cancel(ta.CancelRequest(settlement_id=s.settlement_id)),
         INVALID, TREATING_PARTIES, field="request_id"),
    case("Cancel-settlement_id-not-a-uuid",
         lambda k, s: tr(k).Cancel(ta.CancelRequest(request_id=k.rid(), settlement_id="S1")),
         INVALID, TREATING_PARTIES, field="settlement_id"),
    case("Cancel-unknown-settlement",
         lambda k, s: tr(k).Cancel(ta.CancelRequest(request_id=k.rid(), settlement_id=UNKNOWN)),
         NOT_FOUND, TREATING_PARTIES, resource=UNKNOWN),
    case("Cancel-already-cancelled",
         lambda k, s: tr(k).Cancel(ta.CancelRequest(request_id=k.rid(), settlement_id=s.cancelled_id)),
         PRECONDITION, TREATING_PARTIES, subject="settlement_id"),
    # Reverse (冲正 2601)
    case("Reverse-request_id-missing", lambda k, s: tr(k).Reverse(ta.ReverseRequest(original_request_id=k.rid())),
         INVALID, TREATING_PARTIES, field="request_id"),
    case("Reverse-original_request_id-not-a-uuid", lambda k, s: tr(k).Reverse(ta.ReverseRequest(
        request_id=k.rid(), original_request_id="R1")), INVALID, TREATING_PARTIES, field="original_request_id"),
    case("Reverse-reason-too-long", lambda k, s: tr(k).Reverse(ta.ReverseRequest(
        request_id=k.rid(), original_request_id=k.rid(), reason="x" * 257)), INVALID, TREATING_PARTIES, field="reason"),
    # 3201 / 3202 / reconciliation
    case("GetDailyTotals-bad-day", lambda k, s: tr(k).GetDailyTotals(ta.GetDailyTotalsRequest(day="2026-02-30")),
         INVALID, TREATING_PARTIES, field="day"),
    case("GetDailyTotals-bad-hospital", lambda k, s: tr(k).GetDailyTotals(ta.GetDailyTotalsRequest(
        day="2026-03-06", hospital_code="H1")), INVALID, TREATING_PARTIES, field="hospital_code"),
    case("StreamDailyDetail-day-missing", lambda k, s: drain(tr(k).StreamDailyDetail(ta.StreamDailyDetailRequest())),
         INVALID, TREATING_PARTIES, field="day"),
    case("Reconcile-bad-day", lambda k, s: tr(k).Reconcile(ta.ReconcileRequest(day="yesterday")),
         INVALID, TREATING_PARTIES, field="day"),
    case("Reconcile-negative-grace", lambda k, s: tr(k).Reconcile(ta.ReconcileRequest(
        day="2026-03-06", pending_grace_s=-1)), INVALID, TREATING_PARTIES, field="pending_grace_s"),
    case("Reconcile-unknown-day-key", lambda k, s: tr(k).Reconcile(ta.ReconcileRequest(
        day="2026-03-06", day_key=7)), INVALID, TREATING_PARTIES, field="day_key"),
    case("GetDailyTotals-unknown-day-key", lambda k, s: tr(k).GetDailyTotals(ta.GetDailyTotalsRequest(
        day="2026-03-06", day_key=-1)), INVALID, TREATING_PARTIES, field="day_key"),
    case("StreamDailyDetail-unknown-day-key", lambda k, s: drain(tr(k).StreamDailyDetail(ta.StreamDailyDetailRequest(
        day="2026-03-06", day_key=3))), INVALID, TREATING_PARTIES, field="day_key"),
    # GetSettlement
    case("GetSettlement-settlement_id-missing", lambda k, s: tr(k).GetSettlement(ta.GetSettlementRequest()),
         INVALID, TREATING_PARTIES, field="settlement_id"),
    case("GetSettlement-unknown", lambda k, s: tr(k).GetSettlement(ta.GetSettlementRequest(settlement_id=UNKNOWN)),
         NOT_FOUND, TREATING_PARTIES, resource=UNKNOWN),
    case("GetSettlement-an-encounter-id", lambda k, s: tr(k).GetSettlement(
        ta.GetSettlementRequest(settlement_id=s.open_encounter)), NOT_FOUND, TREATING_PARTIES),
    # ImportCatalogue
    case("ImportCatalogue-request_id-not-a-uuid", lambda k, s: tr(k).ImportCatalogue(ta.ImportCatalogueRequest(
        request_id="cat", csv_text=catalogue_csv())), INVALID, TREATING_PARTIES, field="request_id"),
    case("ImportCatalogue-unknown-grade", lambda k, s: tr(k).ImportCatalogue(ta.ImportCatalogueRequest(
        request_id=k.rid(), csv_text=catalogue_csv(grade="D"))), INVALID, TREATING_PARTIES, field="row 2.grade"),
    case("ImportCatalogue-unknown-kind", lambda k, s: tr(k).ImportCatalogue(ta.ImportCatalogueRequest(
        request_id=k.rid(), csv_text=catalogue_csv(kind="food"))), INVALID, TREATING_PARTIES, field="row 2.kind"),
    case("ImportCatalogue-missing-column", lambda k, s: tr(k).ImportCatalogue(ta.ImportCatalogueRequest(
        request_id=k.rid(), csv_text=catalogue_csv(drop="grade"))), INVALID, TREATING_PARTIES, field="header"),
    case("ImportCatalogue-bad-date", lambda k, s: tr(k).ImportCatalogue(ta.ImportCatalogueRequest(
        request_id=k.rid(), csv_text=catalogue_csv(valid_from="2024-02-30"))), INVALID, TREATING_PARTIES,
        field="row 2.valid_from"),
    case("ImportCatalogue-overlapping-rows", lambda k, s: tr(k).ImportCatalogue(ta.ImportCatalogueRequest(
        request_id=k.rid(), csv_text=overlapping_csv())), INVALID, TREATING_PARTIES, field="row 3.valid_from"),
]


def chs(kit):  # noqa: ANN001, ANN201
    return kit.clearing()


def treating_agency_stub(kit):  # noqa: ANN001, ANN201
    """The clearing house as the scene's treating agency calls it (its batch stream)."""
    return kit.stack.stub_as(agency(TREATING), ch_grpc.ClearingHouseServiceStub, kit.stack.clearing_address)


def bad_qty(copy: types_pb2.Claim) -> None:
    copy.lines[0].line.qty = "0"
    copy.lines[0].line.amount_fen = 0
    copy.lines[0].inscp_fen = 0


def inscp_off_by_one(copy: types_pb2.Claim) -> None:
    copy.lines[0].inscp_fen += 1


def negative_part(copy: types_pb2.Claim) -> None:
    copy.lines[0].fulamt_ownpay_fen = -1
    copy.lines[0].inscp_fen += 1


def duplicate_line(copy: types_pb2.Claim) -> None:
    copy.lines.append(copy.lines[0])


def settle_claim(scene: Scene, claim_: types_pb2.Claim, request_id: str | None = None) -> ch.SettleClaimRequest:
    return ch.SettleClaimRequest(request_id=claim_.settlement_id if request_id is None else request_id,
                                 claim=claim_)


CLEARING_CASES = [
    # QuoteClaim
    case("QuoteClaim-settlement_id-not-a-uuid", lambda k, s: chs(k).QuoteClaim(ch.QuoteClaimRequest(
        claim=claim(s, settlement_id="S-1"))), INVALID, CLEARING_PARTIES, field="claim.settlement_id"),
    case("QuoteClaim-bad-treating-region", lambda k, s: chs(k).QuoteClaim(ch.QuoteClaimRequest(
        claim=claim(s, treating_region="44010"))), INVALID, CLEARING_PARTIES, field="claim.treating_region"),
    case("QuoteClaim-same-region", lambda k, s: chs(k).QuoteClaim(ch.QuoteClaimRequest(
        claim=claim(s, insured_region=TREATING))), INVALID, CLEARING_PARTIES, field="claim.insured_region"),
    case("QuoteClaim-member_id-missing", lambda k, s: chs(k).QuoteClaim(ch.QuoteClaimRequest(
        claim=claim(s, member_id=""))), INVALID, CLEARING_PARTIES, field="claim.member_id"),
    case("QuoteClaim-hospital-of-another-region", lambda k, s: chs(k).QuoteClaim(ch.QuoteClaimRequest(
        claim=claim(s, stay__hospital_code="H43010000001"))), INVALID, CLEARING_PARTIES,
        field="claim.stay.hospital_code"),
    case("QuoteClaim-hospital-level-4", lambda k, s: chs(k).QuoteClaim(ch.QuoteClaimRequest(
        claim=claim(s, stay__hospital_level=4))), INVALID, CLEARING_PARTIES, field="claim.stay.hospital_level"),
    case("QuoteClaim-bad-discharge-date", lambda k, s: chs(k).QuoteClaim(ch.QuoteClaimRequest(
        claim=claim(s, stay__discharged_on="2026-3-6"))), INVALID, CLEARING_PARTIES,
        field="claim.stay.discharged_on"),
    case("QuoteClaim-split-does-not-add-up", lambda k, s: chs(k).QuoteClaim(ch.QuoteClaimRequest(
        claim=claim_lines(s, inscp_off_by_one))), INVALID, CLEARING_PARTIES, field="claim.lines[0].inscp_fen"),
    case("QuoteClaim-no-lines", lambda k, s: chs(k).QuoteClaim(ch.QuoteClaimRequest(
        claim=claim(s, lines=[]))), INVALID, CLEARING_PARTIES, field="claim.lines"),
    case("QuoteClaim-settlement_day-missing", lambda k, s: chs(k).QuoteClaim(ch.QuoteClaimRequest(
        claim=claim(s, settlement_day=""))), INVALID, CLEARING_PARTIES, field="claim.settlement_day"),
    case("QuoteClaim-region-without-agency", lambda k, s: chs(k).QuoteClaim(ch.QuoteClaimRequest(
        claim=claim(s, insured_region="999999"))), NOT_FOUND, CLEARING_PARTIES, resource="regions/999999"),
    # SettleClaim
    case("SettleClaim-request_id-missing", lambda k, s: chs(k).SettleClaim(settle_claim(s, claim(s), "")),
         INVALID, CLEARING_PARTIES, field="request_id"),
    case("SettleClaim-request_id-not-the-settlement_id",
         lambda k, s: chs(k).SettleClaim(settle_claim(s, claim(s), str(uuid.uuid4()))),
         INVALID, CLEARING_PARTIES, field="request_id"),
    # SettleClaimBatch, as the treating agency (a routed stub cannot look into a stream's batches)
    case("SettleClaimBatch-request_id-not-the-settlement_id", lambda k, s: k.batch_answered(
        treating_agency_stub(k).SettleClaimBatch(iter([ch.SettleClaimBatchRequest(batch_id=1, claims=[
            settle_claim(s, claim(s), str(uuid.uuid4()))])]))), INVALID, CLEARING_PARTIES,
        field="claims[0].request_id"),
    case("SettleClaimBatch-line-twice", lambda k, s: k.batch_answered(
        treating_agency_stub(k).SettleClaimBatch(iter([ch.SettleClaimBatchRequest(batch_id=1, claims=[
            settle_claim(s, claim_lines(s, duplicate_line))])]))), INVALID, CLEARING_PARTIES,
        field="claims[0].claim.lines[1].line.line_id"),
    case("SettleClaim-line-twice", lambda k, s: chs(k).SettleClaim(settle_claim(s, claim_lines(s, duplicate_line))),
         INVALID, CLEARING_PARTIES, field="claim.lines[1].line.line_id"),
    case("SettleClaim-negative-part", lambda k, s: chs(k).SettleClaim(settle_claim(s, claim_lines(s, negative_part))),
         INVALID, CLEARING_PARTIES, field="claim.lines[0]"),
    case("SettleClaim-qty-zero", lambda k, s: chs(k).SettleClaim(settle_claim(s, claim_lines(s, bad_qty))),
         INVALID, CLEARING_PARTIES, field="claim.lines[0].line.qty"),
    case("SettleClaim-bad-treating-region", lambda k, s: chs(k).SettleClaim(settle_claim(
        s, claim(s, treating_region="0"))), INVALID, CLEARING_PARTIES, field="claim.treating_region"),
    case("SettleClaim-settlement_day-missing", lambda k, s: chs(k).SettleClaim(settle_claim(
        s, claim(s, settlement_day=""))), INVALID, CLEARING_PARTIES, field="claim.settlement_day"),
    case("SettleClaim-settlement_day-not-a-day", lambda k, s: chs(k).SettleClaim(settle_claim(
        s, claim(s, settlement_day="2026-02-30"))), INVALID, CLEARING_PARTIES, field="claim.settlement_day"),
    # CancelClaim
    case("CancelClaim-request_id-not-a-uuid", lambda k, s: chs(k).CancelClaim(ch.CancelClaimRequest(
        request_id="c", settlement_id=s.settlement_id)), INVALID, CLEARING_PARTIES, field="request_id"),
    case("CancelClaim-settlement_id-missing", lambda k, s: chs(k).CancelClaim(ch.CancelClaimRequest(
        request_id=k.rid())), INVALID, CLEARING_PARTIES, field="settlement_id"),
    case("CancelClaim-unknown", lambda k, s: chs(k).CancelClaim(ch.CancelClaimRequest(
        request_id=k.rid(), settlement_id=UNKNOWN)), NOT_FOUND, CLEARING_PARTIES, resource=UNKNOWN),
    case("CancelClaim-already-cancelled", lambda k, s: chs(k).CancelClaim(ch.CancelClaimRequest(
        request_id=k.rid(), settlement_id=s.cancelled_id)), PRECONDITION, CLEARING_PARTIES, subject="settlement_id"),
    # ReverseClaim
    case("ReverseClaim-request_id-missing", lambda k, s: chs(k).ReverseClaim(ch.ReverseClaimRequest(
        settlement_id=k.rid(), treating_region="440100", insured_region=INSURED)), INVALID, CLEARING_PARTIES,
        field="request_id"),
    case("ReverseClaim-insured_region-missing", lambda k, s: chs(k).ReverseClaim(ch.ReverseClaimRequest(
        request_id=k.rid(), settlement_id=k.rid(), treating_region="440100")), INVALID, CLEARING_PARTIES,
        field="insured_region"),
    case("ReverseClaim-other-regions", lambda k, s: chs(k).ReverseClaim(ch.ReverseClaimRequest(
        request_id=k.rid(), settlement_id=s.settlement_id, treating_region="440100", insured_region="430100")),
        INVALID, CLEARING_PARTIES, field="insured_region"),
    case("ReverseClaim-unconnected-region", lambda k, s: chs(k).ReverseClaim(ch.ReverseClaimRequest(
        request_id=k.rid(), settlement_id=k.rid(), treating_region="440100", insured_region="990100")),
        NOT_FOUND, CLEARING_PARTIES, resource="990100"),
    # 3201 / 3202 / reconciliation
    case("GetClaimDailyTotals-bad-day", lambda k, s: chs(k).GetClaimDailyTotals(ch.GetClaimDailyTotalsRequest(
        day="2026-13-01")), INVALID, CLEARING_PARTIES, field="day"),
    case("GetClaimDailyTotals-bad-region", lambda k, s: chs(k).GetClaimDailyTotals(ch.GetClaimDailyTotalsRequest(
        day="2026-03-06", insured_region="61")), INVALID, CLEARING_PARTIES, field="insured_region"),
    case("StreamClaimDailyDetail-bad-treating-region", lambda k, s: drain(chs(k).StreamClaimDailyDetail(
        ch.StreamClaimDailyDetailRequest(day="2026-03-06", treating_region="x"))), INVALID, CLEARING_PARTIES,
        field="treating_region"),
    case("ReconcileInsuredAgencies-day-missing", lambda k, s: chs(k).ReconcileInsuredAgencies(
        ch.ReconcileInsuredAgenciesRequest()), INVALID, CLEARING_PARTIES, field="day"),
    case("ReconcileInsuredAgencies-unknown-day-key", lambda k, s: chs(k).ReconcileInsuredAgencies(
        ch.ReconcileInsuredAgenciesRequest(day="2026-03-06", day_key=9)), INVALID, CLEARING_PARTIES, field="day_key"),
    case("GetClaimDailyTotals-unknown-day-key", lambda k, s: chs(k).GetClaimDailyTotals(ch.GetClaimDailyTotalsRequest(
        day="2026-03-06", day_key=5)), INVALID, CLEARING_PARTIES, field="day_key"),
    case("StreamClaimDailyDetail-unknown-day-key", lambda k, s: drain(chs(k).StreamClaimDailyDetail(
        ch.StreamClaimDailyDetailRequest(day="2026-03-06", day_key=4))), INVALID, CLEARING_PARTIES, field="day_key"),
    # GetClaim
    case("GetClaim-settlement_id-not-a-uuid", lambda k, s: chs(k).GetClaim(ch.GetClaimRequest(settlement_id="nope")),
         INVALID, CLEARING_PARTIES, field="settlement_id"),
    case("GetClaim-unknown", lambda k, s: chs(k).GetClaim(ch.GetClaimRequest(settlement_id=UNKNOWN)),
         NOT_FOUND, CLEARING_PARTIES, resource=UNKNOWN),
    # Translate
    case("Translate-bad-from-region", lambda k, s: chs(k).Translate(ch.TranslateRequest(
        from_region="4401", code="X", on_date=ADMITTED_ON)), INVALID, CLEARING_PARTIES, field="from_region"),
    case("Translate-code-missing", lambda k, s: chs(k).Translate(ch.TranslateRequest(
        from_region=TREATING, code="", on_date=ADMITTED_ON)), INVALID, CLEARING_PARTIES, field="code"),
    case("Translate-bad-date", lambda k, s: chs(k).Translate(ch.TranslateRequest(
        from_region=TREATING, code=k.plain_codes(TREATING)[0], on_date="2026-02-30")),
        INVALID, CLEARING_PARTIES, field="on_date"),
    case("Translate-bad-to-region", lambda k, s: chs(k).Translate(ch.TranslateRequest(
        from_region=TREATING, code=k.plain_codes(TREATING)[0], to_region="43O100", on_date=ADMITTED_ON)),
        INVALID, CLEARING_PARTIES, field="to_region"),
    case("Translate-region-without-catalogue", lambda k, s: chs(k).Translate(ch.TranslateRequest(
        from_region="999999", code="X", on_date=ADMITTED_ON)), PRECONDITION, CLEARING_PARTIES, subject="from_region"),
    # PublishCatalogue
    case("PublishCatalogue-request_id-missing", lambda k, s: chs(k).PublishCatalogue(ch.PublishCatalogueRequest(
        region="999998", version=1, csv_text=catalogue_csv())), INVALID, CLEARING_PARTIES, field="request_id"),
    case("PublishCatalogue-bad-region", lambda k, s: chs(k).PublishCatalogue(ch.PublishCatalogueRequest(
        request_id=k.rid(), region="99999", version=1, csv_text=catalogue_csv())),
        INVALID, CLEARING_PARTIES, field="region"),
    # TopUpPrepayment / ListPrepayments
    case("TopUpPrepayment-amount-zero", lambda k, s: chs(k).TopUpPrepayment(ch.TopUpPrepaymentRequest(
        request_id=k.rid(), insured_region="610924", amount_fen=0)), INVALID, CLEARING_PARTIES, field="amount_fen"),
    case("TopUpPrepayment-bad-region", lambda k, s: chs(k).TopUpPrepayment(ch.TopUpPrepaymentRequest(
        request_id=k.rid(), insured_region="61092", amount_fen=100)), INVALID, CLEARING_PARTIES,
        field="insured_region"),
    case("TopUpPrepayment-unknown-region", lambda k, s: chs(k).TopUpPrepayment(ch.TopUpPrepaymentRequest(
        request_id=k.rid(), insured_region="999998", amount_fen=100)), NOT_FOUND, CLEARING_PARTIES,
        resource="regions/999998"),
    case("TopUpPrepayment-required-negative", lambda k, s: chs(k).TopUpPrepayment(ch.TopUpPrepaymentRequest(
        request_id=k.rid(), insured_region="610924", amount_fen=100, required_fen=-1)), INVALID, CLEARING_PARTIES,
        field="required_fen"),
    case("ListPrepayments-bad-region", lambda k, s: chs(k).ListPrepayments(ch.ListPrepaymentsRequest(
        insured_region="abc")), INVALID, CLEARING_PARTIES, field="insured_region"),
    # StreamStatement
    case("StreamStatement-bad-region", lambda k, s: drain(chs(k).StreamStatement(ch.StreamStatementRequest(
        region="4401", month="2026-03"))), INVALID, CLEARING_PARTIES, field="region"),
    # GetYearSummary
    case("GetYearSummary-bad-region", lambda k, s: chs(k).GetYearSummary(ch.GetYearSummaryRequest(
        region="44010O", year="2026")), INVALID, CLEARING_PARTIES, field="region"),
    case("GetYearSummary-year-a-month", lambda k, s: chs(k).GetYearSummary(ch.GetYearSummaryRequest(
        region=TREATING, year="2026-03")), INVALID, CLEARING_PARTIES, field="year"),
    case("GetYearSummary-year-missing", lambda k, s: chs(k).GetYearSummary(ch.GetYearSummaryRequest(
        region=TREATING)), INVALID, CLEARING_PARTIES, field="year"),
    case("GetYearSummary-year-full-width-digits", lambda k, s: chs(k).GetYearSummary(ch.GetYearSummaryRequest(
        region=TREATING, year="２０２６")), INVALID, CLEARING_PARTIES, field="year"),
    case("GetYearSummary-year-out-of-range", lambda k, s: chs(k).GetYearSummary(ch.GetYearSummaryRequest(
        region=TREATING, year="1999")), INVALID, CLEARING_PARTIES, field="year"),
    # SearchCatalogue (treating agency)
    case("SearchCatalogue-neither-code-nor-text", lambda k, s: tr(k).SearchCatalogue(ta.SearchCatalogueRequest()),
         INVALID, CLEARING_PARTIES, field="code"),
    case("SearchCatalogue-code-and-text", lambda k, s: tr(k).SearchCatalogue(ta.SearchCatalogueRequest(
        code="X", text="Y")), INVALID, CLEARING_PARTIES, field="text"),
    case("SearchCatalogue-on_date-not-a-date", lambda k, s: tr(k).SearchCatalogue(ta.SearchCatalogueRequest(
        text="Y", on_date="2026-13-01")), INVALID, CLEARING_PARTIES, field="on_date"),
    case("SearchCatalogue-limit-negative", lambda k, s: tr(k).SearchCatalogue(ta.SearchCatalogueRequest(
        text="Y", limit=-1)), INVALID, CLEARING_PARTIES, field="limit"),
    # ListPayouts (treating agency)
    case("ListPayouts-month-not-a-month", lambda k, s: tr(k).ListPayouts(ta.ListPayoutsRequest(month="2026-13")),
         INVALID, CLEARING_PARTIES, field="month"),
    # ListSettledStays (treating agency)
    case("ListSettledStays-period-not-a-month", lambda k, s: tr(k).ListSettledStays(ta.ListSettledStaysRequest(
        period="2026-13")), INVALID, CLEARING_PARTIES, field="period"),
    case("ListSettledStays-period-missing", lambda k, s: tr(k).ListSettledStays(ta.ListSettledStaysRequest()),
         INVALID, CLEARING_PARTIES, field="period"),
    case("ListSettledStays-period-year-out-of-range", lambda k, s: tr(k).ListSettledStays(
        ta.ListSettledStaysRequest(period="1999")), INVALID, CLEARING_PARTIES, field="period"),
    # ClosePayoutMonth (treating agency). A month with no payouts: after the garbage test's scratch month, which
    # it may close (test_garbage SHARED_STATE_GUARDS), and long before any test settles.
    case("ClosePayoutMonth-request_id-missing", lambda k, s: tr(k).ClosePayoutMonth(ta.ClosePayoutMonthRequest(
        month="2000-02", allow_empty=True)), INVALID, CLEARING_PARTIES, field="request_id"),
    case("ClosePayoutMonth-month-not-a-month", lambda k, s: tr(k).ClosePayoutMonth(ta.ClosePayoutMonthRequest(
        request_id=k.rid(), month="2026-13")), INVALID, CLEARING_PARTIES, field="month"),
    case("ClosePayoutMonth-month-with-full-width-digits", lambda k, s: tr(k).ClosePayoutMonth(
        ta.ClosePayoutMonthRequest(request_id=k.rid(), month="２０２６-01")), INVALID, CLEARING_PARTIES, field="month"),
    case("ClosePayoutMonth-the-current-month", lambda k, s: tr(k).ClosePayoutMonth(ta.ClosePayoutMonthRequest(
        request_id=k.rid(), month=current_month(), allow_empty=True)), PRECONDITION, CLEARING_PARTIES, subject="month"),
    case("ClosePayoutMonth-a-future-month", lambda k, s: tr(k).ClosePayoutMonth(ta.ClosePayoutMonthRequest(
        request_id=k.rid(), month="2100-01", allow_empty=True)), PRECONDITION, CLEARING_PARTIES, subject="month"),
    case("ClosePayoutMonth-an-empty-month-not-on-purpose", lambda k, s: tr(k).ClosePayoutMonth(
        ta.ClosePayoutMonthRequest(request_id=k.rid(), month="2000-02")), PRECONDITION, CLEARING_PARTIES,
        subject="month"),
    # CloseHospitalPaymentMonth (treating agency): validate_only, so nothing is posted even if the checks let it by
    case("CloseHospitalPaymentMonth-month-not-a-month", lambda k, s: tr(k).CloseHospitalPaymentMonth(
        ta.CloseHospitalPaymentMonthRequest(month="2026-13", validate_only=True)), INVALID, CLEARING_PARTIES,
        field="month"),
    case("CloseHospitalPaymentMonth-weights_year-a-month", lambda k, s: tr(k).CloseHospitalPaymentMonth(
        ta.CloseHospitalPaymentMonthRequest(month="2000-02", weights_year="2000-01", validate_only=True)),
        INVALID, CLEARING_PARTIES, field="weights_year"),
    case("CloseHospitalPaymentMonth-special-review-not-an-id", lambda k, s: tr(k).CloseHospitalPaymentMonth(
        ta.CloseHospitalPaymentMonthRequest(month="2000-02", special_review_case_ids=["S1"], validate_only=True)),
        INVALID, CLEARING_PARTIES, field="special_review_case_ids[0]"),
    case("CloseHospitalPaymentMonth-an-open-payout-month", lambda k, s: tr(k).CloseHospitalPaymentMonth(
        ta.CloseHospitalPaymentMonthRequest(month="2100-01")), PRECONDITION, CLEARING_PARTIES, subject="month"),
    # CloseHospitalPaymentYear (treating agency)
    case("CloseHospitalPaymentYear-year-a-month", lambda k, s: tr(k).CloseHospitalPaymentYear(
        ta.CloseHospitalPaymentYearRequest(year="2026-03", validate_only=True)), INVALID, CLEARING_PARTIES,
        field="year"),
    case("CloseHospitalPaymentYear-year-missing", lambda k, s: tr(k).CloseHospitalPaymentYear(
        ta.CloseHospitalPaymentYearRequest(validate_only=True)), INVALID, CLEARING_PARTIES, field="year"),
    case("CloseHospitalPaymentYear-an-unfinished-year", lambda k, s: tr(k).CloseHospitalPaymentYear(
        ta.CloseHospitalPaymentYearRequest(year="2099")), PRECONDITION, CLEARING_PARTIES, subject="year"),
    # CloseMonth / GetMonthClosing
    case("CloseMonth-request_id-missing", lambda k, s: chs(k).CloseMonth(ch.CloseMonthRequest(month="2026-01")),
         INVALID, CLEARING_PARTIES, field="request_id"),
    case("CloseMonth-month-not-a-month", lambda k, s: chs(k).CloseMonth(ch.CloseMonthRequest(
        request_id=k.rid(), month="2026-13")), INVALID, CLEARING_PARTIES, field="month"),
    case("CloseMonth-the-current-month", lambda k, s: chs(k).CloseMonth(ch.CloseMonthRequest(
        request_id=k.rid(), month=current_month())), PRECONDITION, CLEARING_PARTIES, subject="month"),
    case("CloseMonth-a-future-month", lambda k, s: chs(k).CloseMonth(ch.CloseMonthRequest(
        request_id=k.rid(), month="2100-01")), PRECONDITION, CLEARING_PARTIES, subject="month"),
    # ConfirmTransfer / SetPrepaymentTerms
    case("ConfirmTransfer-request_id-missing", lambda k, s: chs(k).ConfirmTransfer(ch.ConfirmTransferRequest(
        month="2026-01", region=TREATING, amount_fen=100)), INVALID, CLEARING_PARTIES, field="request_id"),
    case("ConfirmTransfer-month-not-a-month", lambda k, s: chs(k).ConfirmTransfer(ch.ConfirmTransferRequest(
        request_id=k.rid(), month="2026-1", region=TREATING, amount_fen=100)), INVALID, CLEARING_PARTIES,
        field="month"),
    case("ConfirmTransfer-bad-region", lambda k, s: chs(k).ConfirmTransfer(ch.ConfirmTransferRequest(
        request_id=k.rid(), month="2026-01", region="4401", amount_fen=100)), INVALID, CLEARING_PARTIES,
        field="region"),
    case("ConfirmTransfer-amount-negative", lambda k, s: chs(k).ConfirmTransfer(ch.ConfirmTransferRequest(
        request_id=k.rid(), month="2026-01", region=TREATING, amount_fen=-5)), INVALID, CLEARING_PARTIES,
        field="amount_fen"),
    case("ConfirmTransfer-reference-with-a-control-character", lambda k, s: chs(k).ConfirmTransfer(
        ch.ConfirmTransferRequest(request_id=k.rid(), month="2026-01", region=TREATING, amount_fen=5,
                                  reference="BANK\x07")), INVALID, CLEARING_PARTIES, field="reference"),
    case("ConfirmTransfer-month-not-closed", lambda k, s: chs(k).ConfirmTransfer(ch.ConfirmTransferRequest(
        request_id=k.rid(), month="1999-01", region=TREATING, amount_fen=5)), PRECONDITION, CLEARING_PARTIES,
        subject="month"),
    case("SetPrepaymentTerms-months-zero", lambda k, s: chs(k).SetPrepaymentTerms(ch.SetPrepaymentTermsRequest(
        request_id=k.rid(), insured_region=INSURED, months=0, threshold_bp=7000)), INVALID, CLEARING_PARTIES,
        field="months"),
    case("SetPrepaymentTerms-threshold-above-whole", lambda k, s: chs(k).SetPrepaymentTerms(
        ch.SetPrepaymentTermsRequest(request_id=k.rid(), insured_region=INSURED, months=2, threshold_bp=10_001)),
        INVALID, CLEARING_PARTIES, field="threshold_bp"),
    case("SetPrepaymentTerms-unknown-region", lambda k, s: chs(k).SetPrepaymentTerms(ch.SetPrepaymentTermsRequest(
        request_id=k.rid(), insured_region="999998", months=2, threshold_bp=7000)), NOT_FOUND, CLEARING_PARTIES,
        resource="regions/999998"),
    case("GetMonthClosing-month-not-a-month", lambda k, s: chs(k).GetMonthClosing(ch.GetMonthClosingRequest(
        month="March")), INVALID, CLEARING_PARTIES, field="month"),
    case("GetMonthClosing-not-closed", lambda k, s: chs(k).GetMonthClosing(ch.GetMonthClosingRequest(
        month="1999-01")), NOT_FOUND, CLEARING_PARTIES, resource="months/1999-01"),
    case("PublishCatalogue-version-zero", lambda k, s: chs(k).PublishCatalogue(ch.PublishCatalogueRequest(
        request_id=k.rid(), region="999998", version=0, csv_text=catalogue_csv())),
        INVALID, CLEARING_PARTIES, field="version"),
    case("PublishCatalogue-bad-csv", lambda k, s: chs(k).PublishCatalogue(ch.PublishCatalogueRequest(
        request_id=k.rid(), region="999998", version=1, csv_text=catalogue_csv(relation="same"))),
        INVALID, CLEARING_PARTIES, field="row 2.relation"),
    case("PublishCatalogue-version-exists-with-other-content", lambda k, s: chs(k).PublishCatalogue(
        ch.PublishCatalogueRequest(request_id=k.rid(), region=TREATING, version=1, csv_text=catalogue_csv())),
        PRECONDITION, CLEARING_PARTIES, subject="version"),
    # Disputes (拒付 / 申诉)
    case("RaiseDispute-request_id-missing", lambda k, s: chs(k).RaiseDispute(ch.RaiseDisputeRequest(
        settlement_id=s.settlement_id, amount_fen=1, rule_id="AUD-DAYQTY", insured_region=INSURED)),
        INVALID, CLEARING_PARTIES, field="request_id"),
    case("RaiseDispute-settlement_id-not-a-uuid", lambda k, s: chs(k).RaiseDispute(ch.RaiseDisputeRequest(
        request_id=k.rid(), settlement_id="S1", amount_fen=1, rule_id="AUD-DAYQTY", insured_region=INSURED)),
        INVALID, CLEARING_PARTIES, field="settlement_id"),
    case("RaiseDispute-amount-zero", lambda k, s: chs(k).RaiseDispute(ch.RaiseDisputeRequest(
        request_id=k.rid(), settlement_id=s.settlement_id, amount_fen=0, rule_id="AUD-DAYQTY",
        insured_region=INSURED)), INVALID, CLEARING_PARTIES, field="amount_fen"),
    case("RaiseDispute-unknown-rule", lambda k, s: chs(k).RaiseDispute(ch.RaiseDisputeRequest(
        request_id=k.rid(), settlement_id=s.settlement_id, amount_fen=1, rule_id="AUD-FOO", insured_region=INSURED)),
        INVALID, CLEARING_PARTIES, field="rule_id"),
    case("RaiseDispute-by-hand-without-a-reason", lambda k, s: chs(k).RaiseDispute(ch.RaiseDisputeRequest(
        request_id=k.rid(), settlement_id=s.settlement_id, amount_fen=1, insured_region=INSURED)),
        INVALID, CLEARING_PARTIES, field="reason"),
    case("RaiseDispute-bad-region", lambda k, s: chs(k).RaiseDispute(ch.RaiseDisputeRequest(
        request_id=k.rid(), settlement_id=s.settlement_id, amount_fen=1, rule_id="AUD-SEX", insured_region="61")),
        INVALID, CLEARING_PARTIES, field="insured_region"),
    case("RaiseDispute-unknown-settlement", lambda k, s: chs(k).RaiseDispute(ch.RaiseDisputeRequest(
        request_id=k.rid(), settlement_id=UNKNOWN, amount_fen=1, rule_id="AUD-SEX", insured_region=INSURED)),
        NOT_FOUND, CLEARING_PARTIES, resource=UNKNOWN),
    case("RaiseDispute-another-regions-member", lambda k, s: chs(k).RaiseDispute(ch.RaiseDisputeRequest(
        request_id=k.rid(), settlement_id=s.settlement_id, amount_fen=1, rule_id="AUD-SEX", insured_region="430100")),
        NOT_FOUND, CLEARING_PARTIES, resource="settlements/"),
    case("RaiseDispute-a-cancelled-settlement", lambda k, s: chs(k).RaiseDispute(ch.RaiseDisputeRequest(
        request_id=k.rid(), settlement_id=s.cancelled_id, amount_fen=1, rule_id="AUD-SEX", insured_region=INSURED)),
        PRECONDITION, CLEARING_PARTIES, subject="settlement_id"),
    case("AnswerDispute-request_id-missing", lambda k, s: chs(k).AnswerDispute(ch.AnswerDisputeRequest(
        dispute_id=UNKNOWN, answer=ch.DISPUTE_ANSWER_ACCEPT)), INVALID, CLEARING_PARTIES, field="request_id"),
    case("AnswerDispute-answer-unspecified", lambda k, s: chs(k).AnswerDispute(ch.AnswerDisputeRequest(
        request_id=k.rid(), dispute_id=UNKNOWN)), INVALID, CLEARING_PARTIES, field="answer"),
    case("AnswerDispute-unknown-dispute", lambda k, s: chs(k).AnswerDispute(ch.AnswerDisputeRequest(
        request_id=k.rid(), dispute_id=UNKNOWN, answer=ch.DISPUTE_ANSWER_ACCEPT)), NOT_FOUND, CLEARING_PARTIES,
        resource=f"disputes/{UNKNOWN}"),
    case("DecideDispute-decision-unspecified", lambda k, s: chs(k).DecideDispute(ch.DecideDisputeRequest(
        request_id=k.rid(), dispute_id=UNKNOWN)), INVALID, CLEARING_PARTIES, field="decision"),
    case("DecideDispute-unknown-dispute", lambda k, s: chs(k).DecideDispute(ch.DecideDisputeRequest(
        request_id=k.rid(), dispute_id=UNKNOWN, decision=ch.DISPUTE_DECISION_UPHELD)), NOT_FOUND, CLEARING_PARTIES,
        resource=f"disputes/{UNKNOWN}"),
    case("GetDispute-not-a-uuid", lambda k, s: chs(k).GetDispute(ch.GetDisputeRequest(dispute_id="D1")),
         INVALID, CLEARING_PARTIES, field="dispute_id"),
    case("GetDispute-unknown", lambda k, s: chs(k).GetDispute(ch.GetDisputeRequest(dispute_id=UNKNOWN)),
         NOT_FOUND, CLEARING_PARTIES, resource=f"disputes/{UNKNOWN}"),
    case("ListDisputes-bad-region", lambda k, s: chs(k).ListDisputes(ch.ListDisputesRequest(region="4401")),
         INVALID, CLEARING_PARTIES, field="region"),
    case("ListDisputes-bad-month", lambda k, s: chs(k).ListDisputes(ch.ListDisputesRequest(
        settlement_month="2026-13")), INVALID, CLEARING_PARTIES, field="settlement_month"),
]


def ins(kit, region: str = "430100"):  # noqa: ANN001, ANN201
    return kit.insured(region)


INSURED_CASES = [
    # RegisterMember
    case("RegisterMember-request_id-not-a-uuid", lambda k, s: ins(k).RegisterMember(register(k, request_id="r")),
         INVALID, INSURED_PARTIES, field="request_id"),
    case("RegisterMember-member_id-missing", lambda k, s: ins(k).RegisterMember(register(k, member__member_id="")),
         INVALID, INSURED_PARTIES, field="member.member_id"),
    case("RegisterMember-short-id-number", lambda k, s: ins(k).RegisterMember(register(k, member__id_number="4301")),
         INVALID, INSURED_PARTIES, field="member.id_number"),
    case("RegisterMember-name-missing", lambda k, s: ins(k).RegisterMember(register(k, member__name=" ")),
         INVALID, INSURED_PARTIES, field="member.name"),
    case("RegisterMember-scheme-unspecified", lambda k, s: ins(k).RegisterMember(register(
        k, member__scheme=types_pb2.SCHEME_UNSPECIFIED)), INVALID, INSURED_PARTIES, field="member.scheme"),
    case("RegisterMember-scheme-unknown-number", lambda k, s: ins(k).RegisterMember(register(
        k, member__scheme=7)), INVALID, INSURED_PARTIES, field="member.scheme"),
    case("RegisterMember-assistance-unspecified", lambda k, s: ins(k).RegisterMember(register(
        k, member__assistance=types_pb2.ASSISTANCE_TIER_UNSPECIFIED)), INVALID, INSURED_PARTIES,
        field="member.assistance"),
    case("RegisterMember-already-registered", lambda k, s: ins(k).RegisterMember(register(
        k, member__member_id="M43010000000001")), PRECONDITION, INSURED_PARTIES, subject="member.member_id"),
    # RecordFiling
    case("RecordFiling-request_id-missing", lambda k, s: ins(k, INSURED).RecordFiling(filing(k, s, request_id="")),
         INVALID, INSURED_PARTIES, field="request_id"),
    case("RecordFiling-member_id-missing", lambda k, s: ins(k, INSURED).RecordFiling(filing(k, s, member_id="")),
         INVALID, INSURED_PARTIES, field="member_id"),
    case("RecordFiling-category-unspecified", lambda k, s: ins(k, INSURED).RecordFiling(filing(
        k, s, filing__category=types_pb2.FILING_STATUS_UNSPECIFIED)), INVALID, INSURED_PARTIES,
        field="filing.category"),
    case("RecordFiling-category-unfiled", lambda k, s: ins(k, INSURED).RecordFiling(filing(
        k, s, filing__category=types_pb2.FILING_STATUS_UNFILED)), INVALID, INSURED_PARTIES, field="filing.category"),
    case("RecordFiling-bad-treating-region", lambda k, s: ins(k, INSURED).RecordFiling(filing(
        k, s, filing__treating_region="44")), INVALID, INSURED_PARTIES, field="filing.treating_region"),
    case("RecordFiling-valid_from-missing", lambda k, s: ins(k, INSURED).RecordFiling(filing(
        k, s, filing__valid_from="")), INVALID, INSURED_PARTIES, field="filing.valid_from"),
    case("RecordFiling-valid_to-before-valid_from", lambda k, s: ins(k, INSURED).RecordFiling(filing(
        k, s, filing__valid_to="2026-02-28")), INVALID, INSURED_PARTIES, field="filing.valid_to"),
    case("RecordFiling-unknown-member", lambda k, s: ins(k, INSURED).RecordFiling(filing(
        k, s, member_id="NOBODY-1")), NOT_FOUND, INSURED_PARTIES, resource="NOBODY-1"),
    # RecordSpecialDisease / CancelSpecialDisease / ListSpecialDiseases (SPEC §13: 2503 / 2504 / 5301)
    case("RecordSpecialDisease-disease-unspecified", lambda k, s: ins(k, INSURED).RecordSpecialDisease(
        ia.RecordSpecialDiseaseRequest(request_id=k.rid(), member_id=s.member.member_id,
                                       recognition=types_pb2.SpecialDiseaseRecognition(
                                           valid_from="2026-01-01", diagnosis="N18.500"))),
         INVALID, INSURED_PARTIES, field="recognition.disease"),
    case("CancelSpecialDisease-reason-missing", lambda k, s: ins(k, INSURED).CancelSpecialDisease(
        ia.CancelSpecialDiseaseRequest(request_id=k.rid(), member_id=s.member.member_id, recognition_id="1")),
         INVALID, INSURED_PARTIES, field="reason"),
    case("ListSpecialDiseases-unknown-member", lambda k, s: ins(k, INSURED).ListSpecialDiseases(
        ia.ListSpecialDiseasesRequest(member_id="NOBODY-1")), NOT_FOUND, INSURED_PARTIES, resource="NOBODY-1"),
    # GetMember
    case("GetMember-member_id-missing", lambda k, s: ins(k).GetMember(ia.GetMemberRequest()),
         INVALID, INSURED_PARTIES, field="member_id"),
    case("GetMember-year-out-of-range", lambda k, s: ins(k, INSURED).GetMember(ia.GetMemberRequest(
        member_id=s.member.member_id, year=1999)), INVALID, INSURED_PARTIES, field="year"),
    case("GetMember-unknown", lambda k, s: ins(k).GetMember(ia.GetMemberRequest(member_id="NOBODY-2")),
         NOT_FOUND, INSURED_PARTIES, resource="NOBODY-2"),
    case("GetMember-member-of-another-region", lambda k, s: ins(k).GetMember(ia.GetMemberRequest(
        member_id="M61092400000001")), NOT_FOUND, INSURED_PARTIES, resource="M61092400000001"),
    # ListMembers
    case("ListMembers-limit-too-large", lambda k, s: ins(k, INSURED).ListMembers(ia.ListMembersRequest(limit=1001)),
         INVALID, INSURED_PARTIES, field="limit"),
    case("ListMembers-page_token-with-NUL", lambda k, s: ins(k, INSURED).ListMembers(ia.ListMembersRequest(
        page_token="M\x00")), INVALID, INSURED_PARTIES, field="page_token"),
    # VerifyMember
    case("VerifyMember-member_id-missing", lambda k, s: ins(k, INSURED).VerifyMember(ia.VerifyMemberRequest(
        id_number=s.member.id_number)), INVALID, INSURED_PARTIES, field="member_id"),
    case("VerifyMember-id_number-short", lambda k, s: ins(k, INSURED).VerifyMember(ia.VerifyMemberRequest(
        member_id=s.member.member_id, id_number="6109")), INVALID, INSURED_PARTIES, field="id_number"),
    case("VerifyMember-id_number-full-width-digits", lambda k, s: ins(k, INSURED).VerifyMember(ia.VerifyMemberRequest(
        member_id=s.member.member_id, id_number="６" + s.member.id_number[1:])), INVALID, INSURED_PARTIES,
        field="id_number"),
    case("VerifyMember-unknown-member", lambda k, s: ins(k, INSURED).VerifyMember(ia.VerifyMemberRequest(
        member_id="NOBODY-4", id_number=s.member.id_number)), NOT_FOUND, INSURED_PARTIES, resource="NOBODY-4"),
    case("VerifyMember-member-of-another-region", lambda k, s: ins(k).VerifyMember(ia.VerifyMemberRequest(
        member_id=s.member.member_id, id_number=s.member.id_number)), NOT_FOUND, INSURED_PARTIES,
        resource="regions/430100/members/"),
    # QuoteAdjudication
    case("QuoteAdjudication-claim-for-another-region", lambda k, s: ins(k).QuoteAdjudication(
        ia.QuoteAdjudicationRequest(claim=claim(s))), INVALID, INSURED_PARTIES, field="claim.insured_region"),
    case("QuoteAdjudication-unknown-member", lambda k, s: ins(k, INSURED).QuoteAdjudication(
        ia.QuoteAdjudicationRequest(claim=claim(s, member_id="NOBODY-3"))), NOT_FOUND, INSURED_PARTIES,
        resource="NOBODY-3"),
    case("QuoteAdjudication-before-the-policy", lambda k, s: ins(k, INSURED).QuoteAdjudication(
        ia.QuoteAdjudicationRequest(claim=before_policy(s))), PRECONDITION, INSURED_PARTIES,
        subject="discharged_on"),
    case("QuoteAdjudication-hospital-not-of-treating-region", lambda k, s: ins(k, INSURED).QuoteAdjudication(
        ia.QuoteAdjudicationRequest(claim=claim(s, treating_region="530100"))), INVALID, INSURED_PARTIES,
        field="claim.stay.hospital_code"),
    case("QuoteAdjudication-settlement_day-not-a-day", lambda k, s: ins(k, INSURED).QuoteAdjudication(
        ia.QuoteAdjudicationRequest(claim=claim(s, settlement_day="2026/06/02"))), INVALID, INSURED_PARTIES,
        field="claim.settlement_day"),
    # Adjudicate
    case("Adjudicate-request_id-not-the-settlement_id", lambda k, s: ins(k, INSURED).Adjudicate(
        ia.AdjudicateRequest(request_id=k.rid(), claim=claim(s))), INVALID, INSURED_PARTIES, field="request_id"),
    # AdjudicateBatch: a claim of a batch is refused as Adjudicate refuses it, naming the field from the batch.
    case("AdjudicateBatch-request_id-not-the-settlement_id", lambda k, s: k.batch_answered(
        ins(k, INSURED).AdjudicateBatch(iter([ia.AdjudicateBatchRequest(batch_id=1, claims=[
            ia.AdjudicateRequest(request_id=k.rid(), claim=claim(s))])]))), INVALID, INSURED_PARTIES,
        field="claims[0].request_id"),
    case("AdjudicateBatch-unknown-member", lambda k, s: k.batch_answered(
        ins(k, INSURED).AdjudicateBatch(iter([ia.AdjudicateBatchRequest(batch_id=1, claims=[ia.AdjudicateRequest(
            request_id=s.claim.settlement_id, claim=claim(s, member_id="NOBODY-5"))])]))), NOT_FOUND, INSURED_PARTIES,
        resource="NOBODY-5"),
    case("Adjudicate-unknown-member", lambda k, s: ins(k, INSURED).Adjudicate(ia.AdjudicateRequest(
        request_id=s.claim.settlement_id, claim=claim(s, member_id="NOBODY-4"))), NOT_FOUND, INSURED_PARTIES,
        resource="NOBODY-4"),
    case("Adjudicate-split-does-not-add-up", lambda k, s: ins(k, INSURED).Adjudicate(ia.AdjudicateRequest(
        request_id=s.claim.settlement_id, claim=claim_lines(s, inscp_off_by_one))), INVALID, INSURED_PARTIES,
        field="claim.lines[0].inscp_fen"),
    case("Adjudicate-before-the-policy", lambda k, s: ins(k, INSURED).Adjudicate(ia.AdjudicateRequest(
        request_id=s.claim.settlement_id, claim=before_policy(s))), PRECONDITION, INSURED_PARTIES,
        subject="discharged_on"),
    case("Adjudicate-qty-zero", lambda k, s: ins(k, INSURED).Adjudicate(ia.AdjudicateRequest(
        request_id=s.claim.settlement_id, claim=claim_lines(s, bad_qty))), INVALID, INSURED_PARTIES,
        field="claim.lines[0].line.qty"),
    case("Adjudicate-settlement_day-missing", lambda k, s: ins(k, INSURED).Adjudicate(ia.AdjudicateRequest(
        request_id=s.claim.settlement_id, claim=claim(s, settlement_day=""))), INVALID, INSURED_PARTIES,
        field="claim.settlement_day"),
    # ReverseAdjudication
    case("ReverseAdjudication-request_id-not-a-uuid", lambda k, s: ins(k, INSURED).ReverseAdjudication(
        ia.ReverseAdjudicationRequest(request_id="r", settlement_id=s.settlement_id)), INVALID, INSURED_PARTIES,
        field="request_id"),
    case("ReverseAdjudication-settlement_id-missing", lambda k, s: ins(k, INSURED).ReverseAdjudication(
        ia.ReverseAdjudicationRequest(request_id=k.rid())), INVALID, INSURED_PARTIES, field="settlement_id"),
    # 3201 / 3202
    case("GetAdjudicationDailyTotals-bad-day", lambda k, s: ins(k, INSURED).GetAdjudicationDailyTotals(
        ia.GetAdjudicationDailyTotalsRequest(day="06/03/2026")), INVALID, INSURED_PARTIES, field="day"),
    case("StreamAdjudicationDailyDetail-bad-region", lambda k, s: drain(ins(k, INSURED).StreamAdjudicationDailyDetail(
        ia.StreamAdjudicationDailyDetailRequest(day="2026-03-06", treating_region="4401"))), INVALID,
        INSURED_PARTIES, field="treating_region"),
    case("GetAdjudicationDailyTotals-unknown-day-key", lambda k, s: ins(k, INSURED).GetAdjudicationDailyTotals(
        ia.GetAdjudicationDailyTotalsRequest(day="2026-03-06", day_key=3)), INVALID, INSURED_PARTIES, field="day_key"),
    # ExportAdjudications (policy what-if)
    case("ExportAdjudications-bad-month", lambda k, s: drain(ins(k, INSURED).ExportAdjudications(
        ia.ExportAdjudicationsRequest(from_month="2026-13", to_month="2026-03"))), INVALID, INSURED_PARTIES,
        field="from_month"),
    case("ExportAdjudications-backwards", lambda k, s: drain(ins(k, INSURED).ExportAdjudications(
        ia.ExportAdjudicationsRequest(from_month="2026-03", to_month="2026-02"))), INVALID, INSURED_PARTIES,
        field="to_month"),
    case("ExportAdjudications-too-long", lambda k, s: drain(ins(k, INSURED).ExportAdjudications(
        ia.ExportAdjudicationsRequest(from_month="2024-01", to_month="2027-01"))), INVALID, INSURED_PARTIES,
        field="to_month"),
    # CancelAdjudication
    case("CancelAdjudication-request_id-not-a-uuid", lambda k, s: ins(k, INSURED).CancelAdjudication(
        ia.CancelAdjudicationRequest(request_id="c", settlement_id=s.settlement_id)), INVALID, INSURED_PARTIES,
        field="request_id"),
    case("CancelAdjudication-settlement_id-missing", lambda k, s: ins(k, INSURED).CancelAdjudication(
        ia.CancelAdjudicationRequest(request_id=k.rid())), INVALID, INSURED_PARTIES, field="settlement_id"),
    case("CancelAdjudication-unknown", lambda k, s: ins(k, INSURED).CancelAdjudication(
        ia.CancelAdjudicationRequest(request_id=k.rid(), settlement_id=UNKNOWN)), NOT_FOUND, INSURED_PARTIES,
        resource=UNKNOWN),
    case("CancelAdjudication-already-cancelled", lambda k, s: ins(k, INSURED).CancelAdjudication(
        ia.CancelAdjudicationRequest(request_id=k.rid(), settlement_id=s.cancelled_id)), PRECONDITION,
        INSURED_PARTIES, subject="settlement_id"),
]


def his(kit):  # noqa: ANN001, ANN201
    return kit.hospital_service()


async def drain(call) -> list:  # noqa: ANN001 - read a server stream to its end (or its error)
    return [item async for item in call]


HOSPITAL_CASES = [
    case("ReconcileWithAgencies-bad-day", lambda k, s: his(k).ReconcileWithAgencies(
        hp.ReconcileWithAgenciesRequest(day="2026-02-29")), INVALID, HIS_PARTIES, field="day"),
    case("ReconcileWithAgencies-unknown-day-key", lambda k, s: his(k).ReconcileWithAgencies(
        hp.ReconcileWithAgenciesRequest(day="2026-03-06", day_key=3)), INVALID, HIS_PARTIES, field="day_key"),
    case("RunDischarges-request_id-not-a-uuid", lambda k, s: drain(his(k).RunDischarges(run(
        k, request_id="run-1"))), INVALID, HIS_PARTIES, field="request_id"),
    case("RunDischarges-count-zero", lambda k, s: drain(his(k).RunDischarges(run(k, count=0))),
         INVALID, HIS_PARTIES, field="count"),
    case("RunDischarges-count-too-large", lambda k, s: drain(his(k).RunDischarges(run(
        k, count=100001))), INVALID, HIS_PARTIES, field="count"),
    case("RunDischarges-concurrency-too-large", lambda k, s: drain(his(k).RunDischarges(run(
        k, concurrency=65))), INVALID, HIS_PARTIES, field="concurrency"),
    case("RunDischarges-month-13", lambda k, s: drain(his(k).RunDischarges(run(k, month="2026-13"))),
         INVALID, HIS_PARTIES, field="month"),
    case("RunDischarges-month-missing", lambda k, s: drain(his(k).RunDischarges(run(k, month=""))),
         INVALID, HIS_PARTIES, field="month"),
    case("RunVisits-request_id-not-a-uuid", lambda k, s: drain(his(k).RunVisits(hp.RunVisitsRequest(
        request_id="visits-1", month="2026-03", count=1))), INVALID, HIS_PARTIES, field="request_id"),
    case("RunVisits-count-zero", lambda k, s: drain(his(k).RunVisits(hp.RunVisitsRequest(
        request_id=k.rid(), month="2026-03"))), INVALID, HIS_PARTIES, field="count"),
    case("RunVisits-concurrency-too-large", lambda k, s: drain(his(k).RunVisits(hp.RunVisitsRequest(
        request_id=k.rid(), month="2026-03", count=1, concurrency=65))), INVALID, HIS_PARTIES, field="concurrency"),
    case("RunVisits-month-not-begun", lambda k, s: drain(his(k).RunVisits(hp.RunVisitsRequest(
        request_id=k.rid(), month="2099-01", count=1))), INVALID, HIS_PARTIES, field="month"),
    case("GetSummary-month-not-a-month", lambda k, s: his(k).GetSummary(hp.GetSummaryRequest(month="2026-13")),
         INVALID, HIS_PARTIES, field="month"),
]


def unknown_kind(copy: types_pb2.Claim) -> None:
    copy.lines[0].kind = "food"


def nul_csv() -> str:
    return catalogue_csv(name="测试\x00药")


# Regressions found by test_garbage.py (hypothesis garbage): each was INTERNAL, a traceback in a
# party's log, or accepted and written although it is not what the field's contract allows.
GARBAGE_CASES = [
    # A NUL (Postgres text cannot hold one) or another control character in an identifier or name: INTERNAL.
    case("Admit-name-with-NUL", lambda k, s: tr(k).Admit(admit(k, s, patient__name="张\x00三")),
         INVALID, TREATING_PARTIES, field="patient.name"),
    case("UploadCharges-code-with-NUL", lambda k, s: tr(k).UploadCharges(upload(k, s, [line(k, code="X\x00")])),
         INVALID, TREATING_PARTIES, field="lines[0].code"),
    case("GetMember-member_id-with-NUL", lambda k, s: ins(k).GetMember(ia.GetMemberRequest(member_id="M\x00")),
         INVALID, INSURED_PARTIES, field="member_id"),
    case("RegisterMember-name-with-a-control-character", lambda k, s: ins(k).RegisterMember(register(
        k, member__name="李\x07四")), INVALID, INSURED_PARTIES, field="member.name"),
    # ...or in a catalogue cell, and a carriage return inside the header (csv.Error): INTERNAL.
    case("ImportCatalogue-NUL-in-a-cell", lambda k, s: tr(k).ImportCatalogue(ta.ImportCatalogueRequest(
        request_id=k.rid(), csv_text=nul_csv())), INVALID, TREATING_PARTIES, field="row 2"),
    case("ImportCatalogue-carriage-return-in-the-header", lambda k, s: tr(k).ImportCatalogue(
        ta.ImportCatalogueRequest(request_id=k.rid(), csv_text=catalogue_csv().replace("name", "na\rme", 1))),
        INVALID, TREATING_PARTIES, field="header"),
    case("PublishCatalogue-NUL-in-a-cell", lambda k, s: chs(k).PublishCatalogue(ch.PublishCatalogueRequest(
        request_id=k.rid(), region="999998", version=1, csv_text=nul_csv())), INVALID, CLEARING_PARTIES,
        field="row 2"),
    # An item kind other than drug/service/consumable on a classified line: INTERNAL.
    case("QuoteClaim-line-kind-unknown", lambda k, s: chs(k).QuoteClaim(ch.QuoteClaimRequest(
        claim=claim_lines(s, unknown_kind))), INVALID, CLEARING_PARTIES, field="claim.lines[0].kind"),
    case("SettleClaim-line-kind-unknown", lambda k, s: chs(k).SettleClaim(settle_claim(
        s, claim_lines(s, unknown_kind))), INVALID, CLEARING_PARTIES, field="claim.lines[0].kind"),
    case("Adjudicate-line-kind-unknown", lambda k, s: ins(k, INSURED).Adjudicate(ia.AdjudicateRequest(
        request_id=s.claim.settlement_id, claim=claim_lines(s, unknown_kind))), INVALID, INSURED_PARTIES,
        field="claim.lines[0].kind"),
    # A refusal quoting a huge value: its status outgrew gRPC's trailer limit (RESOURCE_EXHAUSTED).
    case("UploadCharges-qty-huge-garbage", lambda k, s: tr(k).UploadCharges(upload(k, s, [line(k, qty="x" * 100_000)])),
         INVALID, TREATING_PARTIES, field="lines[0].qty"),
    case("UploadCharges-qty-emoji-garbage", lambda k, s: tr(k).UploadCharges(upload(k, s, [line(k, qty="🦠" * 400)])),
         INVALID, TREATING_PARTIES, field="lines[0].qty"),
    case("ImportCatalogue-huge-unknown-grade", lambda k, s: tr(k).ImportCatalogue(ta.ImportCatalogueRequest(
        request_id=k.rid(), csv_text=catalogue_csv(grade="D" * 100_000))), INVALID, TREATING_PARTIES,
        field="row 2.grade"),
    # Year 0000 passed the month check, then had no calendar day: INTERNAL.
    case("GetSummary-month-year-zero", lambda k, s: his(k).GetSummary(hp.GetSummaryRequest(month="0000-10")),
         INVALID, HIS_PARTIES, field="month"),
    # A deposit beyond any balance a bigint holds: INTERNAL ("bigint out of range"); a required amount
    # beyond the same bound is refused alike.
    case("TopUpPrepayment-amount-beyond-any-balance", lambda k, s: chs(k).TopUpPrepayment(ch.TopUpPrepaymentRequest(
        request_id=k.rid(), insured_region="610924", amount_fen=2**63 - 1)), INVALID, CLEARING_PARTIES,
        field="amount_fen"),
    case("TopUpPrepayment-required-too-large", lambda k, s: chs(k).TopUpPrepayment(ch.TopUpPrepaymentRequest(
        request_id=k.rid(), insured_region="610924", amount_fen=100, required_fen=2**62)), INVALID,
        CLEARING_PARTIES, field="required_fen"),
    # A month the simulator cannot generate stays for: OK, with every discharge crashing in the log.
    case("RunDischarges-month-before-the-catalogues", lambda k, s: drain(his(k).RunDischarges(run(
        k, month="2023-12"))), INVALID, HIS_PARTIES, field="month"),
    case("RunDischarges-month-9999-12", lambda k, s: drain(his(k).RunDischarges(run(k, month="9999-12"))),
         INVALID, HIS_PARTIES, field="month"),
    # Digits that are not ASCII, a trailing newline (`\d` and `$` in the patterns), an ISO week date:
    # accepted and stored.
    case("Admit-insured_region-trailing-newline", lambda k, s: tr(k).Admit(admit(
        k, s, patient__insured_region=INSURED + "\n")), INVALID, TREATING_PARTIES, field="patient.insured_region"),
    case("Admit-insured_region-full-width-digits", lambda k, s: tr(k).Admit(admit(
        k, s, patient__insured_region="６１０９２４")), INVALID, TREATING_PARTIES, field="patient.insured_region"),
    case("Admit-hospital_code-trailing-newline", lambda k, s: tr(k).Admit(admit(
        k, s, hospital_code=H_GUANGZHOU + "\n")), INVALID, TREATING_PARTIES, field="hospital_code"),
    case("Admit-diagnosis-trailing-newline", lambda k, s: tr(k).Admit(admit(k, s, diagnoses=["J18.9\n"])),
         INVALID, TREATING_PARTIES, field="diagnoses[0]"),
    case("Admit-date-iso-week", lambda k, s: tr(k).Admit(admit(k, s, admitted_on="2026-W10-1")),
         INVALID, TREATING_PARTIES, field="admitted_on"),
    case("RegisterMember-id-number-full-width-digits", lambda k, s: ins(k).RegisterMember(register(
        k, member__id_number="４３０１００１９８００１０１１２３４")), INVALID, INSURED_PARTIES, field="member.id_number"),
]
ALL_CASES = TREATING_CASES + CLEARING_CASES + INSURED_CASES + HOSPITAL_CASES + GARBAGE_CASES


# ---------------------------------------------------------------------------------------------
# Classified lines whose four amounts add up but disagree with the line's own reason, grade, price cap
# or self-pay ratio (issue 9 item 6): the explanation crashed (a 全自费 part without a reason: KeyError;
# an over-cap part without a cap: AssertionError) or told something the amounts contradict, and the
# funds paid for what the classification excludes. The scene's line is grade A, no cap, 2 × 210.00.
# ---------------------------------------------------------------------------------------------

def split_line(copy: types_pb2.Claim, **fields: Any) -> types_pb2.ClassifiedLine:
    """Line 0 of the copy with some fields replaced; `inscp_fen` is recomputed so the parts still add up."""
    item = copy.lines[0]
    assert item.grade == types_pb2.GRADE_A and not item.HasField("price_cap_fen") and item.line.amount_fen == 42000
    for name, value in fields.items():
        setattr(item, name, value)
    item.inscp_fen = item.line.amount_fen - item.fulamt_ownpay_fen - item.overlmt_selfpay_fen - item.preselfpay_fen
    return item


def renumbered(copy: types_pb2.Claim) -> types_pb2.Claim:
    copy.settlement_id = str(uuid.uuid4())  # a fresh id: a call that got through would not meet an earlier one
    return copy


INCONSISTENT_LINES = [
    # (id, change to line 0, the field the refusal names)
    ("self-paid-part-without-a-reason", dict(fulamt_ownpay_fen=42000), "reason"),
    ("part-self-paid-with-an-excluding-reason", dict(fulamt_ownpay_fen=1000, reason=types_pb2.LINE_REASON_RESTRICTED),
     "fulamt_ownpay_fen"),
    ("grade-c-reason-on-a-grade-a-line", dict(fulamt_ownpay_fen=42000, reason=types_pb2.LINE_REASON_GRADE_C),
     "grade"),
    ("grade-c-line-in-scope", dict(grade=types_pb2.GRADE_C), "grade"),
    ("in-scope-line-without-a-grade", dict(grade=types_pb2.GRADE_UNSPECIFIED), "grade"),
    ("in-scope-line-without-a-national-code", dict(national_code=""), "national_code"),
    ("over-cap-part-without-a-cap", dict(overlmt_selfpay_fen=1000, reason=types_pb2.LINE_REASON_OVER_CAP),
     "price_cap_fen"),
    ("over-cap-part-without-a-cap-or-reason", dict(overlmt_selfpay_fen=1000), "price_cap_fen"),
    ("over-cap-part-not-what-the-cap-gives", dict(price_cap_fen=20000, overlmt_selfpay_fen=1500,  # (210 − 200) × 2
                                                  reason=types_pb2.LINE_REASON_OVER_CAP), "overlmt_selfpay_fen"),
    ("price-above-the-cap-but-no-over-cap-part", dict(price_cap_fen=20000), "overlmt_selfpay_fen"),
    ("over-cap-part-without-reason-over-cap", dict(price_cap_fen=20000, overlmt_selfpay_fen=2000), "reason"),
    ("reason-over-cap-without-an-over-cap-part", dict(reason=types_pb2.LINE_REASON_OVER_CAP), "reason"),
    ("grade-b-without-its-preselfpay", dict(grade=types_pb2.GRADE_B, selfpay_bp=1000), "preselfpay_fen"),  # 4200
    ("grade-b-preselfpay-not-what-the-ratio-gives", dict(grade=types_pb2.GRADE_B, selfpay_bp=1000,
                                                         preselfpay_fen=4000), "preselfpay_fen"),
    ("grade-a-with-a-preselfpay", dict(preselfpay_fen=4200), "preselfpay_fen"),
    ("selfpay-ratio-negative", dict(grade=types_pb2.GRADE_B, selfpay_bp=-1000, preselfpay_fen=0), "selfpay_bp"),
    ("selfpay-ratio-above-100-percent", dict(grade=types_pb2.GRADE_B, selfpay_bp=20000, preselfpay_fen=42000),
     "selfpay_bp"),
    ("price-cap-negative", dict(price_cap_fen=-1), "price_cap_fen"),
]
LINE_RPCS = [
    # (id, call with a claim, parties whose rows must not change)
    ("Adjudicate", lambda k, c: ins(k, INSURED).Adjudicate(ia.AdjudicateRequest(request_id=c.settlement_id, claim=c)),
     INSURED_PARTIES),
    ("QuoteAdjudication", lambda k, c: ins(k, INSURED).QuoteAdjudication(ia.QuoteAdjudicationRequest(claim=c)),
     INSURED_PARTIES),
    ("SettleClaim", lambda k, c: chs(k).SettleClaim(ch.SettleClaimRequest(request_id=c.settlement_id, claim=c)),
     CLEARING_PARTIES),
]


@pytest.mark.parametrize(("call", "parties"), [pytest.param(call, parties, id=rpc) for rpc, call, parties in LINE_RPCS])
@pytest.mark.parametrize(("fields", "field"), [pytest.param(fields, field, id=case_id)
                                               for case_id, fields, field in INCONSISTENT_LINES])
async def test_classified_line_whose_split_disagrees_with_its_reason_grade_or_cap_is_refused_naming_the_field(
        kit, scene, call, parties, fields, field):
    claim_ = renumbered(claim(scene))
    split_line(claim_, **fields)
    before = await kit.counts(*parties)
    error = await kit.refusal(call(kit, claim_))
    kit.assert_refused(error, INVALID, field=f"claim.lines[0].{field}")
    assert await kit.counts(*parties) == before, "a refused request writes nothing"


async def test_the_scene_line_with_its_split_recomputed_is_accepted(kit, scene):
    """The cases above change one thing each: the unchanged line goes through `split_line` and is quoted."""
    claim_ = renumbered(claim(scene))
    split_line(claim_)
    answer = await ins(kit, INSURED).QuoteAdjudication(ia.QuoteAdjudicationRequest(claim=claim_))
    assert answer.adjudication.split.total_fen == 42000


@pytest.mark.parametrize(("build", "code", "expect", "parties"), ALL_CASES)
async def test_bad_input_is_refused_and_writes_nothing(kit, scene, build, code, expect, parties):
    before = await kit.counts(*parties)
    error = await kit.refusal(build(kit, scene))
    kit.assert_refused(error, code, **expect)
    assert await kit.counts(*parties) == before, "a refused request writes nothing"


def test_every_rpc_has_a_bad_input_case():
    from clearinghouse.v1 import clearing_house_pb2, hospital_pb2, insured_agency_pb2, treating_agency_pb2

    rpcs = {method.name for module in (treating_agency_pb2, clearing_house_pb2, insured_agency_pb2, hospital_pb2)
            for service in module.DESCRIPTOR.services_by_name.values() for method in service.methods}
    covered = {param.id.split("-")[0] for param in ALL_CASES}
    assert rpcs - covered == set()


async def test_settle_for_a_member_unknown_to_the_insured_agency_pays_nothing(kit, scene):
    """NOT_FOUND comes from the insured agency; the treating agency and the clearing house keep only
    the refusal (status `failed`, replayed to a retry); no adjudication, accumulator or ledger row."""
    stub = kit.treating(TREATING)
    before = await kit.counts("insured_610924")
    ledger_before = await kit.counts("clearinghouse")
    request = ta.SettleRequest(request_id=kit.rid(), encounter_id=scene.ghost_encounter, discharged_on=DISCHARGED_ON)
    error = await kit.refusal(stub.Settle(request))
    kit.assert_refused(error, NOT_FOUND, resource="NOBODY")
    assert await kit.counts("insured_610924") == before
    ledger_after = await kit.counts("clearinghouse")
    for table in ("ledger_transactions", "ledger_postings", "catalogue_versions"):
        assert ledger_after[("clearinghouse", table)] == ledger_before[("clearinghouse", table)]
    rows = await (await kit.db("treating_440100")).fetch(
        "SELECT settlement_id, status FROM settlements WHERE encounter_id = $1", uuid.UUID(scene.ghost_encounter))
    assert [row["status"] for row in rows] == ["failed"]
    claims = await (await kit.db("clearinghouse")).fetch(
        "SELECT status FROM claims WHERE settlement_id = $1", rows[0]["settlement_id"])
    assert [row["status"] for row in claims] in ([], ["failed"])
    again = await kit.refusal(stub.Settle(request))
    kit.assert_refused(again, NOT_FOUND, resource="NOBODY")
    assert kit.status_of(again) == kit.status_of(error)
