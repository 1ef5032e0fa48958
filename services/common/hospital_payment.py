"""From settled stays to the hospitals' payment (issue 13), shared by the treating agency (which computes and posts
it: CloseHospitalPaymentMonth) and the operator CLI (`drg weights --from-history`): grouping each stay with the
shipped CHS-DRG 1.1 tables, the `PaymentCase` of a stay, and the weight table as the agency stores it
(drg_weight_tables, frozen for a payment year). The arithmetic is the pure core's (clearing/hospital_payment/)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Any

from clearinghouse.v1 import treating_agency_pb2 as ta

from clearing.drg import UNGROUPABLE, group
from clearing.errors import PreconditionFailed
from clearing.hospital_payment import (
    CasePayment, CrossRegionBalance, HistoryCase, MonthPayment, PaymentCase, PaymentParams, Weight, WeightSource,
    WeightTable, case_payments, compute_weights, cross_region_balance, month_payment,
)
from clearing.medical_record import drg_case
from clearing.money import round_half_up_div
from clearing.smart_audit.library import RuleId, parse_rule_library
from clearing.smart_audit.rules import is_exempt
from services.common import convert
from services.common.smart_audit import SHIPPED_LIBRARIES
from services.drg.reference import load_tables

FACTS_MISSING = "facts_missing"  # stored before the 病案首页 facts were (migration 0015), or demo diagnosis codes


@dataclass(frozen=True, slots=True)
class GroupedStay:
    """A settled stay with its DRG ("0000" when ungroupable) and why it is not grouped."""

    stay: ta.SettledStay
    drg: str
    reason: str  # "" when grouped; an Ungroupable value, or "facts_missing" when sex/age/医保版 codes are lacking


def group_stays(stays: list[ta.SettledStay]) -> list[GroupedStay]:
    """Group each stay with the shipped CHS-DRG 1.1 tables, from the facts stored with it."""
    tables = load_tables()
    grouped = []
    for item in stays:
        stay = item.stay
        record = convert.stay_record(stay, "stay")
        los_days = (date.fromisoformat(stay.discharged_on) - date.fromisoformat(stay.admitted_on)).days
        case = drg_case(tuple(stay.diagnoses), record, los_days)
        if case is None:
            grouped.append(GroupedStay(item, UNGROUPABLE, FACTS_MISSING))
            continue
        result = group(case, tables)
        grouped.append(GroupedStay(item, result.drg, "" if result.grouped else str(result.ungroupable)))
    return grouped


def grouping_summary(grouped: list[GroupedStay]) -> dict[str, Any]:
    """How many stays grouped, and the "0000" ones by reason (the issue's closing figure)."""
    reasons = Counter(item.reason for item in grouped if item.drg == UNGROUPABLE)
    grouped_count = len(grouped) - sum(reasons.values())
    return {"stays": len(grouped), "grouped": grouped_count,
            "grouped_share_bp": round_half_up_div(grouped_count * 10_000, len(grouped)) if grouped else 0,
            "ungroupable_by_reason": dict(sorted(reasons.items()))}


def readmission_exemptions(region: str) -> tuple[str, ...]:
    """AUD-READMIT's exempt prefixes of the region's rule library (放化疗 Z51…): a readmission with such a principal
    diagnosis has a reason, so the earlier stay's points are not halved. The list counts even where the audit rule
    is disabled: it names the reasons, the rule only whether the audit flags the rest."""
    path = SHIPPED_LIBRARIES / f"{region}.toml"
    library = parse_rule_library(path.read_text(encoding="utf-8")) if path.is_file() else parse_rule_library("")
    return library.settings(RuleId.READMIT).exempt


def payment_case(item: GroupedStay, exempt: tuple[str, ...]) -> PaymentCase:
    """The case id is the settlement id, the cost the settlement's total (医疗总费用), the fund pay what the funds
    paid of it at discharge (the patient paid the rest)."""
    stay = item.stay.stay
    admitted, discharged = date.fromisoformat(stay.admitted_on), date.fromisoformat(stay.discharged_on)
    principal = stay.diagnoses[0] if stay.diagnoses else ""
    return PaymentCase(
        case_id=item.stay.settlement_id, hospital=stay.hospital_code, hospital_level=stay.hospital_level,
        member_key=item.stay.member_key, drg=item.drg, principal_diagnosis=principal,
        main_procedure=stay.procedures[0] if stay.procedures else "", los_days=(discharged - admitted).days,
        admitted_on=admitted, discharged_on=discharged, cost_fen=item.stay.total_fen,
        cross_region=not item.stay.local, readmission_justified=bool(principal) and is_exempt(principal, exempt),
        fund_pay_fen=min(item.stay.fund_pay_fen, item.stay.total_fen))


def weights_from_stays(history_stays: list[ta.SettledStay], params: PaymentParams, field: str,
                       weights_year: str) -> WeightTable:
    """The weight table of a year's settled stays; PreconditionFailed naming `field` when none has a cost."""
    history = [HistoryCase(item.drg, item.stay.total_fen) for item in group_stays(history_stays)]
    if not any(case.cost_fen > 0 for case in history):
        raise PreconditionFailed(field, f"no settled stay with a cost in {weights_year} to weigh the DRGs by")
    return compute_weights(history, params.weights_cases_min)


@dataclass(frozen=True, slots=True)
class MonthResult:
    region: str
    month: str
    weights_year: str
    payments: tuple[CasePayment, ...]
    payment: MonthPayment
    cross_region: CrossRegionBalance
    grouping: dict[str, Any]


def month_result(region: str, month: str, weights_year: str, table: WeightTable, params: PaymentParams,
                 month_stays: list[ta.SettledStay], special_review: Collection[str] = ()) -> MonthResult:
    """The month's payment per hospital, its stays paid with `table`, and the cross-region gain or loss at the
    provisional point value (the patients' share deducted in the "fund_and_patients" form)."""
    grouped = group_stays(month_stays)
    payments = grouped_payments(region, table, params, grouped, special_review)
    return MonthResult(region, month, weights_year, payments, month_payment(payments, params),
                       cross_region_balance(payments, None, params.provisional_point_value_fen,
                                            params.deducts_patients),
                       grouping_summary(grouped))


def weight_table_json(table: WeightTable) -> str:
    """The table as drg_weight_tables stores it (exact integers; the order of the keys fixed)."""
    return json.dumps({"all_cases": table.all_cases, "all_cost_fen": table.all_cost_fen,
                       "weights": [[w.drg, w.rw_e4, w.average_cost_fen, w.cases, w.source.value]
                                   for w in table.weights.values()]}, sort_keys=True)


def weight_table_from_json(text: str) -> WeightTable:
    data = json.loads(text)
    weights = {drg: Weight(drg, rw_e4, average_fen, cases, WeightSource(source))
               for drg, rw_e4, average_fen, cases, source in data["weights"]}
    return WeightTable(weights, data["all_cases"], data["all_cost_fen"])


def case_payments_of(region: str, table: WeightTable, params: PaymentParams, stays: list[ta.SettledStay],
                     special_review: Collection[str] = ()) -> tuple[CasePayment, ...]:
    """Every stay's method and points (a year's, for the year end: readmissions across months count)."""
    return grouped_payments(region, table, params, group_stays(stays), special_review)


def grouped_payments(region: str, table: WeightTable, params: PaymentParams, grouped: list[GroupedStay],
                     special_review: Collection[str] = ()) -> tuple[CasePayment, ...]:
    exempt = readmission_exemptions(region)
    return case_payments([payment_case(item, exempt) for item in grouped], table, params, special_review)
