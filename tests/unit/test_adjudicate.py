"""Adjudication of one stay by the insured region's policy (SPEC §5.2): `clearing/adjudicate.py`.

Every expected amount is worked out by hand in the comment beside it. Unless a test says otherwise:
hospital level 3, the member is insured in 430100 and treated in 440100, the policy has no filing
section (so no cut), no 大病, no assistance, no caps and a zero deductible.
"""

from __future__ import annotations

from datetime import date

import pytest

from conftest import INSURED_REGION, bill, catalogue, classified, csv_row, line, member, policy, stay

from clearing.adjudicate import Adjudication, adjudicate
from clearing.catalogue import Grade
from clearing.classify import Reason, classify_bill
from clearing.errors import InvalidField, PreconditionFailed
from clearing.member import Ytd
from clearing.policy import AssistanceTier, FilingStatus, Policy, Scheme


def run(lines, pol: Policy, *, mem=None, st=None, ytd: Ytd = Ytd()) -> Adjudication:
    return adjudicate(tuple(lines), st or stay(), mem or member(), pol, ytd)


def in_scope(inscp_fen: int) -> list:
    return [classified(inscp_fen=inscp_fen)]


def band_parts(result: Adjudication, key: str = "basic_band") -> list[tuple[int, int, int, int, int]]:
    """(band, from_fen, to_fen, ratio_bp, paid_fen) of every band step."""
    return [(s.facts["band"], s.facts["from_fen"], s.facts["to_fen"], s.facts["ratio_bp"], s.amount_fen)
            for s in result.explanation if s.key == key]


def step_keys(result: Adjudication) -> list[str]:
    return [step.key for step in result.explanation]


# --- the SPEC §5.2 worked check ---------------------------------------------------------------

def test_spec_worked_check_from_the_bill() -> None:
    book = catalogue(csv_row("A1", "N1", grade="A"), csv_row("B1", "N2", grade="B", selfpay_bp=1000),
                     csv_row("C1", "N3", grade="C"))
    bill_ = bill(
        line("A1", "1", 5_700_000, line_id="1", index=0),  # 57,000.00 yuan, grade A: all in scope
        line("B1", "1", 1_000_000, line_id="2", index=1),  # 10,000.00 yuan, grade B 10 %: 1,000.00 先行自付
        line("C1", "1", 300_000, line_id="3", index=2),  # 3,000.00 yuan, grade C: 全自费
    )
    pol = policy(deductible_fen=120_000, bands=((None, 6500),))  # 1,200 yuan deductible, flat 65 %
    result = run(classify_bill(bill_, book), pol)
    assert result.total_fen == 7_000_000  # 70,000.00 yuan
    assert result.preselfpay_fen == 100_000  # 1,000.00
    assert result.fulamt_ownpay_fen == 300_000  # 3,000.00
    assert result.overlmt_selfpay_fen == 0
    assert result.inscp_fen == 6_600_000  # 70,000 − 1,000 − 3,000 = 66,000.00
    assert result.deductible_fen == 120_000  # 1,200.00
    assert result.eligible_fen == 6_480_000  # 66,000 − 1,200 = 64,800.00
    assert result.hifp_fen == 4_212_000  # 64,800 × 65 % = 42,120.00
    assert result.hifmi_fen == 0 and result.maf_fen == 0
    assert result.fund_pay_fen == 4_212_000
    assert result.psn_pay_fen == 2_788_000  # 70,000 − 42,120 = 27,880.00
    assert result.ytd_after == Ytd(120_000, 6_480_000, 4_212_000, 2_388_000, 0, 2_388_000, 0, 1)
    # burden = assist base = 66,000 − 42,120 = 23,880.00


