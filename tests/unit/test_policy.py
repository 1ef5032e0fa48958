"""An insured region's benefits policy, parsed and validated (SPEC §5.1): `clearing/policy.py`."""

from __future__ import annotations

from datetime import date

import pytest

from conftest import policy, policy_toml

from clearing.errors import InvalidField, PreconditionFailed
from clearing.policy import (
    AssistanceRule, AssistanceTier, Band, Critical, CriticalBand, FilingStatus, Poverty, PolicyBook, Scheme,
    parse_policy,
)

# SPEC §5.1, verbatim (with its comments).
SPEC_EXAMPLE = '''
region = "430100"
name = "长沙市"
effective_from = "2026-01-01"

[schemes.employee]                 # 职工医保; also [schemes.resident] 城乡居民医保
annual_cap_fen = 40000000           # 统筹基金年度最高支付限额 (0 = no cap)
annual_deductible_cap_fen = 0       # cap on deductibles summed over the year (0 = none)
retired_bonus_bp = 500              # added to the ratio for retired members
  [schemes.employee.deductible_fen] # 起付线 per stay, by hospital level 1/2/3
  "1" = 30000
  "2" = 60000
  "3" = 120000
  [[schemes.employee.bands]]        # 分段比例: ratio by year-to-date eligible amount
  upto_fen = 5000000                # band ends here (omit on the last band)
  ratio_bp = { "1" = 9000, "2" = 8500, "3" = 8000 }
  [[schemes.employee.bands]]
  ratio_bp = { "1" = 9500, "2" = 9000, "3" = 8500 }
  [schemes.employee.critical]       # 大病保险
  threshold_fen = 1300000           # 起付线 on year-to-date in-scope personal burden
  annual_cap_fen = 40000000
  bands = [ { upto_fen = 10000000, ratio_bp = 6000 }, { ratio_bp = 7000 } ]

[filing]                            # ratio cut in bp by filing status (异地备案)
resident = 0                        # 异地长期居住人员 (filed)
referral = 0                        # 转诊转院 (filed)
temporary = 1000                    # 临时外出就医 (filed); also unfiled emergencies
unfiled = 2000                      # no filing

[poverty]                           # 一站式 for poverty-registered members
ratio_bonus_bp = 1000               # +10 points on the basic ratio
critical_threshold_bp = 5000        # 大病 threshold × 50 %

[assistance.tekun]                  # 医疗救助 tiers: tekun 特困, dibao 低保, dishouru 低收入
deductible_fen = 0
ratio_bp = 10000
annual_cap_fen = 5000000
'''


def test_spec_example_parses() -> None:
    parsed = parse_policy(SPEC_EXAMPLE)
    assert parsed.region == "430100"
    assert parsed.name == "长沙市"
    assert parsed.effective_from == date(2026, 1, 1)
    assert list(parsed.schemes) == [Scheme.EMPLOYEE]
    employee = parsed.schemes[Scheme.EMPLOYEE]
    assert employee.annual_cap_fen == 40_000_000
    assert employee.annual_deductible_cap_fen == 0
    assert employee.retired_bonus_bp == 500
    assert employee.deductible_fen == {1: 30_000, 2: 60_000, 3: 120_000}
    assert employee.bands == (Band(5_000_000, {1: 9000, 2: 8500, 3: 8000}), Band(None, {1: 9500, 2: 9000, 3: 8500}))
    assert employee.critical == Critical(1_300_000, 40_000_000, (CriticalBand(10_000_000, 6000), CriticalBand(None, 7000)))
    assert parsed.filing_cut_bp == {FilingStatus.RESIDENT: 0, FilingStatus.REFERRAL: 0,
                                    FilingStatus.TEMPORARY: 1000, FilingStatus.UNFILED: 2000}
    assert parsed.poverty == Poverty(1000, 5000)
    assert parsed.assistance == {AssistanceTier.TEKUN: AssistanceRule(0, 10000, 5_000_000)}


def test_optional_sections_absent_mean_not_applicable() -> None:
    parsed = policy()
    assert parsed.filing_cut_bp is None
    assert parsed.poverty is None
    assert parsed.assistance is None
    assert parsed.schemes[Scheme.EMPLOYEE].critical is None


def test_optional_scheme_keys_default_to_zero() -> None:
    text = '''
region = "430100"
name = "x"
effective_from = 2026-01-01
[schemes.resident]
deductible_fen = { "1" = 1, "2" = 2, "3" = 3 }
bands = [ { ratio_bp = { "1" = 6000, "2" = 6000, "3" = 6000 } } ]
'''
    parsed = parse_policy(text)
    assert parsed.effective_from == date(2026, 1, 1)  # a TOML date literal works as well as a string
    resident = parsed.schemes[Scheme.RESIDENT]
    assert (resident.annual_cap_fen, resident.annual_deductible_cap_fen, resident.retired_bonus_bp) == (0, 0, 0)


def test_filing_status_left_out_takes_no_cut() -> None:
    parsed = policy(filing={"unfiled": 2000})
    assert parsed.filing_cut_bp == {FilingStatus.RESIDENT: 0, FilingStatus.REFERRAL: 0,
                                    FilingStatus.TEMPORARY: 0, FilingStatus.UNFILED: 2000}


