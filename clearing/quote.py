"""The offline quote (SPEC §5.3): classification (§4.2) and adjudication (§5.2) of one bill, and the
JSON shape both the `clearing-admin quote` command and the online services report.

The online path calls the same `classify_bill` and `adjudicate`; `adjudication_json` is the one
place the output keys are named, so the two can be compared number for number.
"""

from __future__ import annotations

from typing import Any

from clearing.adjudicate import Adjudication, StayFacts, adjudicate
from clearing.bill import Bill
from clearing.catalogue import Catalogue
from clearing.classify import LineClass, classify_bill
from clearing.explain import Step, render_en, render_zh
from clearing.member import Member, Ytd
from clearing.money import format_qty
from clearing.policy import Policy

SPLIT_KEYS = (
    "total_fen", "fulamt_ownpay_fen", "overlmt_selfpay_fen", "preselfpay_fen", "inscp_fen", "deductible_fen",
    "eligible_fen", "hifp_fen", "burden_fen", "hifmi_fen", "assist_base_fen", "maf_fen", "fund_pay_fen",
    "psn_pay_fen",
)


def stay_facts(bill: Bill) -> StayFacts:
    return StayFacts(bill.region, bill.hospital_level, bill.admitted_on, bill.discharged_on, bill.emergency)


def quote(bill: Bill, catalogue: Catalogue, member: Member, policy: Policy, ytd: Ytd) -> Adjudication:
    """Classify with the treating catalogue and adjudicate with the insured policy; persists nothing."""
    return adjudicate(classify_bill(bill, catalogue), stay_facts(bill), member, policy, ytd)


def line_json(item: LineClass) -> dict[str, Any]:
    return {
        "line_id": item.line.line_id,
        "code": item.line.code,
        "qty": format_qty(item.line.qty_e4),
        "unit_price_fen": item.line.unit_price_fen,
        "amount_fen": item.line.amount_fen,
        "service_date": item.line.service_date.isoformat(),
        "catalogue_region": item.catalogue_region,
        "catalogue_code": item.catalogue_code,
        "national_code": item.national_code,
        "grade": item.grade.value if item.grade else None,
        "fulamt_ownpay_fen": item.fulamt_ownpay_fen,
        "overlmt_selfpay_fen": item.overlmt_selfpay_fen,
        "preselfpay_fen": item.preselfpay_fen,
        "inscp_fen": item.inscp_fen,
        "reason": item.reason.value if item.reason else None,
        "note": item.note,
    }


def step_json(step: Step) -> dict[str, Any]:
    return {"step": step.key, "amount_fen": step.amount_fen, "facts": dict(step.facts),
            "zh": render_zh(step), "en": render_en(step)}


def adjudication_json(result: Adjudication) -> dict[str, Any]:
    """The SPEC §5.3 output: the split, the lines, `ytd_after` and the explanation."""
    output: dict[str, Any] = {key: getattr(result, key) for key in SPLIT_KEYS}
    output["lines"] = [line_json(item) for item in result.lines]
    output["ytd_after"] = result.ytd_after.as_dict()
    output["explanation"] = [step_json(step) for step in result.explanation]
    return output