def test_deductible_cap_across_three_stays() -> None:
    # 1,200 yuan per stay, at most 2,300 yuan a year; flat 65 %; each stay 10,000 yuan in scope.
    pol = policy(deductible_fen=120_000, annual_deductible_cap_fen=230_000, bands=((None, 6500),))
    ytd = Ytd()
    deductibles, hifps = [], []
    for _ in range(3):
        result = run(in_scope(1_000_000), pol, ytd=ytd)
        deductibles.append(result.deductible_fen)
        hifps.append(result.hifp_fen)
        ytd = result.ytd_after
    assert deductibles == [120_000, 110_000, 0]  # 1,200; min(1,200, 2,300 − 1,200) = 1,100; 2,300 − 2,300 = 0
    assert hifps == [572_000, 578_500, 650_000]  # 8,800 × 65 %; 8,900 × 65 %; 10,000 × 65 %
    assert ytd.deductible_fen == 230_000
    assert ytd.eligible_fen == 2_770_000  # 880,000 + 890,000 + 1,000,000
    assert ytd.hifp_fen == 1_800_500  # 572,000 + 578,500 + 650,000
    assert ytd.admissions == 3


def test_deductible_without_annual_cap_is_taken_every_stay() -> None:
    pol = policy(deductible_fen=120_000, bands=((None, 6500),))
    first = run(in_scope(1_000_000), pol)
    second = run(in_scope(1_000_000), pol, ytd=first.ytd_after)
    assert (first.deductible_fen, second.deductible_fen) == (120_000, 120_000)


def test_deductible_never_exceeds_the_in_scope_amount() -> None:
    pol = policy(deductible_fen=120_000, bands=((None, 6500),))
    result = run([classified(inscp_fen=50_000, fulamt_ownpay_fen=200_000, reason=Reason.GRADE_C)], pol)
    assert result.deductible_fen == 50_000  # min(500.00 in scope, 1,200.00)
    assert (result.eligible_fen, result.hifp_fen) == (0, 0)
    assert result.psn_pay_fen == 250_000  # everything


def test_deductible_by_hospital_level() -> None:
    pol = policy(deductible_fen=(30_000, 60_000, 120_000), bands=((None, 6500),))
    assert run(in_scope(1_000_000), pol, st=stay(level=1)).deductible_fen == 30_000
    assert run(in_scope(1_000_000), pol, st=stay(level=2)).deductible_fen == 60_000
    assert run(in_scope(1_000_000), pol, st=stay(level=3)).deductible_fen == 120_000


def test_ytd_deductible_above_the_cap_takes_nothing() -> None:
    pol = policy(deductible_fen=120_000, annual_deductible_cap_fen=230_000, bands=((None, 6500),))
    result = run(in_scope(1_000_000), pol, ytd=Ytd(deductible_fen=300_000))
    assert result.deductible_fen == 0  # max(0, 2,300 − 3,000) = 0, never negative


# --- basic fund bands (分段比例) -----------------------------------------------------------------

TWO_BANDS = ((5_000_000, (9000, 8500, 8000)), (None, (9500, 9000, 8500)))


def test_stay_crossing_a_band_edge_on_the_year_axis() -> None:
    pol = policy(bands=TWO_BANDS)
    result = run(in_scope(100_000), pol, ytd=Ytd(eligible_fen=4_990_000))
    # [4,990,000, 5,000,000) at 80 % = 8,000; [5,000,000, 5,090,000) at 85 % = 76,500
    assert band_parts(result) == [(0, 4_990_000, 5_000_000, 8000, 8_000), (1, 5_000_000, 5_090_000, 8500, 76_500)]
    assert result.hifp_fen == 84_500
    assert result.ytd_after.eligible_fen == 5_090_000


def test_band_ratio_by_hospital_level() -> None:
    pol = policy(bands=TWO_BANDS)
    result = run(in_scope(100_000), pol, st=stay(level=1), ytd=Ytd(eligible_fen=4_990_000))
    assert result.hifp_fen == 94_500  # 10,000 × 90 % = 9,000 + 90,000 × 95 % = 85,500


@pytest.mark.parametrize(("ytd_eligible_fen", "hifp_fen"), [
    (4_900_000, 80_000),  # ends exactly at the edge: all 100,000 at 80 %
    (5_000_000, 85_000),  # starts exactly at the edge: all at 85 %
    (0, 80_000),
])
def test_band_edges_are_half_open(ytd_eligible_fen: int, hifp_fen: int) -> None:
    result = run(in_scope(100_000), policy(bands=TWO_BANDS), ytd=Ytd(eligible_fen=ytd_eligible_fen))
    assert result.hifp_fen == hifp_fen
    assert len(band_parts(result)) == 1


