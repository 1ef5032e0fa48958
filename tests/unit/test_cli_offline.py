"""The offline commands of `clearing-admin` (SPEC §5.3 quote, §5.1 policy validate, §4.1 catalog validate/diff),
run through the console script's `main()` in this process (tests/in_process_cli.py) on small files in
`tmp_path`.

Numbers are worked out by hand in the comments. Every bad input must give exit code 2, nothing on stdout
and exactly one stderr line naming the bad field.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from in_process_cli import run_cli

HEADER = "local_code,national_code,relation,kind,name,grade,selfpay_bp,price_cap_fen,restriction,valid_from,valid_to"
CATALOG_ROWS = [
    "X0001,XA01AAA0001,equivalent,drug,复方硼砂,A,0,,,2025-01-01,",  # row 2
    "X0002,001102000010000,equivalent,service,普通门诊诊查费,B,2500,,,2025-01-01,",  # row 3
    "X0003,C020101052,equivalent,consumable,鞘组,C,0,,,2025-01-01,",  # row 4
    "X0004,,,drug,未对照药品,A,0,,,2025-01-01,",  # row 5: unmapped
    'X0005,XL01XX0001,narrower,drug,靶向药,B,1000,50000,"icd:C34,C78",2025-01-01,',  # row 6: restricted
    "X0006,XB01AA0001,equivalent,drug,肝素,B,1000,,,2025-01-01,2025-12-31",  # row 7
    "X0006,XB01AA0001,equivalent,drug,肝素,A,0,,,2026-01-01,",  # row 8: X0006 has two versions
]

# Employee: level-3 deductible 1,200.00 yuan, flat 80 % over three bands (only the order matters).
# Resident: the SPEC §5.2 worked check, deductible 1,200.00 yuan, flat 65 %. No 大病, no assistance.
POLICY = """\
region = "430100"
name = "长沙市"
effective_from = "2026-01-01"

[schemes.employee]
annual_cap_fen = 40000000
retired_bonus_bp = 500
  [schemes.employee.deductible_fen]
  "1" = 30000
  "2" = 60000
  "3" = 120000
  [[schemes.employee.bands]]
  upto_fen = 5000000
  ratio_bp = { "1" = 9000, "2" = 8500, "3" = 8000 }
  [[schemes.employee.bands]]
  upto_fen = 10000000
  ratio_bp = { "1" = 9000, "2" = 8500, "3" = 8000 }
  [[schemes.employee.bands]]
  ratio_bp = { "1" = 9000, "2" = 8500, "3" = 8000 }

[schemes.resident]
  [schemes.resident.deductible_fen]
  "1" = 30000
  "2" = 60000
  "3" = 120000
  [[schemes.resident.bands]]
  ratio_bp = { "1" = 6500, "2" = 6500, "3" = 6500 }

[filing]
resident = 0
referral = 0
temporary = 1000
unfiled = 2000

