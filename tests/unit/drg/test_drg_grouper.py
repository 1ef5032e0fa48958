"""Hand-worked CHS-DRG 1.1 groupings, one per step of the flow (clearing/drg/grouper.py, docs/drg.md).

Each case names the table rows that decide it (services/drg/reference/), so the expectation is read off the
tables, not off the grouper.
"""

from __future__ import annotations

import pytest
from drg_cases import case, tables

from clearing.drg import UNGROUPABLE, CcLevel, Ungroupable, group, result_json

# J80.x00 成人呼吸窘迫综合征: on the MDCE list, on ER3's principal_diagnosis list (ER3 splits 1/3/5), its own
# exclusion table is 106 (chs_drg_11_cc_exclusions.csv).
ARDS = "J80.x00"
SEPSIS = "A41.900"  # MCC, exclusion table 4
HYPONATRAEMIA = "E87.100"  # CC, exclusion table 52
PULMONARY_OEDEMA = "J81.x00"  # MCC, exclusion table 106: the same table as ARDS, so excluded


def test_mdc_and_adrg_by_principal_diagnosis_with_an_mcc_is_the_1_group() -> None:
    result = group(case(ARDS, SEPSIS), tables())
    assert (result.mdc, result.adrg, result.drg, result.cc_level) == ("MDCE", "ER3", "ER31", CcLevel.MCC)
    assert "MCC A41.900" in result.reason


def test_a_cc_only_is_the_3_group() -> None:
    result = group(case(ARDS, HYPONATRAEMIA), tables())
    assert (result.drg, result.cc_level) == ("ER33", CcLevel.CC)


def test_no_complication_is_the_5_group() -> None:
    result = group(case(ARDS, "I10.x00"), tables())  # I10.x00 高血压: on neither the MCC nor the CC list
    assert (result.drg, result.cc_level) == ("ER35", CcLevel.NONE)


def test_an_mcc_in_the_principal_diagnosis_exclusion_table_does_not_count() -> None:
    result = group(case(ARDS, PULMONARY_OEDEMA), tables())
    assert (result.drg, result.cc_level) == ("ER35", CcLevel.NONE)
    assert result.complications.excluded == (PULMONARY_OEDEMA,)
    assert "excluded" in result.reason and PULMONARY_OEDEMA in result.reason


def test_an_excluded_mcc_leaves_the_cc_beside_it() -> None:
    result = group(case(ARDS, PULMONARY_OEDEMA, HYPONATRAEMIA), tables())
    assert (result.drg, result.cc_level) == ("ER33", CcLevel.CC)


def test_the_same_secondary_excluded_under_another_principal_counts() -> None:
    # J81.x00 is an MCC of table 106; under sepsis (A41.900, MDCS, table 4) it counts.
    result = group(case(SEPSIS, PULMONARY_OEDEMA), tables())
    assert result.cc_level is CcLevel.MCC
    assert result.mdc == "MDCS"


def test_a_secondary_equal_to_the_principal_is_not_its_own_complication() -> None:
    # E87.100 has no exclusion-table row as a principal (so the tables alone would let it count).
    assert group(case(HYPONATRAEMIA, HYPONATRAEMIA), tables()).cc_level is CcLevel.NONE


def test_an_unsplit_adrg_is_the_9_group_whatever_the_complications() -> None:
    # I21.001 急性前壁心肌梗死: MDCF, FR1 (急性心肌梗死) has only FR19. I50.900 心力衰竭 is an MCC (table 95).
    result = group(case("I21.001", "I50.900"), tables())
    assert (result.mdc, result.adrg, result.drg, result.cc_level) == ("MDCF", "FR1", "FR19", CcLevel.MCC)
    assert "not split" in result.reason


def test_a_1_5_adrg_sends_a_cc_only_case_to_the_5_group() -> None:
    # S01.800x011 + S71.800x011: head and lower-limb trauma, two MDCZ body regions → MDCZ; no OR procedure → ZZ1,
    # which splits 1/5 only. S71.800x011 is a CC (not an MCC), so ZZ15.
    result = group(case("S01.800x011", "S71.800x011"), tables())
    assert (result.mdc, result.adrg, result.drg, result.cc_level) == ("MDCZ", "ZZ1", "ZZ15", CcLevel.CC)
    assert "no CC group" in result.reason


def test_adrg_by_main_procedure_comes_before_adrg_by_diagnosis() -> None:
    # 32.4100 胸腔镜肺叶切除 is on EB1's main_procedure list; EB1 (order 1 in MDCE) is tried before ER3.
    result = group(case(ARDS, procedures=["32.4100"]), tables())
    assert (result.mdc, result.adrg, result.drg) == ("MDCE", "EB1", "EB19")
    assert "main procedure 32.4100" in result.reason