def test_stay_spanning_three_bands() -> None:
    pol = policy(bands=((1_000_000, 5000), (2_000_000, 6000), (None, 7000)))
    result = run(in_scope(1_300_000), pol, ytd=Ytd(eligible_fen=900_000))
    # [900k, 1M) 100,000 × 50 % = 50,000; [1M, 2M) 1,000,000 × 60 % = 600,000; [2M, 2.2M) 200,000 × 70 % = 140,000
    assert [part[4] for part in band_parts(result)] == [50_000, 600_000, 140_000]
    assert result.hifp_fen == 790_000


def test_apply_bp_is_per_band_part() -> None:
    # Two bands at 50 % split at 1 fen; 2 fen eligible: 1 × 50 % = 0.5 → 1 in each part = 2 fen,
    # where one 2 × 50 % on the whole would give 1 fen.
    pol = policy(bands=((1, 5000), (None, 5000)))
    assert run(in_scope(2), pol).hifp_fen == 2


def test_deductible_comes_off_before_the_bands() -> None:
    pol = policy(deductible_fen=120_000, bands=TWO_BANDS)
    result = run(in_scope(220_000), pol, ytd=Ytd(eligible_fen=4_990_000))
    # eligible = 220,000 − 120,000 = 100,000, laid from 4,990,000 exactly as in the band-crossing case
    assert (result.eligible_fen, result.hifp_fen) == (100_000, 84_500)


# --- the annual cap (封顶线) ---------------------------------------------------------------------

CAPPED = {"annual_cap_fen": 1_000_000, "bands": ((None, 8000),)}


@pytest.mark.parametrize(("ytd_hifp_fen", "hifp_fen"), [
    (0, 80_000),  # 100,000 × 80 % = 80,000, far from the cap
    (920_000, 80_000),  # exactly reaches 1,000,000
    (950_000, 50_000),  # only 1,000,000 − 950,000 = 50,000 left
    (1_000_000, 0),  # exhausted
    (1_200_000, 0),  # beyond the cap (e.g. a policy change): never negative
])
def test_annual_cap(ytd_hifp_fen: int, hifp_fen: int) -> None:
    result = run(in_scope(100_000), policy(**CAPPED), ytd=Ytd(hifp_fen=ytd_hifp_fen))
    assert result.hifp_fen == hifp_fen
    assert result.burden_fen == 100_000 - hifp_fen  # what the fund does not pay is the patient's burden
    assert result.ytd_after.hifp_fen == ytd_hifp_fen + hifp_fen
    assert ("basic_cap" in step_keys(result)) is (hifp_fen < 80_000)


def test_cap_step_names_what_is_left() -> None:
    result = run(in_scope(100_000), policy(**CAPPED), ytd=Ytd(hifp_fen=950_000))
    (cap,) = [s for s in result.explanation if s.key == "basic_cap"]
    assert (cap.amount_fen, cap.facts["annual_cap_fen"], cap.facts["left_fen"]) == (50_000, 1_000_000, 50_000)


# --- 大病保险 ------------------------------------------------------------------------------------

CRITICAL = {"threshold_fen": 1_300_000, "annual_cap_fen": 0, "bands": ((10_000_000, 6000), (None, 7000))}


def critical_policy(**overrides) -> Policy:
    critical = {**CRITICAL, **overrides}
    return policy(bands=((None, 5000),), critical=critical)


def test_burden_below_the_threshold_gets_no_critical_pay() -> None:
    result = run(in_scope(600_000), critical_policy())
    # hifp 600,000 × 50 % = 300,000; burden 300,000 on [0, 300,000): below 1,300,000
    assert (result.hifp_fen, result.burden_fen, result.hifmi_fen) == (300_000, 300_000, 0)


