"""The offline audit's inputs and output (SPEC §12.4): the member's audit facts and the history from decoded
JSON, and the `{"findings": […], "definite_amount_fen": …}` document. The online stages produce the same
document from the same values, so this is the one place its keys are named."""

from __future__ import annotations

from datetime import date
from typing import Any

from clearing.bill import check_diagnoses, check_text
from clearing.dates import parse_day
from clearing.errors import InvalidField
from clearing.limits import STAY_DAYS_MAX
from clearing.smart_audit.knowledge import SEXES
from clearing.smart_audit.model import AuditResult, Finding, MemberFacts, OtherStay

HISTORY_STAYS_MAX = 1_000  # other live stays of one member considered at once
SETTLEMENT_ID_LENGTH_MAX = 64


def member_facts_from_dict(data: Any) -> MemberFacts:
    """`sex` and `birth_date` of the SPEC §5.3 member (M.json); the rest is read by `member_from_dict`."""
    if not isinstance(data, dict):
        raise InvalidField("member", "must be a JSON object")
    sex = data.get("sex")
    if sex not in SEXES:
        raise InvalidField("member.sex", "must be \"M\" or \"F\"")
    return MemberFacts(sex=sex, birth_date=parse_day(data.get("birth_date"), "member.birth_date"))


def history_from_list(data: Any) -> tuple[OtherStay, ...]:
    """H.json: a list of the member's other live stays `{settlement_id, admitted_on, discharged_on, diagnoses}`."""
    if not isinstance(data, list):
        raise InvalidField("history", "must be a list of stays")
    if len(data) > HISTORY_STAYS_MAX:
        raise InvalidField("history", f"must have at most {HISTORY_STAYS_MAX} stays")
    stays = []
    for index, raw in enumerate(data):
        where = f"history[{index}]"
        if not isinstance(raw, dict):
            raise InvalidField(where, "must be an object")
        for key in sorted(raw):
            if key not in ("settlement_id", "admitted_on", "discharged_on", "diagnoses"):
                raise InvalidField(f"{where}.{key}", "unknown key")
        admitted_on = parse_day(raw.get("admitted_on"), f"{where}.admitted_on")
        discharged_on = parse_day(raw.get("discharged_on"), f"{where}.discharged_on")
        if discharged_on < admitted_on:
            raise InvalidField(f"{where}.discharged_on", "must not be before admitted_on")
        if (discharged_on - admitted_on).days > STAY_DAYS_MAX:
            raise InvalidField(f"{where}.discharged_on", f"stay is longer than {STAY_DAYS_MAX} days")
        stays.append(OtherStay(
            settlement_id=check_text(raw.get("settlement_id"), f"{where}.settlement_id", SETTLEMENT_ID_LENGTH_MAX),
            admitted_on=admitted_on,
            discharged_on=discharged_on,
            diagnoses=check_diagnoses(raw.get("diagnoses"), f"{where}.diagnoses"),
        ))
    return tuple(stays)


def finding_json(item: Finding) -> dict[str, Any]:
    return {
        "rule_id": item.rule_id.value,
        "rule_name": item.rule_name,
        "result": item.result.value,
        "action": item.action.value,
        "amount_fen": item.amount_fen,
        "violating_line_ids": list(item.violating_line_ids),
        "involved_line_ids": list(item.involved_line_ids),
        "evidence": item.evidence,
    }


def audit_json(result: AuditResult) -> dict[str, Any]:
    """The SPEC §12.4 output: findings in order and the sum of the definite ones."""
    return {"findings": [finding_json(item) for item in result.findings],
            "definite_amount_fen": result.definite_amount_fen}


def member_facts_from_id_number(id_number: str, field: str = "patient.id_number") -> MemberFacts:
    """Sex and birth date read from an 18-character ID number (身份证号, GB 11643): characters 7–14 are the birth
    date (YYYYMMDD) and the 17th is odd for a man, even for a woman. The check character is not verified (as
    at admission). An ID number whose date is not a real day is an error naming `field`."""
    if len(id_number) != 18 or not id_number[:17].isascii() or not id_number[:17].isdigit():
        raise InvalidField(field, "must be an 18-character ID number")
    digits = id_number[6:14]
    try:
        birth_date = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        raise InvalidField(field, "characters 7-14 are not a birth date (YYYYMMDD)") from None
    return MemberFacts(sex="M" if int(id_number[16]) % 2 == 1 else "F", birth_date=birth_date)
