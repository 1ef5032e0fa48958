"""Proto ⇄ domain conversion shared by every party (STYLE: convert.py).

Input conversion validates as it goes and raises `InvalidField` with the proto field path, so a
servicer has a checked domain value before it opens any transaction.
"""

from __future__ import annotations

from datetime import date

from clearinghouse.v1 import types_pb2 as pb

from clearing import limits
from clearing.adjudicate import Adjudication, StayFacts
from clearing.outpatient.adjudicate import VisitAdjudication
from clearing.outpatient.icd import national_icd
from clearing.outpatient.member import SpecialYtd
from clearing.outpatient.quote import VISIT_SPLIT_KEYS
from clearing.bill import BillLine, check_diagnoses, check_hospital_code, check_hospital_level, check_region, make_line
from clearing.catalogue import Grade, Kind, Relation
from clearing.classify import LineClass, Reason, over_cap_fen
from clearing.dates import parse_day
from clearing.drg.case import AGE_DAYS_MAX, AGE_YEARS_MAX, BIRTH_WEIGHT_G_MAX
from clearing.errors import InvalidField
from clearing.explain import Step, render_en, render_zh
from clearing.lifecycle import ReversalOutcome
from clearing.medical_record import (
    MedicalRecord, check_discharge_status, check_newborn, check_procedures, check_sex, check_whole,
)
from clearing.member import YTD_FIELDS, Ytd
from clearing.money import BP_WHOLE, apply_bp, format_qty
from clearing.policy import AssistanceTier, Disease, FilingStatus, Scheme
from clearing.quote import SPLIT_KEYS
from clearing.translate import CatalogueRule
from services.common.clock import check_not_after_today
from services.common.requests import check_request_id

GRADES = {Grade.A: pb.GRADE_A, Grade.B: pb.GRADE_B, Grade.C: pb.GRADE_C}
REASONS = {
    Reason.GRADE_C: pb.LINE_REASON_GRADE_C, Reason.UNMAPPED: pb.LINE_REASON_UNMAPPED,
    Reason.RESTRICTED: pb.LINE_REASON_RESTRICTED, Reason.OVER_CAP: pb.LINE_REASON_OVER_CAP,
    Reason.NOT_VALID_ON_DATE: pb.LINE_REASON_NOT_VALID_ON_DATE,
}
RELATIONS = {Relation.EQUIVALENT: pb.RELATION_EQUIVALENT, Relation.NARROWER: pb.RELATION_NARROWER,
             Relation.WIDER: pb.RELATION_WIDER}
SCHEMES = {Scheme.EMPLOYEE: pb.SCHEME_EMPLOYEE, Scheme.RESIDENT: pb.SCHEME_RESIDENT}
FILINGS = {FilingStatus.RESIDENT: pb.FILING_STATUS_RESIDENT, FilingStatus.REFERRAL: pb.FILING_STATUS_REFERRAL,
           FilingStatus.TEMPORARY: pb.FILING_STATUS_TEMPORARY, FilingStatus.UNFILED: pb.FILING_STATUS_UNFILED}
TIERS = {None: pb.ASSISTANCE_TIER_NONE, AssistanceTier.TEKUN: pb.ASSISTANCE_TIER_TEKUN,
         AssistanceTier.DIBAO: pb.ASSISTANCE_TIER_DIBAO, AssistanceTier.DISHOURU: pb.ASSISTANCE_TIER_DISHOURU}
OUTCOMES = {ReversalOutcome.REVERSED: pb.REVERSAL_OUTCOME_REVERSED,
            ReversalOutcome.NOTHING_RECORDED: pb.REVERSAL_OUTCOME_NOTHING_RECORDED,
            ReversalOutcome.ALREADY_UNDONE: pb.REVERSAL_OUTCOME_ALREADY_UNDONE}
KINDS = {kind.value: kind for kind in Kind}
# Outpatient special diseases (SPEC §13) by their policy keys.
SPECIAL_DISEASES = {"hypertension": pb.SPECIAL_DISEASE_HYPERTENSION, "diabetes": pb.SPECIAL_DISEASE_DIABETES,
                    "cancer_therapy": pb.SPECIAL_DISEASE_CANCER_THERAPY, "dialysis": pb.SPECIAL_DISEASE_DIALYSIS,
                    "transplant": pb.SPECIAL_DISEASE_TRANSPLANT}