def test_stay_crossing_the_critical_threshold() -> None:
    result = run(in_scope(600_000), critical_policy(), ytd=Ytd(burden_fen=1_200_000))
    # burden 300,000 on [1,200,000, 1,500,000): 200,000 above the threshold, at 60 % = 120,000
    assert result.hifmi_fen == 120_000
    assert band_parts(result, "critical_band") == [(0, 0, 200_000, 6000, 120_000)]
    assert result.assist_base_fen == 180_000  # 600,000 − 300,000 − 120,000
    assert result.fund_pay_fen == 420_000  # 300,000 + 120,000
    assert result.psn_pay_fen == 180_000
    assert result.ytd_after.burden_fen == 1_500_000


def test_critical_bands_are_measured_from_the_threshold() -> None:
    # ytd burden 11,250,000 = threshold 1,300,000 + 9,950,000. Burden 300,000 lies at
    # [9,950,000, 10,250,000) above the threshold: 50,000 × 60 % = 30,000 + 250,000 × 70 % = 175,000.
    # (Measured from zero it would all be in band 2: 300,000 × 70 % = 210,000.)
    result = run(in_scope(600_000), critical_policy(), ytd=Ytd(burden_fen=11_250_000))
    assert band_parts(result, "critical_band") == [
        (0, 9_950_000, 10_000_000, 6000, 30_000), (1, 10_000_000, 10_250_000, 7000, 175_000)]
    assert result.hifmi_fen == 205_000


@pytest.mark.parametrize(("ytd_hifmi_fen", "hifmi_fen"), [
    (0, 205_000),
    (950_000, 50_000),  # 1,000,000 − 950,000 left
    (1_000_000, 0),
])
def test_critical_annual_cap(ytd_hifmi_fen: int, hifmi_fen: int) -> None:
    result = run(in_scope(600_000), critical_policy(annual_cap_fen=1_000_000),
                 ytd=Ytd(burden_fen=11_250_000, hifmi_fen=ytd_hifmi_fen))
    assert result.hifmi_fen == hifmi_fen
    assert result.assist_base_fen == 300_000 - hifmi_fen  # 600,000 − hifp 300,000 − hifmi
    assert ("critical_cap" in step_keys(result)) is (hifmi_fen < 205_000)


# --- poverty (一站式), retired bonus, filing cuts, the clamp --------------------------------------

POVERTY = {"ratio_bonus_bp": 1000, "critical_threshold_bp": 5000}


def test_poverty_bonus_on_every_band() -> None:
    pol = policy(bands=TWO_BANDS, poverty=POVERTY)
    result = run(in_scope(100_000), pol, mem=member(poverty=True), ytd=Ytd(eligible_fen=4_990_000))
    # level 3: 80 % + 10 = 90 % on 10,000 = 9,000; 85 % + 10 = 95 % on 90,000 = 85,500
    assert [part[3] for part in band_parts(result)] == [9000, 9500]
    assert result.hifp_fen == 94_500


def test_poverty_flag_without_a_poverty_section_changes_nothing() -> None:
    pol = policy(bands=TWO_BANDS)
    result = run(in_scope(100_000), pol, mem=member(poverty=True), ytd=Ytd(eligible_fen=4_990_000))
    assert result.hifp_fen == 84_500  # as for anyone


def test_poverty_halves_the_critical_threshold() -> None:
    pol = policy(bands=((None, 5000),), critical=CRITICAL, poverty=POVERTY)
    ytd = Ytd(burden_fen=500_000)
    poor = run(in_scope(1_000_000), pol, mem=member(poverty=True), ytd=ytd)
    # ratio 50 % + 10 = 60 %: hifp 600,000; burden 400,000 on [500,000, 900,000);
    # threshold 1,300,000 × 50 % = 650,000 → 250,000 above it at 60 % = 150,000
    assert (poor.hifp_fen, poor.burden_fen, poor.hifmi_fen) == (600_000, 400_000, 150_000)
    (threshold,) = [s for s in poor.explanation if s.key == "critical_threshold"]
    assert threshold.facts["threshold_fen"] == 650_000
    other = run(in_scope(1_000_000), pol, mem=member(poverty=False), ytd=ytd)
    # hifp 500,000; burden 500,000 on [500,000, 1,000,000): below 1,300,000
    assert (other.hifp_fen, other.hifmi_fen) == (500_000, 0)