def test_both_schemes_and_every_tier() -> None:
    text = policy_toml(assistance={
        "tekun": {"deductible_fen": 0, "ratio_bp": 10000, "annual_cap_fen": 5_000_000},
        "dibao": {"deductible_fen": 100_000, "ratio_bp": 7000, "annual_cap_fen": 3_000_000},
        "dishouru": {"ratio_bp": 5000},
    }) + policy_toml(scheme="resident", deductible_fen=50_000).split("\n\n", 1)[1]
    parsed = parse_policy(text)
    assert set(parsed.schemes) == {Scheme.EMPLOYEE, Scheme.RESIDENT}
    assert parsed.schemes[Scheme.RESIDENT].deductible_fen == {1: 50_000, 2: 50_000, 3: 50_000}
    assert parsed.assistance == {
        AssistanceTier.TEKUN: AssistanceRule(0, 10000, 5_000_000),
        AssistanceTier.DIBAO: AssistanceRule(100_000, 7000, 3_000_000),
        AssistanceTier.DISHOURU: AssistanceRule(0, 5000, 0),  # absent deductible and cap are 0
    }


def error_field(text: str) -> str:
    with pytest.raises(InvalidField) as caught:
        parse_policy(text)
    return caught.value.field


def spec_with(old: str, new: str) -> str:
    assert old in SPEC_EXAMPLE
    return SPEC_EXAMPLE.replace(old, new, 1)


@pytest.mark.parametrize(("old", "new", "field"), [
    # unknown keys, at every level
    ('name = "长沙市"', 'name = "长沙市"\nmayor = "x"', "mayor"),
    ("retired_bonus_bp = 500", "retired_bonus_bp = 500\nretire_bonus = 1", "schemes.employee.retire_bonus"),
    ('  "3" = 120000', '  "3" = 120000\n  "4" = 1', "schemes.employee.deductible_fen.4"),
    ("  upto_fen = 5000000 ", "  upto_fen = 5000000\n  up_to = 1 ", "schemes.employee.bands[0].up_to"),
    ("  threshold_fen = 1300000", "  threshold_fen = 1300000\n  ratio = 1", "schemes.employee.critical.ratio"),
    ("unfiled = 2000", "unfiled = 2000\nvip = 0", "filing.vip"),
    ("critical_threshold_bp = 5000", "critical_threshold_bp = 5000\nbonus = 1", "poverty.bonus"),
    ("annual_cap_fen = 5000000", "annual_cap_fen = 5000000\nper_stay = 1", "assistance.tekun.per_stay"),
    ("[assistance.tekun]", "[assistance.wubao]\nratio_bp = 1\n[assistance.tekun]", "assistance.wubao"),
    ("[schemes.employee] ", "[schemes.retired]\n[schemes.employee] ", "schemes.retired"),
    # negative amounts
    ("annual_cap_fen = 40000000           #", "annual_cap_fen = -1 #", "schemes.employee.annual_cap_fen"),
    ("annual_deductible_cap_fen = 0", "annual_deductible_cap_fen = -5", "schemes.employee.annual_deductible_cap_fen"),
    ('  "2" = 60000', '  "2" = -60000', "schemes.employee.deductible_fen.2"),
    ("  threshold_fen = 1300000", "  threshold_fen = -1", "schemes.employee.critical.threshold_fen"),
    ("deductible_fen = 0\n", "deductible_fen = -1\n", "assistance.tekun.deductible_fen"),
    ("retired_bonus_bp = 500", "retired_bonus_bp = -500", "schemes.employee.retired_bonus_bp"),
    # ratios above 10000 bp (100 %)
    ('ratio_bp = { "1" = 9000, "2" = 8500, "3" = 8000 }', 'ratio_bp = { "1" = 9000, "2" = 8500, "3" = 10001 }',
     "schemes.employee.bands[0].ratio_bp.3"),
    ("{ ratio_bp = 7000 }", "{ ratio_bp = 70000 }", "schemes.employee.critical.bands[1].ratio_bp"),
    ("temporary = 1000", "temporary = 10001", "filing.temporary"),
    ("ratio_bonus_bp = 1000", "ratio_bonus_bp = 10001", "poverty.ratio_bonus_bp"),
    ("ratio_bp = 10000\n", "ratio_bp = 10001\n", "assistance.tekun.ratio_bp"),
    # bands: order, missing upto_fen, open last band
    ("  upto_fen = 5000000 ", "  upto_fen = 0 ", "schemes.employee.bands[0].upto_fen"),  # not above 0
    ('  [[schemes.employee.bands]]\n  ratio_bp = { "1" = 9500',
     '  [[schemes.employee.bands]]\n  upto_fen = 5000000\n  ratio_bp = { "1" = 9000, "2" = 9000, "3" = 9000 }\n'
     '  [[schemes.employee.bands]]\n  ratio_bp = { "1" = 9500', "schemes.employee.bands[1].upto_fen"),  # equal
    ('  [[schemes.employee.bands]]\n  ratio_bp = { "1" = 9500',
     '  [[schemes.employee.bands]]\n  upto_fen = 4000000\n  ratio_bp = { "1" = 9000, "2" = 9000, "3" = 9000 }\n'
     '  [[schemes.employee.bands]]\n  ratio_bp = { "1" = 9500', "schemes.employee.bands[1].upto_fen"),  # lower
    ("  upto_fen = 5000000 ", "", "schemes.employee.bands[0].upto_fen"),  # missing on a non-last band
    ('  ratio_bp = { "1" = 9500, "2" = 9000, "3" = 8500 }',
     '  upto_fen = 9000000\n  ratio_bp = { "1" = 9500, "2" = 9000, "3" = 8500 }',
     "schemes.employee.bands[1].upto_fen"),  # the last band must be open
    ("{ upto_fen = 10000000, ratio_bp = 6000 }, { ratio_bp = 7000 }",
     "{ upto_fen = 10000000, ratio_bp = 6000 }, { upto_fen = 9000000, ratio_bp = 6500 }, { ratio_bp = 7000 }",
     "schemes.employee.critical.bands[1].upto_fen"),
    ("{ upto_fen = 10000000, ratio_bp = 6000 }, { ratio_bp = 7000 }", "{ ratio_bp = 6000 }, { ratio_bp = 7000 }",
     "schemes.employee.critical.bands[0].upto_fen"),
    ("bands = [ { upto_fen", "bands = [ ]\nold = [ { upto_fen", "schemes.employee.critical.old"),
    # required keys
    ('  "2" = 60000\n', "", "schemes.employee.deductible_fen.2"),  # a missing hospital level
    ('ratio_bp = { "1" = 9000, "2" = 8500, "3" = 8000 }', 'ratio_bp = { "1" = 9000, "3" = 8000 }',
     "schemes.employee.bands[0].ratio_bp.2"),
    ('region = "430100"\n', "", "region"),
    ('name = "长沙市"\n', "", "name"),
    ('effective_from = "2026-01-01"\n', "", "effective_from"),
    ("  threshold_fen = 1300000 ", "", "schemes.employee.critical.threshold_fen"),
    ("ratio_bp = 10000\n", "", "assistance.tekun.ratio_bp"),
    # malformed values
    ('region = "430100"', 'region = "4301"', "region"),
    ('name = "长沙市"', 'name = ""', "name"),
    ('effective_from = "2026-01-01"', 'effective_from = "2026-02-30"', "effective_from"),
    ("annual_cap_fen = 40000000           #", "annual_cap_fen = 400000.00 #", "schemes.employee.annual_cap_fen"),
    ("annual_cap_fen = 40000000           #", 'annual_cap_fen = "40000000" #', "schemes.employee.annual_cap_fen"),
    ("annual_cap_fen = 40000000           #", "annual_cap_fen = true #", "schemes.employee.annual_cap_fen"),
    ("temporary = 1000", "temporary = 10.5", "filing.temporary"),
])
def test_errors_name_the_exact_key(old: str, new: str, field: str) -> None:
    assert error_field(spec_with(old, new)) == field


