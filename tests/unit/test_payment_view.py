"""The treating agency's month computation (services/common/hospital_payment.py, CloseHospitalPaymentMonth): settled stays as the treating agency lists them →
grouped → PaymentCases → the month per hospital. No server: the stays are built here. The readmission rule takes
its reasons from the region's AUD-READMIT exemptions (放化疗 Z51.0/Z51.1)."""

from __future__ import annotations

from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

from clearing.money import round_half_up_div
from services.common.hospital_payment import (
    group_stays, month_result, readmission_exemptions, weight_table_from_json, weight_table_json, weights_from_stays,
)
from services.common.regions import load_payment_params

H1 = "H44010000001"  # level 3: 差异系数 1.05 in 440100's parameters


def stay(number: int, member: str, principal: str, procedures: tuple[str, ...], admitted: str, discharged: str,
         cost_fen: int) -> ta.SettledStay:
    return ta.SettledStay(
        settlement_id=f"S{number:03d}", insured_region="440100", local=True, member_key=member,
        stay=types_pb2.Stay(hospital_code=H1, hospital_level=3, admitted_on=admitted, discharged_on=discharged,
                            diagnoses=[principal, "C34.900"], procedures=list(procedures), sex="M", age_years=60,
                            discharge_status="1"),
        total_fen=cost_fen, fund_pay_fen=cost_fen * 8 // 10, payout_month="2026-03")


def test_the_regions_readmission_reasons_are_its_audit_exemptions() -> None:
    assert readmission_exemptions("440100") == ("Z51.0", "Z51.1")


def test_a_readmission_halves_the_earlier_stay_unless_it_is_chemotherapy() -> None:
    # Five cholecystectomies (HC29) and five chemotherapy stays (RU13), all 10,000 yuan: RW 1.0000, 100 points.
    history = [stay(n, f"h{n}", "K80.101", ("51.2300",), "2026-01-02", "2026-01-06", 1_000_000) for n in range(5)]
    history += [stay(n, f"h{n}", "Z51.101", (), "2026-01-02", "2026-01-06", 1_000_000) for n in range(5, 10)]
    assert {item.drg for item in group_stays(history)} == {"HC29", "RU13"}
    month = [
        # Member a: HC29 again 10 days after discharge, no reason: the earlier stay's points are halved.
        stay(20, "a", "K80.101", ("51.2300",), "2026-03-01", "2026-03-05", 1_000_000),
        stay(21, "a", "K80.101", ("51.2300",), "2026-03-15", "2026-03-19", 1_000_000),
        # Member b: the next chemotherapy cycle 10 days later (Z51.1 is exempt): nothing halved.
        stay(22, "b", "Z51.101", (), "2026-03-01", "2026-03-05", 1_000_000),
        stay(23, "b", "Z51.101", (), "2026-03-15", "2026-03-19", 1_000_000),
    ]
    params = load_payment_params("440100")
    table = weights_from_stays(history, params, "weights_year", "2026")
    assert weight_table_from_json(weight_table_json(table)) == table  # the agency stores it so, for the year
    result = month_result("440100", "2026-03", "2026", table, params, month)
    points = {payment.case_id: payment.points_e4 for payment in result.payments}
    full = round_half_up_div(100 * 10_000 * 10_500, 10_000)  # 100 points × 1.05, in ten-thousandths
    assert points == {"S020": full // 2, "S021": full, "S022": full, "S023": full}
    halved = {payment.case_id: payment.halved_by for payment in result.payments}
    assert halved == {"S020": "S021", "S021": None, "S022": None, "S023": None}
    (hospital,) = [item for item in result.payment.hospitals if item.hospital == H1]
    # Advance = ⌊(points × v − what the patients paid) × 85 %⌋ (440100: v = 9,000 fen, the "fund_and_patients"
    # form; each patient paid 20 % of 10,000 yuan).
    assert params.provisional_point_value_fen == 9_000
    advance = (hospital.points_e4 * 9_000 - 4 * 200_000 * 10_000) * 8_500 // 10_000**2
    assert (hospital.points_e4, hospital.patients_fen, hospital.advance_fen) == (full // 2 + 3 * full, 800_000,
                                                                                 advance)
    assert result.cross_region.cases == 0 and result.grouping["grouped"] == 4
