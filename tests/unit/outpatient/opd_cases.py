"""Builders for the outpatient special-disease tests (SPEC §13): policy text with `[outpatient_special.*]`
sections, members, recognitions, accumulators and classified lines. They build inputs only; every expected
number in the tests is worked out by hand in the test's comments."""

from __future__ import annotations

from datetime import date
from typing import Any

from clearing.bill import BillLine
from clearing.classify import LineClass
from clearing.member import Member, Ytd
from clearing.outpatient.adjudicate import VisitFacts
from clearing.outpatient.member import Recognition, SpecialYtd
from clearing.policy import Disease, FilingStatus, Policy, Scheme, parse_policy

TREATING_REGION = "440100"  # 广州市
INSURED_REGION = "430100"  # 长沙市
VISIT_ON = date(2026, 3, 5)

BASE_POLICY = f"""\
region = "{INSURED_REGION}"
name = "测试地区"
effective_from = "2026-01-01"

[schemes.employee]
annual_cap_fen = {{employee_cap_fen}}
retired_bonus_bp = 500
deductible_fen = {{{{ "1" = 30000, "2" = 60000, "3" = 120000 }}}}
  [[schemes.employee.bands]]
  ratio_bp = {{{{ "1" = 9000, "2" = 8500, "3" = 8000 }}}}

[schemes.resident]
retired_bonus_bp = 700
deductible_fen = {{{{ "1" = 20000, "2" = 50000, "3" = 100000 }}}}
  [[schemes.resident.bands]]
  ratio_bp = {{{{ "1" = 8000, "2" = 7000, "3" = 6000 }}}}

[filing]
resident = 0
referral = 0
temporary = 1000
unfiled = 2000
"""

# Diabetes: 200.00 yuan a year deductible, 70/65/60 %, 3,000.00 yuan a year. Dialysis: no deductible, 90 %,
# 6,000.00 yuan a month. Both only where a test adds them.
DIABETES = """
[outpatient_special.diabetes]
icd = ["E10", "E11", "E12", "E13", "E14"]
deductible_fen = 20000
ratio_bp = { "1" = 7000, "2" = 6500, "3" = 6000 }
annual_limit_fen = 300000
"""
DIALYSIS = """
[outpatient_special.dialysis]
icd = ["N18.5", "N18.6", "Z49", "Z99.2"]
ratio_bp = { "1" = 9000, "2" = 9000, "3" = 9000 }
monthly_limit_fen = 600000
"""
CANCER = """
[outpatient_special.cancer_therapy]
icd = ["C"]
ratio_bp = { "1" = 8000, "2" = 8000, "3" = 8000 }
annual_limit_fen = 0
"""


def policy_text(*sections: str, employee_cap_fen: int = 40_000_000) -> str:
    return BASE_POLICY.format(employee_cap_fen=employee_cap_fen) + "".join(sections)


def policy(*sections: str, employee_cap_fen: int = 40_000_000) -> Policy:
    return parse_policy(policy_text(*sections, employee_cap_fen=employee_cap_fen))


def member(*, scheme: Scheme = Scheme.EMPLOYEE, retired: bool = False, filing: FilingStatus = FilingStatus.RESIDENT,
           region: str = INSURED_REGION) -> Member:
    return Member(region, "M001", scheme, retired, False, None, filing)


def recognised(*diseases: Disease, valid_from: date = date(2026, 1, 1),
               valid_to: date | None = None) -> tuple[Recognition, ...]:
    return tuple(Recognition(disease, valid_from, valid_to) for disease in diseases)


def visit(disease: Disease, *, level: int = 3, on: date = VISIT_ON,
          treating_region: str = TREATING_REGION) -> VisitFacts:
    return VisitFacts(treating_region, level, on, disease)


def special(disease: Disease, deductible_fen: int = 0, paid_fen: int = 0, month: str | None = None,
            month_paid_fen: int = 0) -> dict[Disease, SpecialYtd]:
    return {disease: SpecialYtd(deductible_fen, paid_fen, month, month_paid_fen)}


def in_scope(inscp_fen: int, *, fulamt_ownpay_fen: int = 0, preselfpay_fen: int = 0, line_id: str = "1",
             on: date = VISIT_ON) -> LineClass:
    """A classified line whose parts are given; its amount is their sum."""
    amount_fen = inscp_fen + fulamt_ownpay_fen + preselfpay_fen
    line = BillLine(line_id, "X0001", 10_000, amount_fen, amount_fen, on)
    return LineClass(line=line, catalogue_region=TREATING_REGION, catalogue_code="X0001", national_code="N0001",
                     relation=None, kind=None, grade=None, name="item", selfpay_bp=0, price_cap_fen=None,
                     fulamt_ownpay_fen=fulamt_ownpay_fen, overlmt_selfpay_fen=0, preselfpay_fen=preselfpay_fen,
                     inscp_fen=inscp_fen, reason=None)


def ytd(**values: int) -> Ytd:
    return Ytd(**values)


def visit_bill(**overrides: Any) -> dict[str, Any]:
    """The SPEC §13.3 visit B.json: one diabetes visit, one line of 10 × 200.00 = 2,000.00 yuan."""
    data: dict[str, Any] = {
        "kind": "outpatient_special", "disease": "diabetes", "region": TREATING_REGION,
        "hospital": {"code": "H44010000001", "level": 3}, "visit_on": "2026-03-05",
        "lines": [{"line_id": "1", "code": "X0001", "qty": "10", "unit_price_fen": 20000, "amount_fen": 200000}],
    }
    data.update(overrides)
    return data
