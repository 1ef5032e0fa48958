"""`clearing-admin quote` on outpatient special-disease visits (SPEC §13.3, §13.4), run as the real console script.

A bill with `"kind": "outpatient_special"` is a visit; without `kind` it is a stay, quoted exactly as before
(tests/unit/test_cli_offline.py keeps those cases unchanged). Numbers are worked out by hand in the comments.
Every bad input: exit code 2, nothing on stdout, one stderr line naming the field.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from in_process_cli import run_cli


CATALOG = """\
local_code,national_code,relation,kind,name,grade,selfpay_bp,price_cap_fen,restriction,valid_from,valid_to
X0001,XA10BAA0001,equivalent,drug,二甲双胍,A,0,,"限糖尿病 icd:E11",2025-01-01,
X0002,001102000010000,equivalent,service,普通门诊诊查费,B,1000,,,2025-01-01,
X0003,C020101052,equivalent,consumable,鞘组,C,0,,,2025-01-01,
X0004,XL01XEG0001,equivalent,drug,吉非替尼,A,0,,"icd:C34",2025-01-01,
S0001,003110000010000,equivalent,service,血液透析,A,0,,"icd:N18",2025-01-01,
"""

# Employee scheme only (a resident member is refused); diabetes 起付线 200.00 a year, 60 % at level 3, 3,000.00 a
# year; dialysis 90 %, 6,000.00 a month, sharing the employee cap of 400,000.00. No hypertension section.
POLICY = """\
region = "430100"
name = "长沙市"
effective_from = "2026-01-01"

[schemes.employee]
annual_cap_fen = 40000000
retired_bonus_bp = 500
deductible_fen = { "1" = 30000, "2" = 60000, "3" = 120000 }
  [[schemes.employee.bands]]
  ratio_bp = { "1" = 9000, "2" = 8500, "3" = 8000 }

[filing]
resident = 0
referral = 0
temporary = 1000
unfiled = 2000

[outpatient_special.diabetes]
icd = ["E10", "E11", "E12", "E13", "E14"]
deductible_fen = 20000
ratio_bp = { "1" = 7000, "2" = 6500, "3" = 6000 }
annual_limit_fen = 300000