RULES = {CatalogueRule.TREATING: pb.CATALOGUE_RULE_TREATING, CatalogueRule.INSURED: pb.CATALOGUE_RULE_INSURED}


def from_enum(mapping: dict, value: int, field: str):  # noqa: ANN001, ANN201 - inverse lookup of a mapping above
    for domain, proto in mapping.items():
        if proto == value:
            return domain
    raise InvalidField(field, "must be set to a known value")


def bill_line_from_proto(line: pb.BillLine, index: int, where: str | None = None) -> BillLine:
    """Validate one proto line; `where` is its path in the request (default `lines[index]`)."""
    try:
        return make_line(index, line.line_id, line.code, line.qty, line.unit_price_fen, line.amount_fen,
                         line.service_date)
    except InvalidField as error:
        if where is None:
            raise
        raise InvalidField(error.field.replace(f"lines[{index}]", where, 1), error.reason) from None


def bill_line_to_proto(line: BillLine) -> pb.BillLine:
    return pb.BillLine(line_id=line.line_id, code=line.code, qty=format_qty(line.qty_e4),
                       unit_price_fen=line.unit_price_fen, amount_fen=line.amount_fen,
                       service_date=line.service_date.isoformat())


def line_class_to_proto(item: LineClass) -> pb.ClassifiedLine:
    message = pb.ClassifiedLine(
        line=bill_line_to_proto(item.line), catalogue_region=item.catalogue_region,
        catalogue_code=item.catalogue_code, national_code=item.national_code,
        relation=RELATIONS.get(item.relation, pb.RELATION_UNSPECIFIED),
        grade=GRADES.get(item.grade, pb.GRADE_UNSPECIFIED), name=item.name, selfpay_bp=item.selfpay_bp,
        fulamt_ownpay_fen=item.fulamt_ownpay_fen, overlmt_selfpay_fen=item.overlmt_selfpay_fen,
        preselfpay_fen=item.preselfpay_fen, inscp_fen=item.inscp_fen,
        reason=REASONS.get(item.reason, pb.LINE_REASON_UNSPECIFIED), note=item.note,
        kind=item.kind.value if item.kind else "",
    )
    if item.price_cap_fen is not None:
        message.price_cap_fen = item.price_cap_fen
    return message


def line_class_from_proto(message: pb.ClassifiedLine, index: int) -> LineClass:
    """A classified line received from another party; the split must add up and be non-negative."""
    where = f"claim.lines[{index}]"
    line = bill_line_from_proto(message.line, index, where=f"{where}.line")
    parts = (message.fulamt_ownpay_fen, message.overlmt_selfpay_fen, message.preselfpay_fen, message.inscp_fen)
    if any(part < 0 for part in parts):
        raise InvalidField(where, "classified amounts must not be negative")
    if sum(parts) != line.amount_fen:
        raise InvalidField(f"{where}.inscp_fen", "the four classified amounts do not add up to amount_fen")
    grade = None if message.grade == pb.GRADE_UNSPECIFIED else from_enum(GRADES, message.grade, f"{where}.grade")
    relation = None if message.relation == pb.RELATION_UNSPECIFIED else from_enum(
        RELATIONS, message.relation, f"{where}.relation")
    reason = None if message.reason == pb.LINE_REASON_UNSPECIFIED else from_enum(
        REASONS, message.reason, f"{where}.reason")
    if message.kind and message.kind not in KINDS:
        raise InvalidField(f"{where}.kind", f"must be one of {', '.join(KINDS)} or empty")
    if not 0 <= message.selfpay_bp <= BP_WHOLE:
        raise InvalidField(f"{where}.selfpay_bp", f"must be from 0 to {BP_WHOLE} basis points")
    if message.HasField("price_cap_fen") and not 0 <= message.price_cap_fen <= limits.UNIT_PRICE_FEN_MAX:
        raise InvalidField(f"{where}.price_cap_fen", f"must be from 0 to {limits.UNIT_PRICE_FEN_MAX} fen")
    item = LineClass(
        line=line, catalogue_region=message.catalogue_region, catalogue_code=message.catalogue_code,
        national_code=message.national_code, relation=relation, kind=KINDS.get(message.kind),
        grade=grade, name=message.name, selfpay_bp=message.selfpay_bp,
        price_cap_fen=message.price_cap_fen if message.HasField("price_cap_fen") else None,
        fulamt_ownpay_fen=message.fulamt_ownpay_fen, overlmt_selfpay_fen=message.overlmt_selfpay_fen,
        preselfpay_fen=message.preselfpay_fen, inscp_fen=message.inscp_fen, reason=reason, note=message.note,
    )
    check_split_agrees(item, where)
    return item