def test_retired_bonus_on_every_band() -> None:
    pol = policy(bands=TWO_BANDS, retired_bonus_bp=500)
    result = run(in_scope(100_000), pol, mem=member(retired=True), ytd=Ytd(eligible_fen=4_990_000))
    # 80 % + 5 = 85 % on 10,000 = 8,500; 85 % + 5 = 90 % on 90,000 = 81,000
    assert result.hifp_fen == 89_500
    assert run(in_scope(100_000), pol, mem=member(retired=False), ytd=Ytd(eligible_fen=4_990_000)).hifp_fen == 84_500


FILING = {"resident": 300, "referral": 500, "temporary": 1000, "unfiled": 2000}  # distinct to tell them apart


@pytest.mark.parametrize(("filing", "emergency", "treating_region", "hifp_fen"), [
    (FilingStatus.RESIDENT, False, "440100", 77_000),  # 80 % − 3 = 77 % of 100,000
    (FilingStatus.REFERRAL, False, "440100", 75_000),  # 80 % − 5
    (FilingStatus.TEMPORARY, False, "440100", 70_000),  # 80 % − 10
    (FilingStatus.UNFILED, False, "440100", 60_000),  # 80 % − 20
    (FilingStatus.UNFILED, True, "440100", 70_000),  # an unfiled emergency takes the temporary cut
    (FilingStatus.RESIDENT, True, "440100", 77_000),  # a filed member keeps their own cut
    (FilingStatus.UNFILED, False, INSURED_REGION, 80_000),  # same-region patient: no cut
    (FilingStatus.UNFILED, True, INSURED_REGION, 80_000),
])
def test_filing_cut(filing: FilingStatus, emergency: bool, treating_region: str, hifp_fen: int) -> None:
    pol = policy(bands=((None, 8000),), filing=FILING)
    result = run(in_scope(100_000), pol, mem=member(filing=filing),
                 st=stay(emergency=emergency, treating_region=treating_region))
    assert result.hifp_fen == hifp_fen


def test_no_filing_section_means_no_cut() -> None:
    pol = policy(bands=((None, 8000),))
    assert run(in_scope(100_000), pol, mem=member(filing=FilingStatus.UNFILED)).hifp_fen == 80_000


def test_clamp_to_100_percent_after_all_adjustments() -> None:
    pol = policy(bands=((None, 9500),), retired_bonus_bp=500, poverty=POVERTY, filing={"resident": 0})
    result = run(in_scope(100_000), pol, mem=member(retired=True, poverty=True, filing=FilingStatus.RESIDENT))
    # 95 % + 5 + 10 = 110 % → clamped to 100 %
    assert band_parts(result)[0][3] == 10_000
    assert result.hifp_fen == 100_000


def test_clamp_happens_once_after_the_cut() -> None:
    pol = policy(bands=((None, 9500),), retired_bonus_bp=500, poverty=POVERTY, filing={"unfiled": 2000})
    result = run(in_scope(100_000), pol, mem=member(retired=True, poverty=True, filing=FilingStatus.UNFILED))
    # 95 + 5 + 10 − 20 = 90 % (clamping the bonuses first would give 100 − 20 = 80 %)
    assert band_parts(result)[0][3] == 9000
    assert result.hifp_fen == 90_000


def test_clamp_at_zero() -> None:
    pol = policy(bands=((None, 1000),), filing={"unfiled": 2000})
    result = run(in_scope(100_000), pol, mem=member(filing=FilingStatus.UNFILED))
    assert result.hifp_fen == 0  # 10 % − 20 = −10 % → 0 %
    assert result.burden_fen == 100_000


# --- medical assistance (医疗救助) ----------------------------------------------------------------

TIERS = {
    "tekun": {"deductible_fen": 0, "ratio_bp": 10000, "annual_cap_fen": 5_000_000},
    "dibao": {"deductible_fen": 100_000, "ratio_bp": 7000, "annual_cap_fen": 3_000_000},
    "dishouru": {"deductible_fen": 300_000, "ratio_bp": 5000, "annual_cap_fen": 1_000_000},
}


