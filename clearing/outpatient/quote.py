"""The offline quote of one outpatient special-disease visit (SPEC §13.3) and its JSON shape.

`visit_adjudication_json` names the output keys once, so the online settlement can be compared with
`clearing-admin quote` number for number, as for stays (`clearing.quote`).
"""

from __future__ import annotations

from typing import Any

from clearing.catalogue import Catalogue
from clearing.classify import classify_bill
from clearing.member import Member, Ytd
from clearing.outpatient.adjudicate import VisitAdjudication, VisitFacts, adjudicate_visit, check_visit_applicable
from clearing.outpatient.member import Recognition, SpecialYtd
from clearing.outpatient.visit import KIND, Visit
from clearing.policy import Disease, Policy
from clearing.quote import line_json, step_json

# The SPEC §5.3 money keys, plus the eligible amount (the base of the ratio).
VISIT_SPLIT_KEYS = (
    "total_fen", "fulamt_ownpay_fen", "overlmt_selfpay_fen", "preselfpay_fen", "inscp_fen", "deductible_fen",
    "eligible_fen", "hifp_fen", "hifmi_fen", "maf_fen", "fund_pay_fen", "psn_pay_fen",
)


def visit_facts(visit: Visit) -> VisitFacts:
    return VisitFacts(visit.region, visit.hospital_level, visit.visit_on, visit.disease)


def quote_visit(
    visit: Visit, catalogue: Catalogue, member: Member, recognitions: tuple[Recognition, ...], policy: Policy,
    ytd: Ytd, special: dict[Disease, SpecialYtd],
) -> VisitAdjudication:
    """Classify with the treating catalogue (an `icd:` restriction judged by the disease's prefixes) and adjudicate
    with the insured policy; persists nothing."""
    facts = visit_facts(visit)
    _, section, _ = check_visit_applicable(member, recognitions, facts, policy)  # the section's prefixes classify
    lines = classify_bill(visit.for_classification(section.icd_prefixes), catalogue)
    return adjudicate_visit(lines, facts, member, recognitions, policy, ytd, special)


def visit_adjudication_json(result: VisitAdjudication) -> dict[str, Any]:
    """The SPEC §13.3 output: the §5.3 money keys, the lines, `ytd_after`, `ytd_special_after` (the disease's
    object) and the explanation."""
    output: dict[str, Any] = {"kind": KIND, "disease": result.disease.value}
    output.update({key: getattr(result, key) for key in VISIT_SPLIT_KEYS})
    output["ratio_bp"] = result.ratio_bp
    output["limit_left_fen"] = result.limit_left_fen
    output["lines"] = [line_json(item) for item in result.lines]
    output["ytd_after"] = result.ytd_after.as_dict()
    output["ytd_special_after"] = result.special_after.as_dict()
    output["explanation"] = [step_json(step) for step in result.explanation]
    return output