EXCLUDING = frozenset({Reason.GRADE_C, Reason.UNMAPPED, Reason.RESTRICTED, Reason.NOT_VALID_ON_DATE})


def check_split_agrees(item: LineClass, where: str) -> None:
    """The four amounts must be what SPEC §4.2 gives for the line's own reason, grade, price cap and
    self-pay ratio, so that the explanation can say why (a 全自费 part needs its reason, an over-cap part
    its cap) and the funds pay only what the classification allows (nothing of a grade C line).

    An excluding reason (GRADE_C, UNMAPPED, RESTRICTED, NOT_VALID_ON_DATE) makes the whole amount
    全自费; otherwise the line is in scope: grade A or B with a national code, no 全自费, the over-cap part
    `round_half_up((unit_price − cap) × qty)` with reason OVER_CAP exactly when it is positive, and the
    先行自付 part `apply_bp(amount − over-cap, selfpay_bp)` for grade B (0 for grade A)."""
    line = item.line
    if item.reason in EXCLUDING:
        if item.fulamt_ownpay_fen != line.amount_fen:
            raise InvalidField(f"{where}.fulamt_ownpay_fen",
                               f"a line excluded as {item.reason.value} is wholly self-paid: must equal amount_fen")
        if item.reason is Reason.GRADE_C and item.grade is not Grade.C:
            raise InvalidField(f"{where}.grade", "reason GRADE_C needs grade C")
        return
    if item.fulamt_ownpay_fen:
        raise InvalidField(f"{where}.reason", "a line with fulamt_ownpay_fen needs the reason it is excluded "
                                              "(GRADE_C, UNMAPPED, RESTRICTED or NOT_VALID_ON_DATE)")
    if item.grade is Grade.C:
        raise InvalidField(f"{where}.grade", "a grade C line is not covered: it must be wholly self-paid, "
                                             "reason GRADE_C")
    if item.grade is None:
        raise InvalidField(f"{where}.grade", "a line in the policy scope needs grade A or B")
    if not item.national_code:
        raise InvalidField(f"{where}.national_code", "a line in the policy scope needs its national code "
                                                     "(an unmapped line is wholly self-paid, reason UNMAPPED)")
    if item.overlmt_selfpay_fen and item.price_cap_fen is None:
        raise InvalidField(f"{where}.price_cap_fen", "an over-cap part (overlmt_selfpay_fen) needs the price cap")
    expected_fen = over_cap_fen(line, item.price_cap_fen)
    if item.overlmt_selfpay_fen != expected_fen:
        raise InvalidField(f"{where}.overlmt_selfpay_fen",
                           f"must be round_half_up((unit_price − price_cap) × qty) = {expected_fen}")
    if (item.reason is Reason.OVER_CAP) != (expected_fen > 0):
        raise InvalidField(f"{where}.reason", "must be OVER_CAP exactly when the line has an over-cap part")
    expected_fen = apply_bp(line.amount_fen - expected_fen, item.selfpay_bp) if item.grade is Grade.B else 0
    if item.preselfpay_fen != expected_fen:
        raise InvalidField(f"{where}.preselfpay_fen",
                           f"must be {expected_fen}: apply_bp(amount − over-cap, selfpay_bp) for grade B, 0 for A")


def claim_disease(claim: pb.Claim) -> Disease | None:
    """The disease of an outpatient special-disease visit's claim (med_type 14), None for an inpatient stay; the
    two fields agree or the claim is refused naming one."""
    if claim.med_type == pb.MED_TYPE_OUTPATIENT_SPECIAL:
        return Disease(from_enum(SPECIAL_DISEASES, claim.disease, "claim.disease"))
    if claim.med_type not in (pb.MED_TYPE_UNSPECIFIED, pb.MED_TYPE_INPATIENT):
        raise InvalidField("claim.med_type", "must be MED_TYPE_INPATIENT (or unset) or MED_TYPE_OUTPATIENT_SPECIAL")
    if claim.disease != pb.SPECIAL_DISEASE_UNSPECIFIED:
        raise InvalidField("claim.disease", "is set only on an outpatient special-disease visit (med_type 14)")
    return None