@pytest.mark.parametrize(("tier", "ytd", "maf_fen"), [
    # every case: inscp 1,000,000, hifp 50 % = 500,000, no 大病, so r = 500,000
    (AssistanceTier.TEKUN, Ytd(), 500_000),  # above 0: 500,000 × 100 %
    (AssistanceTier.DIBAO, Ytd(), 280_000),  # above 100,000: 400,000 × 70 %
    (AssistanceTier.DISHOURU, Ytd(), 100_000),  # above 300,000: 200,000 × 50 %
    (AssistanceTier.DIBAO, Ytd(assist_base_fen=150_000), 350_000),  # threshold already passed: 500,000 × 70 %
    (AssistanceTier.DIBAO, Ytd(assist_base_fen=60_000), 322_000),  # [60k, 560k): 460,000 above 100,000 × 70 %
    (AssistanceTier.DISHOURU, Ytd(maf_fen=950_000), 50_000),  # cap 1,000,000: 50,000 left
    (AssistanceTier.DISHOURU, Ytd(maf_fen=1_000_000), 0),  # cap exhausted
    (AssistanceTier.TEKUN, Ytd(maf_fen=4_800_000), 200_000),  # cap 5,000,000: 200,000 left
])
def test_assistance_tiers(tier: AssistanceTier, ytd: Ytd, maf_fen: int) -> None:
    pol = policy(bands=((None, 5000),), assistance=TIERS)
    result = run(in_scope(1_000_000), pol, mem=member(assistance=tier), ytd=ytd)
    assert result.assist_base_fen == 500_000
    assert result.maf_fen == maf_fen
    assert result.fund_pay_fen == 500_000 + maf_fen
    assert result.psn_pay_fen == 500_000 - maf_fen


def test_assist_base_accumulates_for_a_member_without_a_tier() -> None:
    pol = policy(bands=((None, 5000),), assistance=TIERS)
    result = run(in_scope(1_000_000), pol, mem=member(assistance=None), ytd=Ytd(assist_base_fen=10))
    assert result.maf_fen == 0
    assert result.ytd_after.assist_base_fen == 500_010  # 10 + 500,000


def test_tier_the_policy_does_not_define_is_an_error() -> None:
    pol = policy(bands=((None, 5000),), assistance={"tekun": TIERS["tekun"]})
    with pytest.raises(InvalidField) as caught:
        run(in_scope(1_000_000), pol, mem=member(assistance=AssistanceTier.DIBAO))
    assert caught.value.field == "member.assistance"


@pytest.mark.parametrize("tier", list(AssistanceTier))
def test_tier_under_a_policy_without_an_assistance_section_gets_no_assistance_and_says_why(
        tier: AssistanceTier) -> None:
    # SPEC §5.1: an absent [assistance] section means "no assistance". inscp 1,000,000 at 50 %: hifp 500,000,
    # no 大病, so r = 500,000 is accumulated (step 8) but nothing is paid on it: maf 0, the patient 500,000.
    result = run(in_scope(1_000_000), policy(bands=((None, 5000),)), mem=member(assistance=tier),
                 ytd=Ytd(assist_base_fen=100_000, maf_fen=20_000))
    assert (result.hifp_fen, result.hifmi_fen, result.assist_base_fen, result.maf_fen) == (500_000, 0, 500_000, 0)
    assert (result.fund_pay_fen, result.psn_pay_fen) == (500_000, 500_000)
    assert result.ytd_after.assist_base_fen == 600_000  # 100,000 + 500,000
    assert result.ytd_after.maf_fen == 20_000  # unchanged
    keys = step_keys(result)
    assert keys[keys.index("assist_base"):keys.index("maf") + 1] == ["assist_base", "assistance_none", "maf"]
    step = result.explanation[keys.index("assistance_none")]
    assert (step.amount_fen, step.facts) == (0, {"tier": tier.value})


def test_member_without_a_tier_under_a_policy_without_assistance_has_no_assistance_step() -> None:
    result = run(in_scope(1_000_000), policy(bands=((None, 5000),)), mem=member(assistance=None))
    assert result.maf_fen == 0
    assert "assistance_none" not in step_keys(result)