def test_a_non_or_procedure_leaves_the_medical_adrg() -> None:
    # 93.9600 other oxygen enrichment: on no list → the diagnosis decides.
    assert group(case(ARDS, procedures=["93.9600"]), tables()).adrg == "ER3"


def test_mdca_by_a_transplant_whatever_the_principal_diagnosis() -> None:
    # 37.5100 心脏移植: valid OR procedure (MDCA entry, order 1), on AA1's main_procedure list.
    result = group(case("I21.001", procedures=["37.5100"]), tables())
    assert (result.mdc, result.adrg, result.drg) == ("MDCA", "AA1", "AA19")


def test_mdca_entered_without_a_matching_adrg_falls_through_to_the_body_system() -> None:
    # 36.0601 冠状动脉药物涂层支架置入: a valid OR procedure (enters MDCA) on no MDCA list; FM1 lists it.
    result = group(case("I21.001", procedures=["36.0601"]), tables())
    assert (result.mdc, result.adrg, result.drg) == ("MDCF", "FM1", "FM19")


@pytest.mark.parametrize(("weight_g", "adrg", "drg"), [
    (1200, "PS1", "PS15"), (1499, "PS1", "PS15"), (1500, "PS2", "PS25"), (1999, "PS2", "PS25"),
    (2000, "PS3", "PS39"), (2499, "PS3", "PS39"), (2500, "PS4", "PS45"), (3400, "PS4", "PS45"),
])
def test_newborn_by_birth_weight(weight_g: int, adrg: str, drg: str) -> None:
    # P07.200 极度未成熟: on the MDCP list (entry needs age_years 0) and on PS1–PS4's lists (any diagnosis,
    # birth-weight band, age_days ≤ 28). PS3 is unsplit; the others split and a case without CC is …5.
    result = group(case("P07.200", age_years=0, age_days=3, birth_weight_g=weight_g), tables())
    assert (result.mdc, result.adrg, result.drg) == ("MDCP", adrg, drg)


def test_newborn_bands_read_any_diagnosis_not_only_the_principal() -> None:
    # P07.100 其他低出生体重 is on the MDCP list but on none of PR1, PS1–PS4 or PU1's lists: alone it ends in
    # PV1. With P07.200 (on PS1's list) as a secondary, the case is in the < 1500 g band.
    alone = group(case("P07.100", age_years=0, age_days=2, birth_weight_g=1300), tables())
    assert (alone.mdc, alone.adrg) == ("MDCP", "PV1")
    result = group(case("P07.100", "P07.200", age_years=0, age_days=2, birth_weight_g=1300), tables())
    assert (result.mdc, result.adrg) == ("MDCP", "PS1")


def test_an_infant_past_28_days_is_pv1() -> None:
    # Age 40 days: the ≤ 28-day ADRGs fail; PV1 (always, last in MDCP) takes it.
    result = group(case("P07.200", age_years=0, age_days=40, birth_weight_g=1200), tables())
    assert (result.mdc, result.adrg, result.drg) == ("MDCP", "PV1", "PV15")


def test_a_missing_age_in_days_makes_the_newborn_comparisons_false() -> None:
    result = group(case("P07.200", age_years=0), tables())
    assert result.adrg == "PV1"


def test_a_newborn_code_on_an_older_patient_is_ungroupable_and_says_why() -> None:
    result = group(case("P07.200", age_years=3), tables())
    assert (result.mdc, result.adrg, result.drg) == (None, None, UNGROUPABLE)
    assert "MDCP" in result.reason and "age_years is 3" in result.reason
    assert result.ungroupable is Ungroupable.AGE_CONFLICT


def test_mdcy_hiv() -> None:
    # B20.001 (HIV disease with infection): MDCY list (order 3, before the body systems); YR1 lists it.
    result = group(case("B20.001"), tables())
    assert result.mdc == "MDCY" and result.adrg in ("YR1", "YR2")


def test_multiple_trauma_needs_two_body_regions() -> None:
    # One region only (head): MDCZ's condition fails; S01.800x011 is also on the MDCB list → BY1.
    result = group(case("S01.800x011"), tables())
    assert (result.mdc, result.adrg) == ("MDCB", "BY1")


def test_multiple_trauma_with_an_or_procedure_on_a_z_list() -> None:
    # Two regions → MDCZ; 32.4100 is a valid OR procedure on ZJ1's list ("其他手术室操作").
    result = group(case("S01.800x011", "S71.800x011", procedures=["32.4100"]), tables())
    assert (result.mdc, result.adrg, result.drg) == ("MDCZ", "ZJ1", "ZJ15")