def stay_from_proto(stay: pb.Stay, treating_region: str, where: str = "claim.stay",
                    disease: Disease | None = None) -> tuple[StayFacts, tuple[str, ...]]:
    """The stay's facts and its diagnoses. For a visit (`disease`): one day, no emergency and no diagnoses, and the
    disease's national ICD prefixes in the diagnoses' place, which judge the `icd:` restrictions (SPEC §13.4)."""
    if disease is not None:
        if stay.diagnoses:
            raise InvalidField(f"{where}.diagnoses", "must be empty on a visit: the disease's ICD prefixes judge "
                                                     "its lines")
        if stay.emergency:
            raise InvalidField(f"{where}.emergency", "must be false on a visit")
        if stay.admitted_on != stay.discharged_on:
            raise InvalidField(f"{where}.discharged_on", "must be the visit day, admitted_on")
        facts = stay_facts(stay, treating_region, where)
        stay_record(stay, where)  # checked at every hop though no money depends on it: a party stores what it shows
        return facts, national_icd(disease)
    facts = stay_facts(stay, treating_region, where)
    diagnoses = check_diagnoses(list(stay.diagnoses), f"{where}.diagnoses")
    stay_record(stay, where)  # checked at every hop though no money depends on it: a party stores what it shows
    return facts, diagnoses


def stay_facts(stay: pb.Stay, treating_region: str, where: str) -> StayFacts:
    hospital_code = check_hospital_code(stay.hospital_code, f"{where}.hospital_code")
    if hospital_code[1:7] != treating_region:
        raise InvalidField(f"{where}.hospital_code", f"is not a hospital of region {treating_region}")
    admitted = parse_day(stay.admitted_on, f"{where}.admitted_on")
    discharged = check_not_after_today(parse_day(stay.discharged_on, f"{where}.discharged_on"), f"{where}.discharged_on")
    if discharged < admitted:
        raise InvalidField(f"{where}.discharged_on", "must not be before admitted_on")
    return StayFacts(treating_region, check_hospital_level(stay.hospital_level, f"{where}.hospital_level"),
                     admitted, discharged, stay.emergency)


def stay_record(stay: pb.Stay, where: str = "claim.stay") -> MedicalRecord:
    """The stay's 病案首页 facts (procedures, sex, age, newborn facts, discharge status), validated; unset is None."""
    def optional(name: str, low: int, high: int) -> int | None:
        return check_whole(getattr(stay, name), f"{where}.{name}", low, high) if stay.HasField(name) else None

    record = MedicalRecord(
        procedures=check_procedures(list(stay.procedures), f"{where}.procedures"),
        sex=check_sex(stay.sex, f"{where}.sex"),
        age_years=optional("age_years", 0, AGE_YEARS_MAX),
        age_days=optional("age_days", 0, AGE_DAYS_MAX),
        birth_weight_g=optional("birth_weight_g", 1, BIRTH_WEIGHT_G_MAX),
        discharge_status=check_discharge_status(stay.discharge_status, f"{where}.discharge_status"))
    check_newborn(record.age_years, record.age_days, record.birth_weight_g, f"{where}.")
    return record


def put_record(stay: pb.Stay, record: MedicalRecord) -> pb.Stay:
    """Set the facts of `record` on `stay` (unset ones stay unset); returns the stay."""
    stay.procedures[:] = list(record.procedures)
    stay.sex = record.sex or ""
    stay.discharge_status = record.discharge_status or ""
    for name in ("age_years", "age_days", "birth_weight_g"):
        value = getattr(record, name)
        if value is None:
            stay.ClearField(name)
        else:
            setattr(stay, name, value)
    return stay


def ytd_to_proto(ytd: Ytd) -> pb.Accumulators:
    return pb.Accumulators(**ytd.as_dict())


def ytd_from_proto(message: pb.Accumulators) -> Ytd:
    return Ytd(*(getattr(message, name) for name in YTD_FIELDS))