# --- everything at once, and the accumulators ----------------------------------------------------

def test_full_stay_and_ytd_after() -> None:
    pol = policy(
        deductible_fen=100_000, bands=((2_000_000, 7000), (None, 8000)),
        critical={"threshold_fen": 500_000, "bands": ((1_000_000, 6000), (None, 7000))},
        assistance={"dibao": {"deductible_fen": 200_000, "ratio_bp": 5000}},
    )
    ytd = Ytd(deductible_fen=50_000, eligible_fen=1_900_000, hifp_fen=1_330_000, burden_fen=450_000,
              hifmi_fen=0, assist_base_fen=150_000, maf_fen=0, admissions=2)
    lines = [classified(inscp_fen=700_000, line_id="1"),
             classified(fulamt_ownpay_fen=30_000, line_id="2", reason=Reason.GRADE_C, grade=Grade.C),
             classified(preselfpay_fen=20_000, inscp_fen=0, line_id="3", grade=Grade.B, selfpay_bp=1000)]
    result = run(lines, pol, mem=member(assistance=AssistanceTier.DIBAO), ytd=ytd)
    assert result.total_fen == 750_000  # 700,000 + 30,000 + 20,000
    assert result.inscp_fen == 700_000
    assert result.deductible_fen == 100_000  # min(700,000, 100,000)
    assert result.eligible_fen == 600_000
    # [1,900,000, 2,500,000): 100,000 × 70 % = 70,000 + 500,000 × 80 % = 400,000
    assert result.hifp_fen == 470_000
    # burden 700,000 − 470,000 = 230,000 on [450,000, 680,000): 180,000 above 500,000 at 60 %
    assert result.burden_fen == 230_000
    assert result.hifmi_fen == 108_000
    # r = 700,000 − 470,000 − 108,000 = 122,000 on [150,000, 272,000): 72,000 above 200,000 at 50 %
    assert result.assist_base_fen == 122_000
    assert result.maf_fen == 36_000
    assert result.fund_pay_fen == 614_000  # 470,000 + 108,000 + 36,000
    assert result.psn_pay_fen == 136_000  # 750,000 − 614,000
    assert result.ytd_before == ytd
    # ytd_after = ytd_before + (d, e, hifp, b, hifmi, r, maf, 1)
    assert result.ytd_after == Ytd(150_000, 2_500_000, 1_800_000, 680_000, 108_000, 272_000, 36_000, 3)
    assert result.ytd_delta == Ytd(100_000, 600_000, 470_000, 230_000, 108_000, 122_000, 36_000, 1)


def test_a_stay_with_nothing_in_scope_still_counts_one_admission() -> None:
    pol = policy(deductible_fen=100_000, bands=((None, 7000),))
    result = run([classified(fulamt_ownpay_fen=5_000, reason=Reason.UNMAPPED)], pol)
    assert (result.inscp_fen, result.deductible_fen, result.hifp_fen, result.fund_pay_fen) == (0, 0, 0, 0)
    assert result.psn_pay_fen == 5_000
    assert result.ytd_after == Ytd(admissions=1)


# --- errors, not quotes ----------------------------------------------------------------------------

def test_member_of_another_region_is_invalid() -> None:
    with pytest.raises(InvalidField) as caught:
        run(in_scope(1_000), policy(), mem=member(region="440100"))
    assert caught.value.field == "member.region"


def test_discharge_before_the_policy_takes_effect() -> None:
    with pytest.raises(PreconditionFailed):
        run(in_scope(1_000), policy(effective_from="2026-03-11"), st=stay(discharged_on=date(2026, 3, 10)))
    # on effective_from itself the policy applies
    result = run(in_scope(1_000), policy(effective_from="2026-03-10"), st=stay(discharged_on=date(2026, 3, 10)))
    assert result.hifp_fen == 1_000  # 100 % of 1,000


def test_scheme_the_policy_lacks_is_invalid() -> None:
    with pytest.raises(InvalidField) as caught:
        run(in_scope(1_000), policy(scheme="employee"), mem=member(scheme=Scheme.RESIDENT))
    assert caught.value.field == "member.scheme"