@pytest.mark.parametrize(("sex", "mdc"), [("M", "MDCM"), ("F", "MDCN")])
def test_a_code_on_both_sex_lists_follows_the_sex(sex: str, mdc: str) -> None:
    # Q56.000 两性畸形 is on the MDCM and the MDCN lists; each MDC needs its sex.
    result = group(case("Q56.000", sex=sex), tables())
    assert result.mdc == mdc


def test_a_male_only_diagnosis_in_a_woman_is_ungroupable_naming_the_sex_conflict() -> None:
    # N40.x00 前列腺增生: only on the MDCM list (sex == 1).
    result = group(case("N40.x00", sex="F"), tables())
    assert result.drg == UNGROUPABLE
    assert "MDCM" in result.reason and "sex is F" in result.reason
    assert result.ungroupable is Ungroupable.SEX_CONFLICT
    male = group(case("N40.x00", sex="M"), tables())
    assert (male.mdc, male.ungroupable) == ("MDCM", None)


def test_a_code_on_no_mdc_list_is_ungroupable() -> None:
    # A00.000 is in the 医保版 2.0 dictionary but in none of the grouping tables.
    result = group(case("A00.000"), tables())
    assert result_json(result) == {"mdc": None, "adrg": None, "drg": "0000", "cc_level": "none",
                                   "reason": result.reason}
    assert "A00.000" in result.reason and "not a code of the CHS-DRG 1.1 tables" in result.reason
    assert result.ungroupable is Ungroupable.UNKNOWN_CODE


def test_an_entered_mdc_with_no_matching_adrg_is_ungroupable_naming_it() -> None:
    # C50.000 乳房恶性肿瘤 is on the MDCJ list but on no medical MDCJ ADRG list (JR1 lists C50.000x001 and
    # C50.001, not C50.000): without a procedure no ADRG of MDCJ matches and no later MDC lists it.
    result = group(case("C50.000", sex="F"), tables())
    assert result.drg == UNGROUPABLE
    assert "MDCJ entered" in result.reason and "no procedure" in result.reason
    assert result.ungroupable is Ungroupable.NO_ADRG


def test_result_json_has_exactly_the_contract_keys() -> None:
    assert set(result_json(group(case(ARDS), tables()))) == {"mdc", "adrg", "drg", "cc_level", "reason"}


def test_discharge_status_and_length_of_stay_do_not_change_the_group() -> None:
    # No CHS-DRG 1.1 rule in these tables reads them (docs/drg.md); they are carried for payment (issue 13).
    base = group(case(ARDS, SEPSIS), tables())
    other = group(case(ARDS, SEPSIS, los_days=1, discharge_status="5"), tables())
    assert (base.drg, base.reason) == (other.drg, other.reason)


def test_ja1_needs_a_reconstruction_beside_the_mastectomy() -> None:
    # JA1 乳房恶性肿瘤根治性切除伴乳房重建术: C50.000 on its list and (group 1 and group 2) or (1 and 3 and 4) of its
    # procedure_group labels. 85.4301 is in group 2 (mastectomy), 85.7000x001 in group 1 (reconstruction).
    both = group(case("C50.000", procedures=["85.4301", "85.7000x001"], sex="F"), tables())
    assert (both.mdc, both.adrg, both.drg) == ("MDCJ", "JA1", "JA19")
    reversed_order = group(case("C50.000", procedures=["85.7000x001", "85.4301"], sex="F"), tables())
    assert reversed_order.adrg == "JA1"  # "any procedure": the order does not matter
    assert group(case("C50.000", procedures=["85.4301"], sex="F"), tables()).adrg != "JA1"


def test_ac1_needs_both_transplants() -> None:
    # AC1 胰/肾联合移植: any procedure on main_procedure (52.8000 胰腺移植) and any on procedure_2 (55.6100 肾移植).
    assert group(case("E10.200", procedures=["52.8000", "55.6100"]), tables()).drg == "AC19"
    assert group(case("E10.200", procedures=["52.8000"]), tables()).adrg != "AC1"


def test_the_spec_example_case_is_ungroupable_with_these_tables() -> None:
    # SPEC §14's example: I21.000 is in the 医保版 2.0 dictionary and on the CC/exclusion tables, but on no MDC
    # list; 36.0600 is a valid OR procedure on no MDCA list. docs/drg.md, simplification 9.
    result = group(case("I21.000", "E11.900", procedures=["36.0600"], age_years=67), tables())
    assert result.drg == UNGROUPABLE
    assert "I21.000 is on no MDC's list" in result.reason
    assert result.ungroupable is Ungroupable.NO_MDC
    # With I21.001 (on the MDCF list) the stay is grouped, but 36.0600 is on no ADRG list (FM1 lists 36.0601 and
    # 36.0602): without ambiguous groups it falls to the medical FR1.
    assert group(case("I21.001", "E11.900", procedures=["36.0600"], age_years=67), tables()).drg == "FR19"