[assistance.dibao]
deductible_fen = 0
ratio_bp = 7000
annual_cap_fen = 5000000
"""

YTD_ZERO = {"deductible_fen": 0, "eligible_fen": 0, "hifp_fen": 0, "burden_fen": 0, "hifmi_fen": 0,
            "assist_base_fen": 0, "maf_fen": 0, "admissions": 0}
MEMBER = {"region": "430100", "member_id": "M001", "scheme": "employee", "retired": False, "poverty": False,
          "assistance": None, "filing": "resident", "ytd": YTD_ZERO}
# One grade-A line: 2 × 5,000.00 = 10,000.00 yuan at a level-3 hospital.
BILL = {"region": "440100", "hospital": {"code": "H44010000001", "level": 3},
        "admitted_on": "2026-03-01", "discharged_on": "2026-03-10", "emergency": False, "diagnoses": ["C34.1"],
        "lines": [{"line_id": "1", "code": "X0001", "qty": "2", "unit_price_fen": 500_000,
                   "amount_fen": 1_000_000, "service_date": "2026-03-02"}]}

SPEC_KEYS = {"total_fen", "fulamt_ownpay_fen", "overlmt_selfpay_fen", "preselfpay_fen", "inscp_fen", "deductible_fen",
             "hifp_fen", "hifmi_fen", "maf_fen", "fund_pay_fen", "psn_pay_fen", "lines", "ytd_after", "explanation"}
LINE_KEYS = {"fulamt_ownpay_fen", "overlmt_selfpay_fen", "preselfpay_fen", "inscp_fen", "reason"}


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd)


def catalog_text(rows: list[str] = CATALOG_ROWS) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def write_inputs(tmp_path: Path, catalog: str | None = None, policy: str = POLICY, member: object = MEMBER,
                 bill: object = BILL) -> list[str | Path]:
    """Write the four quote inputs (a str member/bill is written verbatim) and return the quote arguments."""
    files = {"C.csv": "\ufeff" + (catalog or catalog_text()), "P.toml": policy,  # the catalogue carries a BOM
             "M.json": member if isinstance(member, str) else json.dumps(member, ensure_ascii=False),
             "B.json": bill if isinstance(bill, str) else json.dumps(bill, ensure_ascii=False)}
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return ["quote", "--catalog", tmp_path / "C.csv", "--policy", tmp_path / "P.toml",
            "--member", tmp_path / "M.json", "--bill", tmp_path / "B.json"]


def assert_operator_error(result: subprocess.CompletedProcess[str], *named: str) -> str:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for text in named:
        assert text in lines[0]
    return lines[0]


# ---- quote -----------------------------------------------------------------------------------------------


def test_quote_one_grade_a_line_level_3_flat_80(tmp_path: Path) -> None:
    args = write_inputs(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert sorted(tmp_path.rglob("*")) == before  # a quote persists nothing
    out = json.loads(result.stdout)
    assert SPEC_KEYS <= out.keys()
    assert out["ytd_after"].keys() == YTD_ZERO.keys()
    assert LINE_KEYS <= out["lines"][0].keys()
    # inscp 1,000,000 − deductible 120,000 = eligible 880,000; × 80 % = hifp 704,000; patient 296,000.
    assert out["total_fen"] == 1_000_000
    assert out["inscp_fen"] == 1_000_000
    assert out["fulamt_ownpay_fen"] == out["overlmt_selfpay_fen"] == out["preselfpay_fen"] == 0
    assert out["deductible_fen"] == 120_000
    assert out["hifp_fen"] == 704_000
    assert out["hifmi_fen"] == 0 and out["maf_fen"] == 0
    assert out["fund_pay_fen"] == 704_000
    assert out["psn_pay_fen"] == 296_000
    assert out["ytd_after"] == {**YTD_ZERO, "deductible_fen": 120_000, "eligible_fen": 880_000, "hifp_fen": 704_000,
                                "burden_fen": 296_000, "assist_base_fen": 296_000, "admissions": 1}
    assert out["lines"][0]["reason"] is None
    assert out["lines"][0]["inscp_fen"] == 1_000_000
    assert out["explanation"]
    assert all(step["zh"] and step["en"] for step in out["explanation"])
    assert "起付线" in result.stdout  # ensure_ascii=False: Chinese text is not escaped
    assert result.stdout == json.dumps(out, ensure_ascii=False, indent=2) + "\n"


def test_quote_with_the_stays_facts_prints_exactly_the_same(tmp_path: Path) -> None:
    """Procedures, sex, age and discharge status are accepted in B.json and never change the money (§5.3 output)."""
    (tmp_path / "plain").mkdir()
    (tmp_path / "facts").mkdir()
    plain = run(*write_inputs(tmp_path / "plain"), cwd=tmp_path)
    facts = {**BILL, "procedures": ["32.4100", "33.2400"], "sex": "F",
             "age_years": 0, "age_days": 40, "birth_weight_g": 2900, "discharge_status": "5"}
    with_facts = run(*write_inputs(tmp_path / "facts", bill=facts), cwd=tmp_path)
    assert plain.returncode == with_facts.returncode == 0, with_facts.stderr
    assert with_facts.stdout == plain.stdout


def test_quote_spec_worked_check_with_grade_b_and_c_lines(tmp_path: Path) -> None:
    # SPEC §5.2: total 70,000.00 of which 1,000.00 乙类先行自付 (25 % of a 4,000.00 grade-B line) and
    # 3,000.00 全自费 (grade C) → inscp 66,000.00, eligible 64,800.00, hifp 65 % = 42,120.00 yuan.
    lines = [
        {"line_id": "1", "code": "X0001", "qty": "1", "unit_price_fen": 6_300_000, "amount_fen": 6_300_000,
         "service_date": "2026-03-02"},
        {"line_id": "2", "code": "X0002", "qty": "0.5", "unit_price_fen": 800_000, "amount_fen": 400_000,
         "service_date": "2026-03-03"},
        {"line_id": "3", "code": "X0003", "qty": "3", "unit_price_fen": 100_000, "amount_fen": 300_000,
         "service_date": "2026-03-04"},
    ]
    result = run(*write_inputs(tmp_path, member={**MEMBER, "scheme": "resident"}, bill={**BILL, "lines": lines}),
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["total_fen"] == 7_000_000
    assert out["preselfpay_fen"] == 100_000
    assert out["fulamt_ownpay_fen"] == 300_000
    assert out["inscp_fen"] == 6_600_000
    assert out["deductible_fen"] == 120_000
    assert out["hifp_fen"] == 4_212_000
    assert out["psn_pay_fen"] == 7_000_000 - 4_212_000
    assert [line["reason"] for line in out["lines"]] == [None, None, "GRADE_C"]
    assert out["lines"][1]["qty"] == "0.5"


def test_quote_tier_under_a_policy_without_assistance_pays_no_assistance_and_says_why(tmp_path: Path) -> None:
    # The same stay as the grade-A case (hifp 704,000, the patient 296,000), the member dibao, and the policy
    # without its [assistance] section: no assistance (SPEC §5.1), as the insured agency settles it online.
    policy = POLICY[:POLICY.index("[assistance.dibao]")]
    result = run(*write_inputs(tmp_path, policy=policy, member={**MEMBER, "assistance": "dibao"}), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["hifp_fen"], out["maf_fen"], out["fund_pay_fen"], out["psn_pay_fen"]) == (704_000, 0, 704_000, 296_000)
    assert out["ytd_after"]["assist_base_fen"] == 296_000 and out["ytd_after"]["maf_fen"] == 0
    steps = {step["step"]: step for step in out["explanation"]}
    assert steps["assistance_none"]["en"] == ("medical assistance (dibao): the insured region's policy has no "
                                              "medical assistance, pays 0.00")
    assert steps["assistance_none"]["zh"] == "医疗救助（dibao）：参保地政策未设医疗救助，支付 0.00 元"


def test_quote_missing_option_is_a_usage_error(tmp_path: Path) -> None:
    result = run("quote", "--catalog", tmp_path / "C.csv", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""


def mutate_line(**changes: object) -> dict[str, object]:
    return {**BILL, "lines": [{**BILL["lines"][0], **changes}]}  # type: ignore[dict-item]


def replace_once(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


BAD_QUOTE_INPUTS = {
    "amount mismatch": (dict(bill=mutate_line(amount_fen=1_000_001)),
                        ["bill: lines[0].amount_fen", "is 1000001 but round_half_up(qty × unit_price_fen) is 1000000"]),
    "qty zero": (dict(bill=mutate_line(qty="0", amount_fen=0)), ["bill: lines[0].qty", "positive"]),
    "qty five decimals": (dict(bill=mutate_line(qty="2.00001")), ["bill: lines[0].qty", "4 decimal places"]),
    "unknown scheme": (dict(member={**MEMBER, "scheme": "student"}), ["member: member.scheme", "'student'"]),
    "unknown grade in csv": (dict(catalog=catalog_text([*CATALOG_ROWS[:5], CATALOG_ROWS[5].replace(",B,", ",D,"),
                                                        CATALOG_ROWS[6]])),
                             ["catalog: row 7.grade", "'D'"]),
    "overlapping validity rows": (
        dict(catalog=catalog_text([*CATALOG_ROWS, "X0001,XA01AAA0001,equivalent,drug,复方硼砂,B,1000,,,2025-06-01,"])),
        ["catalog: row 9.valid_from", "overlaps row 2"]),
    "unknown policy key": (dict(policy=replace_once(POLICY, "retired_bonus_bp = 500", "colour = 5")),
                           ["policy: schemes.employee.colour", "unknown key"]),
    "negative amount in policy": (dict(policy=replace_once(POLICY, '"3" = 120000', '"3" = -120000')),
                                  ["policy: schemes.employee.deductible_fen.3", "negative"]),
    "bands out of order": (dict(policy=replace_once(POLICY, "upto_fen = 10000000", "upto_fen = 4000000")),
                           ["policy: schemes.employee.bands[1].upto_fen", "greater"]),
    "discharge before effective_from": (
        dict(bill={**BILL, "admitted_on": "2025-12-01", "discharged_on": "2025-12-10",
                   "lines": [{**BILL["lines"][0], "service_date": "2025-12-02"}]}),  # type: ignore[dict-item]
        ["bill: discharged_on", "effective_from"]),
    "member region is not the policy's": (dict(member={**MEMBER, "region": "440100"}),
                                          ["member: member.region", "430100"]),
    "tier the policy does not define": (dict(member={**MEMBER, "assistance": "tekun"}),
                                        ["member: member.assistance", "tekun"]),
    # Inputs that slipped past the core's own validation when written (reported): one line and exit 2 either
    # way; the field path is named once the core refuses them itself.
    "qty overflows decimal": (dict(bill=mutate_line(qty="1e100000000")), ["bill: "]),
    "non-ascii digit in csv": (dict(catalog=catalog_text([*CATALOG_ROWS[:2], CATALOG_ROWS[2].replace(",0,", ",²,"),
                                                          *CATALOG_ROWS[3:]])), ["catalog: "]),
    "invalid json": (dict(bill='{"region": "440100",'), ["bill: ", "B.json: not valid JSON", "line 1"]),
    "duplicate json key": (dict(member='{"region": "430100", "region": "440100"}'), ["member: ", "'region' appears twice"]),
    # The optional 病案首页 keys (docs/stay-facts.md) are checked when given.
    "procedure code not ICD-9-CM3": (dict(bill={**BILL, "procedures": ["51.2300", "cholecystectomy"]}),
                                     ["bill: procedures[1]", "ICD-9-CM3"]),
    "discharge status not a 离院方式 code": (dict(bill={**BILL, "discharge_status": 1}), ["bill: discharge_status"]),
    "birth weight of an adult": (dict(bill={**BILL, "age_years": 40, "birth_weight_g": 3200}),
                                 ["bill: birth_weight_g", "under one year"]),
}


@pytest.mark.parametrize("inputs, named", BAD_QUOTE_INPUTS.values(), ids=BAD_QUOTE_INPUTS.keys())
def test_quote_bad_input_is_one_line_naming_the_field(tmp_path: Path, inputs: dict, named: list[str]) -> None:
    assert_operator_error(run(*write_inputs(tmp_path, **inputs), cwd=tmp_path), *named)


def test_quote_missing_file_names_it(tmp_path: Path) -> None:
    args = write_inputs(tmp_path)
    args[args.index("--member") + 1] = tmp_path / "nope.json"
    assert_operator_error(run(*args, cwd=tmp_path), "member: ", "nope.json", "cannot read")


# ---- policy validate --------------------------------------------------------------------------------------


def test_policy_validate_two_versions_of_one_region(tmp_path: Path) -> None:
    (tmp_path / "p2026.toml").write_text(POLICY, encoding="utf-8")
    (tmp_path / "p2027.toml").write_text(POLICY.replace("2026-01-01", "2027-01-01"), encoding="utf-8")
    result = run("policy", "validate", tmp_path / "p2026.toml", tmp_path / "p2027.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for text in ("430100 长沙市", "2027-01-01", "employee", "resident", "300.00 / 600.00 / 1,200.00",
                 "≤50,000.00: 90% / 85% / 80%", "unfiled −20%", "poverty: not applicable", "dibao",
                 "region 430100: 2 version(s) in force from 2026-01-01, 2027-01-01: OK"):
        assert text in result.stdout


def test_policy_validate_names_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "good.toml").write_text(POLICY, encoding="utf-8")
    (tmp_path / "bad.toml").write_text(replace_once(POLICY, "[filing]", "[filing]\nvisitor = 100"), encoding="utf-8")
    result = run("policy", "validate", tmp_path / "good.toml", tmp_path / "bad.toml", cwd=tmp_path)
    assert_operator_error(result, "bad.toml", "filing.visitor", "unknown key")


def test_policy_validate_refuses_two_versions_on_one_date(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(POLICY, encoding="utf-8")
    (tmp_path / "b.toml").write_text(POLICY.replace("长沙市", "长沙"), encoding="utf-8")
    result = run("policy", "validate", tmp_path / "a.toml", tmp_path / "b.toml", cwd=tmp_path)
    assert_operator_error(result, "a.toml", "b.toml", "effective_from", "2026-01-01")


def test_policy_validate_invalid_toml(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text("region = 430100\nname = ", encoding="utf-8")
    assert_operator_error(run("policy", "validate", tmp_path / "p.toml", cwd=tmp_path), "p.toml", "not valid TOML")


# ---- catalog validate ---------------------------------------------------------------------------------------


def test_catalog_validate_table(tmp_path: Path) -> None:
    (tmp_path / "C.csv").write_text("\ufeff" + catalog_text(), encoding="utf-8")
    result = run("catalog", "validate", tmp_path / "C.csv", "--region", "440100", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for text in ("7 rows, 6 local codes: OK", "unmapped rows: 1", "未对照药品", "restricted rows: 1", "icd:C34,C78",
                 "codes with several rows: 1", "X0006"):
        assert text in result.stdout


def test_catalog_validate_json_counts(tmp_path: Path) -> None:
    (tmp_path / "C.csv").write_text(catalog_text(), encoding="utf-8")
    result = run("catalog", "validate", tmp_path / "C.csv", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["rows"] == 7 and out["codes"] == 6
    assert out["by_kind"] == {"drug": {"A": 3, "B": 2}, "service": {"B": 1}, "consumable": {"C": 1}}
    assert [row["local_code"] for row in out["unmapped"]] == ["X0004"]
    assert [row["icd_prefixes"] for row in out["restricted"]] == [["C34", "C78"]]
    assert out["multi_version"] == [{"local_code": "X0006", "rows": 2}]


def test_catalog_validate_bad_row(tmp_path: Path) -> None:
    (tmp_path / "C.csv").write_text(catalog_text([*CATALOG_ROWS, "X0009,N1,equal,drug,x,A,0,,,2025-01-01,"]),
                                    encoding="utf-8")
    assert_operator_error(run("catalog", "validate", tmp_path / "C.csv", cwd=tmp_path),
                          "C.csv", "row 9.relation", "'equal'")


def test_catalog_validate_bad_region_option(tmp_path: Path) -> None:
    (tmp_path / "C.csv").write_text(catalog_text(), encoding="utf-8")
    assert_operator_error(run("catalog", "validate", tmp_path / "C.csv", "--region", "4401", cwd=tmp_path),
                          "--region", "6-digit")


# ---- catalog diff --------------------------------------------------------------------------------------------

NEW_ROWS = [
    CATALOG_ROWS[0].replace(",A,0,", ",B,1500,"),  # X0001 corrected in place: grade A → B, selfpay 0 → 1500
    CATALOG_ROWS[1],  # X0002 unchanged
    # X0003 removed; X0004 unchanged
    CATALOG_ROWS[3],
    CATALOG_ROWS[4].replace("2025-01-01,", "2025-01-01,2026-06-30"),  # X0005 ended …
    'X0005,XL01XX0001,narrower,drug,靶向药,B,1000,45000,"icd:C34,C78",2026-07-01,',  # … succeeded with a lower cap
    CATALOG_ROWS[5], CATALOG_ROWS[6],  # X0006 unchanged
    "X0007,XA02BC0001,equivalent,drug,奥美拉唑,A,0,,,2026-07-01,",  # X0007 added
]


def write_diff_inputs(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "old.csv").write_text(catalog_text(), encoding="utf-8")
    (tmp_path / "new.csv").write_text("\ufeff" + catalog_text(NEW_ROWS), encoding="utf-8")
    return tmp_path / "old.csv", tmp_path / "new.csv"


def test_catalog_diff_json(tmp_path: Path) -> None:
    old, new = write_diff_inputs(tmp_path)
    result = run("catalog", "diff", old, new, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert [item["local_code"] for item in out["added"]] == ["X0007"]
    assert [item["local_code"] for item in out["removed"]] == ["X0003"]
    assert out["unchanged"] == 3
    changed = {item["local_code"]: item for item in out["changed"]}
    assert sorted(changed) == ["X0001", "X0005"]
    assert changed["X0001"]["validity"] == []
    assert changed["X0001"]["fields"] == [
        {"field": "grade", "valid_from": "2025-01-01", "before": "A", "after": "B"},
        {"field": "selfpay_bp", "valid_from": "2025-01-01", "before": "0", "after": "1500"},
    ]
    assert changed["X0005"]["validity"] == [
        {"change": "ended", "valid_from": "2025-01-01", "valid_to_before": None, "valid_to_after": "2026-06-30"},
        {"change": "added", "valid_from": "2026-07-01", "valid_to_before": None, "valid_to_after": None},
    ]
    assert changed["X0005"]["fields"] == [
        {"field": "price_cap_fen", "valid_from": "2026-07-01", "before": "50000", "after": "45000"},
    ]


def test_catalog_diff_table(tmp_path: Path) -> None:
    old, new = write_diff_inputs(tmp_path)
    result = run("catalog", "diff", old, new, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 added, 1 removed, 2 changed, 3 unchanged" in result.stdout
    for text in ("code added", "code removed", "row ended", "2026-06-30", "price_cap_fen", "selfpay_bp"):
        assert text in result.stdout


def test_catalog_diff_bad_new_file_names_file_and_row(tmp_path: Path) -> None:
    old, new = write_diff_inputs(tmp_path)
    new.write_text(catalog_text([*NEW_ROWS, "X0008,N8,equivalent,drug,x,A,0,abc,,2025-01-01,"]), encoding="utf-8")
    assert_operator_error(run("catalog", "diff", old, new, cwd=tmp_path), "new.csv", "row 10.price_cap_fen", "'abc'")