def test_a_policy_without_schemes_is_refused() -> None:
    text = 'region = "430100"\nname = "x"\neffective_from = "2026-01-01"\n[schemes]\n'
    assert error_field(text) == "schemes"


def test_invalid_toml_is_refused() -> None:
    assert error_field("region = \n") == "policy"


# --- versions ---------------------------------------------------------------------------------

@pytest.fixture
def book() -> PolicyBook:
    return PolicyBook.of([
        policy(effective_from="2026-07-01", deductible_fen=90_000),
        policy(effective_from="2025-01-01", deductible_fen=70_000),
        policy(effective_from="2026-01-01", deductible_fen=80_000),
    ])


@pytest.mark.parametrize(("day", "deductible_fen"), [
    (date(2025, 1, 1), 70_000),  # effective_from is the first day in force
    (date(2025, 12, 31), 70_000),
    (date(2026, 1, 1), 80_000),
    (date(2026, 6, 30), 80_000),
    (date(2026, 7, 1), 90_000),
    (date(2030, 1, 1), 90_000),
])
def test_policy_book_picks_the_version_in_force(book: PolicyBook, day: date, deductible_fen: int) -> None:
    assert book.on(day).schemes[Scheme.EMPLOYEE].deductible_fen[3] == deductible_fen


def test_a_day_before_the_first_version_is_a_precondition_failure(book: PolicyBook) -> None:
    with pytest.raises(PreconditionFailed):
        book.on(date(2024, 12, 31))


def test_policy_book_refuses_mixed_regions_and_duplicate_dates() -> None:
    with pytest.raises(InvalidField) as caught:
        PolicyBook.of([policy(), policy(region="440100", effective_from="2027-01-01")])
    assert caught.value.field == "region"
    with pytest.raises(InvalidField) as caught:
        PolicyBook.of([policy(), policy()])
    assert caught.value.field == "effective_from"
    with pytest.raises(InvalidField):
        PolicyBook.of([])