[outpatient_special.dialysis]
icd = ["N18.5", "N18.6", "Z49", "Z99.2"]
ratio_bp = { "1" = 9000, "2" = 9000, "3" = 9000 }
monthly_limit_fen = 600000
shares_inpatient_cap = true
"""

YTD = {"deductible_fen": 120_000, "eligible_fen": 880_000, "hifp_fen": 704_000, "burden_fen": 296_000,
       "hifmi_fen": 0, "assist_base_fen": 296_000, "maf_fen": 0, "admissions": 1}
MEMBER: dict[str, Any] = {
    "region": "430100", "member_id": "M001", "scheme": "employee", "retired": False, "poverty": False,
    "assistance": None, "filing": "resident", "ytd": YTD,
    "special_diseases": [{"disease": "diabetes", "valid_from": "2026-01-01", "valid_to": None},
                         {"disease": "dialysis", "valid_from": "2025-06-01", "valid_to": "2026-12-31"},
                         {"disease": "hypertension", "valid_from": "2025-06-01"}],
    "ytd_special": {"diabetes": {"deductible_fen": 5_000, "paid_fen": 0, "month": "2026-02", "month_paid_fen": 0}},
}
# 2,000.00 of 二甲双胍 (in scope: icd:E11 is met by diabetes), a 100.00 grade-B fee (10 % = 10.00 先行自付),
# a 50.00 grade-C item and 60.00 of a drug restricted to C34 (not met): total 2,210.00, in scope 2,090.00.
VISIT: dict[str, Any] = {
    "kind": "outpatient_special", "disease": "diabetes", "region": "440100",
    "hospital": {"code": "H44010000001", "level": 3}, "visit_on": "2026-03-05", "diagnoses": ["C34.1"],
    "lines": [
        {"line_id": "1", "code": "X0001", "qty": "10", "unit_price_fen": 20_000, "amount_fen": 200_000},
        {"line_id": "2", "code": "X0002", "qty": "1", "unit_price_fen": 10_000, "amount_fen": 10_000,
         "service_date": "2026-03-05"},
        {"line_id": "3", "code": "X0003", "qty": "1", "unit_price_fen": 5_000, "amount_fen": 5_000},
        {"line_id": "4", "code": "X0004", "qty": "2", "unit_price_fen": 3_000, "amount_fen": 6_000},
    ],
}
MONEY_KEYS = {"total_fen", "fulamt_ownpay_fen", "overlmt_selfpay_fen", "preselfpay_fen", "inscp_fen", "deductible_fen",
              "hifp_fen", "hifmi_fen", "maf_fen", "fund_pay_fen", "psn_pay_fen"}


def run(tmp_path: Path, *, policy: str = POLICY, member: Any = MEMBER, bill: Any = VISIT) -> subprocess.CompletedProcess:
    files = {"C.csv": CATALOG, "P.toml": policy, "M.json": json.dumps(member, ensure_ascii=False),
             "B.json": json.dumps(bill, ensure_ascii=False)}
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return run_cli("quote", "--catalog", tmp_path / "C.csv", "--policy", tmp_path / "P.toml",
                   "--member", tmp_path / "M.json", "--bill", tmp_path / "B.json", cwd=tmp_path)


def quoted(tmp_path: Path, **inputs: Any) -> dict[str, Any]:
    result = run(tmp_path, **inputs)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


def test_a_diabetes_visit_is_quoted_per_the_contract(tmp_path: Path) -> None:
    out = quoted(tmp_path)
    assert MONEY_KEYS <= out.keys()
    assert {"lines", "ytd_after", "ytd_special_after", "explanation"} <= out.keys()
    assert (out["kind"], out["disease"]) == ("outpatient_special", "diabetes")
    # In scope 2,000.00 + 90.00 = 2,090.00; 10.00 先行自付; 50.00 + 60.00 = 110.00 全自费.
    assert (out["total_fen"], out["inscp_fen"], out["preselfpay_fen"], out["fulamt_ownpay_fen"],
            out["overlmt_selfpay_fen"]) == (221_000, 209_000, 1_000, 11_000, 0)
    assert [line["reason"] for line in out["lines"]] == [None, None, "GRADE_C", "RESTRICTED"]  # diagnoses ignored
    assert {line["service_date"] for line in out["lines"]} == {"2026-03-05"}
    # 150.00 of the 200.00 起付线 left: eligible 1,940.00 × 60 % = 1,164.00 (the 3,000.00 limit not reached).
    assert (out["deductible_fen"], out["eligible_fen"]) == (15_000, 194_000)
    assert (out["hifp_fen"], out["hifmi_fen"], out["maf_fen"], out["fund_pay_fen"]) == (116_400, 0, 0, 116_400)
    assert out["psn_pay_fen"] == 221_000 - 116_400
    assert out["ytd_after"] == YTD  # no shared cap, and a visit is no admission
    # February's month fields give way to March's.
    assert out["ytd_special_after"] == {"deductible_fen": 20_000, "paid_fen": 116_400, "month": "2026-03",
                                        "month_paid_fen": 116_400}
    texts = {step["step"]: step for step in out["explanation"]}
    assert texts["special_limit_left"]["zh"] == "本次结算后糖尿病年度支付限额剩余 1,836.00 元"
    assert texts["special_limit_left"]["en"] == "after this visit 1,836.00 of the diabetes annual limit is left"
    assert all(step["zh"] and step["en"] for step in out["explanation"])


def test_a_dialysis_visit_shares_the_inpatient_cap(tmp_path: Path) -> None:
    # 500.00 at 90 % = 450.00, within the 6,000.00 定额; the employee cap of 400,000.00 has 100.00 left after
    # 399,900.00 of stays: 100.00 is paid, and the inpatient hifp accumulator reaches the cap.
    member = {**MEMBER, "ytd": {**YTD, "hifp_fen": 39_990_000}, "ytd_special": {}}
    bill = {**VISIT, "disease": "dialysis", "lines": [
        {"line_id": "1", "code": "S0001", "qty": "1", "unit_price_fen": 50_000, "amount_fen": 50_000}]}
    out = quoted(tmp_path, member=member, bill=bill)
    assert (out["inscp_fen"], out["fund_pay_fen"], out["psn_pay_fen"]) == (50_000, 10_000, 40_000)
    assert out["ytd_after"] == {**YTD, "hifp_fen": 40_000_000}  # admissions still 1
    assert out["ytd_special_after"] == {"deductible_fen": 0, "paid_fen": 10_000, "month": "2026-03",
                                        "month_paid_fen": 10_000}


def test_a_stay_without_kind_is_quoted_as_before_whatever_the_member_carries(tmp_path: Path) -> None:
    # 10,000.00 of 二甲双胍 with an E11 diagnosis: 1,200.00 起付线, 80 % of 8,800.00 = 7,040.00.
    stay = {"region": "440100", "hospital": {"code": "H44010000001", "level": 3}, "admitted_on": "2026-03-01",
            "discharged_on": "2026-03-10", "emergency": False, "diagnoses": ["E11.9"],
            "lines": [{"line_id": "1", "code": "X0001", "qty": "50", "unit_price_fen": 20_000,
                       "amount_fen": 1_000_000, "service_date": "2026-03-02"}]}
    plain = {key: value for key, value in MEMBER.items() if key not in ("special_diseases", "ytd_special")}
    out = quoted(tmp_path, member={**plain, "ytd": {}}, bill=stay)
    assert (out["deductible_fen"], out["hifp_fen"], out["psn_pay_fen"]) == (120_000, 704_000, 296_000)
    assert "kind" not in out and "ytd_special_after" not in out
    assert out["ytd_after"]["admissions"] == 1
    assert quoted(tmp_path, member={**MEMBER, "ytd": {}}, bill=stay) == out


def assert_operator_error(result: subprocess.CompletedProcess, *named: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    for text in named:
        assert text in lines[0], lines[0]


NO_RESIDENT = {**MEMBER, "scheme": "resident"}


@pytest.mark.parametrize(("inputs", "named"), [
    # SPEC §13.4, every exit-2 case
    ({"member": {**MEMBER, "region": "440100"}}, ("member: member.region",)),
    ({"bill": {**VISIT, "visit_on": "2025-12-31", "lines": VISIT["lines"][:1]}}, ("bill: visit_on", "effective_from")),
    ({"member": NO_RESIDENT}, ("member: member.scheme",)),
    ({"bill": {**VISIT, "disease": "hypertension"}}, ("policy: outpatient_special.hypertension",)),
    ({"member": {**MEMBER, "special_diseases": []}}, ("member: member.special_diseases", "diabetes")),
    ({"member": {**MEMBER, "special_diseases": [{"disease": "diabetes", "valid_from": "2026-03-06"}]}},
     ("member: member.special_diseases",)),
    ({"bill": {**VISIT, "admitted_on": "2026-03-05"}}, ("bill: admitted_on",)),
    ({"bill": {**VISIT, "discharged_on": "2026-03-05"}}, ("bill: discharged_on",)),
    ({"bill": {**VISIT, "kind": "outpatient"}}, ("bill: kind",)),
    # malformed input around them
    ({"bill": {**VISIT, "disease": "asthma"}}, ("bill: disease",)),
    ({"bill": {**VISIT, "lines": [{**VISIT["lines"][0], "service_date": "2026-03-04"}]}},
     ("bill: lines[0].service_date",)),
    ({"member": {**MEMBER, "ytd_special": {"diabetes": {"month": "March"}}}},
     ("member: member.ytd_special.diabetes.month",)),
    ({"member": {**MEMBER, "ytd_special": {"diabetes": {"month": "2026-04", "month_paid_fen": 1}}}},
     ("member: member.ytd_special.diabetes.month", "after the visit's month")),
    ({"policy": POLICY.replace('icd = ["E10", "E11", "E12", "E13", "E14"]', "icd = []")},
     ("policy: outpatient_special.diabetes.icd",)),
    ({"policy": POLICY.replace("monthly_limit_fen = 600000", "")},
     ("policy: outpatient_special.dialysis.annual_limit_fen", "exactly one of")),
])
def test_bad_visits_exit_2_naming_the_field(tmp_path: Path, inputs: dict[str, Any], named: tuple[str, ...]) -> None:
    assert_operator_error(run(tmp_path, **inputs), *named)


def test_policy_validate_lists_the_diseases_a_region_covers(tmp_path: Path) -> None:
    (tmp_path / "P.toml").write_text(POLICY, encoding="utf-8")
    result = run_cli("policy", "validate", tmp_path / "P.toml")
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 3}
    assert "3,000.00 a year" in rows["diabetes"] and "70% / 65% / 60%" in rows["diabetes"]
    assert "6,000.00 a month" in rows["dialysis"] and rows["dialysis"].rstrip(" │").endswith("yes")
    assert "hypertension" not in rows
