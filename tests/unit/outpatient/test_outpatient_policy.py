"""The `[outpatient_special.<disease>]` policy sections (SPEC §13.1, §13.4): parsed values, defaults, and every
error naming its key in the style of the rest of the policy."""

from __future__ import annotations

import pytest
from opd_cases import CANCER, DIABETES, DIALYSIS, policy, policy_text

from clearing.errors import InvalidField
from clearing.policy import Disease, SpecialDiseasePolicy, parse_policy


def test_sections_parse_with_their_defaults() -> None:
    parsed = policy(DIABETES, DIALYSIS, CANCER)
    assert parsed.outpatient_special == {
        Disease.DIABETES: SpecialDiseasePolicy(("E10", "E11", "E12", "E13", "E14"), 20_000, {1: 7000, 2: 6500, 3: 6000},
                                               300_000, None, False),
        # deductible_fen defaults to 0, shares_inpatient_cap to false; prefixes lose their dots
        Disease.DIALYSIS: SpecialDiseasePolicy(("N185", "N186", "Z49", "Z992"), 0, {1: 9000, 2: 9000, 3: 9000},
                                               None, 600_000, False),
        Disease.CANCER_THERAPY: SpecialDiseasePolicy(("C",), 0, {1: 8000, 2: 8000, 3: 8000}, 0, None, False),
    }


def test_a_policy_without_sections_covers_no_disease() -> None:
    assert policy().outpatient_special == {}


def test_every_disease_key_is_accepted_and_prefixes_are_upper_cased() -> None:
    sections = "".join(
        f'\n[outpatient_special.{name}]\nicd = ["z94.0"]\nratio_bp = {{ "1" = 1, "2" = 2, "3" = 3 }}\n'
        f"monthly_limit_fen = 5\nshares_inpatient_cap = true\n"
        for name in ("hypertension", "diabetes", "cancer_therapy", "dialysis", "transplant"))
    parsed = policy(sections)
    assert set(parsed.outpatient_special) == set(Disease)
    assert all(section.icd_prefixes == ("Z940",) and section.shares_inpatient_cap
               for section in parsed.outpatient_special.values())


def error_field(text: str) -> str:
    with pytest.raises(InvalidField) as caught:
        parse_policy(text)
    return caught.value.field


def diabetes_with(old: str, new: str) -> str:
    assert old in DIABETES
    return policy_text(DIABETES.replace(old, new, 1))


@pytest.mark.parametrize(("old", "new", "field"), [
    # unknown disease key or field
    ("[outpatient_special.diabetes]", "[outpatient_special.asthma]", "outpatient_special.asthma"),
    ("annual_limit_fen = 300000", "annual_limit_fen = 300000\nper_visit_fen = 1",
     "outpatient_special.diabetes.per_visit_fen"),
    ('ratio_bp = { "1" = 7000,', 'ratio_bp = { "4" = 1, "1" = 7000,', "outpatient_special.diabetes.ratio_bp.4"),
    # required keys
    ('icd = ["E10", "E11", "E12", "E13", "E14"]\n', "", "outpatient_special.diabetes.icd"),
    ('ratio_bp = { "1" = 7000, "2" = 6500, "3" = 6000 }\n', "", "outpatient_special.diabetes.ratio_bp"),
    ('ratio_bp = { "1" = 7000, "2" = 6500, "3" = 6000 }', 'ratio_bp = { "1" = 7000, "3" = 6000 }',
     "outpatient_special.diabetes.ratio_bp.2"),
    # exactly one of the two limits
    ("annual_limit_fen = 300000", "", "outpatient_special.diabetes.annual_limit_fen"),
    ("annual_limit_fen = 300000", "annual_limit_fen = 300000\nmonthly_limit_fen = 1",
     "outpatient_special.diabetes.monthly_limit_fen"),
    # icd: non-empty, a list of prefixes
    ('icd = ["E10", "E11", "E12", "E13", "E14"]', "icd = []", "outpatient_special.diabetes.icd"),
    ('icd = ["E10", "E11", "E12", "E13", "E14"]', 'icd = "E11"', "outpatient_special.diabetes.icd"),
    ('icd = ["E10", "E11", "E12", "E13", "E14"]', 'icd = ["E10", "11"]', "outpatient_special.diabetes.icd[1]"),
    ('icd = ["E10", "E11", "E12", "E13", "E14"]', 'icd = ["E10", 11]', "outpatient_special.diabetes.icd[1]"),
    ('icd = ["E10", "E11", "E12", "E13", "E14"]', 'icd = ["E1 1"]', "outpatient_special.diabetes.icd[0]"),
    # amounts and ratios
    ("deductible_fen = 20000", "deductible_fen = -1", "outpatient_special.diabetes.deductible_fen"),
    ("annual_limit_fen = 300000", "annual_limit_fen = -300000", "outpatient_special.diabetes.annual_limit_fen"),
    ("annual_limit_fen = 300000", "annual_limit_fen = 3000.00", "outpatient_special.diabetes.annual_limit_fen"),
    ('"3" = 6000', '"3" = 10001', "outpatient_special.diabetes.ratio_bp.3"),
    ("annual_limit_fen = 300000", "annual_limit_fen = 300000\nshares_inpatient_cap = 1",
     "outpatient_special.diabetes.shares_inpatient_cap"),
])
def test_errors_name_the_exact_key(old: str, new: str, field: str) -> None:
    assert error_field(diabetes_with(old, new)) == field


def test_a_section_that_is_not_a_table_is_refused() -> None:
    top_level = policy_text().replace('effective_from = "2026-01-01"\n', 'effective_from = "2026-01-01"\n'
                                                                    "outpatient_special = 1\n", 1)
    assert error_field(top_level) == "outpatient_special"
    assert error_field(policy_text("\n[outpatient_special]\ndiabetes = 1\n")) == "outpatient_special.diabetes"