def step_to_proto(step: Step) -> pb.ExplanationStep:
    return pb.ExplanationStep(step=step.key, amount_fen=step.amount_fen,
                              facts={key: str(value) for key, value in step.facts.items()},
                              text_zh=render_zh(step), text_en=render_en(step))


def adjudication_to_proto(result: Adjudication, policy_effective_from: date) -> pb.Adjudication:
    return pb.Adjudication(
        split=pb.FundSplit(**{key: getattr(result, key) for key in SPLIT_KEYS}),
        lines=[line_class_to_proto(item) for item in result.lines],
        ytd_before=ytd_to_proto(result.ytd_before), ytd_after=ytd_to_proto(result.ytd_after),
        explanation=[step_to_proto(step) for step in result.explanation],
        policy_effective_from=policy_effective_from.isoformat(),
    )


def claim_header(claim: pb.Claim) -> tuple[str, str, str]:
    """Validated (settlement_id, treating_region, insured_region) of a claim."""
    return (check_request_id(claim.settlement_id, "claim.settlement_id"),
            check_region(claim.treating_region, "claim.treating_region"),
            check_region(claim.insured_region, "claim.insured_region"))


def claim_settlement_day(claim: pb.Claim) -> date:
    """The claim's settlement day (set by the treating agency; every party reconciles the settlement on it). It is
    never after today nor before the stay's discharge: the clearing house files the claim in that day's month
    partition, and a bad day must be refused before one is made for it."""
    day = check_not_after_today(parse_day(claim.settlement_day, "claim.settlement_day"), "claim.settlement_day")
    try:
        discharged = date.fromisoformat(claim.stay.discharged_on)
    except ValueError:
        return day  # the stay's own check names its field
    if day < discharged:
        raise InvalidField("claim.settlement_day", f"{day.isoformat()} is before the discharge ({discharged.isoformat()})")
    return day


def claim_lines(claim: pb.Claim) -> tuple[LineClass, ...]:
    if not claim.lines:
        raise InvalidField("claim.lines", "must have at least one line")
    if len(claim.lines) > limits.LINES_PER_BILL_MAX:
        raise InvalidField("claim.lines", f"must have at most {limits.LINES_PER_BILL_MAX} lines")
    lines = tuple(line_class_from_proto(line, index) for index, line in enumerate(claim.lines))
    seen: set[str] = set()
    for index, item in enumerate(lines):
        if item.line.line_id in seen:
            raise InvalidField(f"claim.lines[{index}].line.line_id", "appears twice")
        seen.add(item.line.line_id)
    return lines


def special_to_proto(value: SpecialYtd) -> pb.SpecialAccumulators:
    return pb.SpecialAccumulators(deductible_fen=value.deductible_fen, paid_fen=value.paid_fen,
                                  month=value.month or "", month_paid_fen=value.month_paid_fen)


def special_from_proto(message: pb.SpecialAccumulators) -> SpecialYtd:
    return SpecialYtd(message.deductible_fen, message.paid_fen, message.month or None, message.month_paid_fen)


def visit_adjudication_to_proto(result: VisitAdjudication, policy_effective_from: date) -> pb.Adjudication:
    """A visit's adjudication (SPEC §13.2) in the stay's message: the §5.3 split (the 大病 and 救助 axes, burden
    and assist base included, stay 0: a visit does not move them),
    the inpatient accumulators and, in `visit`, the disease's."""
    split = pb.FundSplit(**{key: getattr(result, key) for key in VISIT_SPLIT_KEYS})  # burden, assist base: 0
    visit = pb.VisitAdjudication(disease=SPECIAL_DISEASES[result.disease.value], ratio_bp=result.ratio_bp,
                                 special_before=special_to_proto(result.special_before),
                                 special_after=special_to_proto(result.special_after))
    if result.limit_left_fen is not None:
        visit.limit_left_fen = result.limit_left_fen
    return pb.Adjudication(
        split=split, lines=[line_class_to_proto(item) for item in result.lines],
        ytd_before=ytd_to_proto(result.ytd_before), ytd_after=ytd_to_proto(result.ytd_after),
        explanation=[step_to_proto(step) for step in result.explanation],
        policy_effective_from=policy_effective_from.isoformat(), visit=visit)
