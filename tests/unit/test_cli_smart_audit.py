"""`clearing-admin audit` offline (SPEC §12.4) and `clearing-admin rules validate` (§12.6), run as the real console
script in a subprocess on small files in `tmp_path`, in the style of test_cli_offline.py (whose helpers these use).

Amounts are worked out by hand in the comments. Every bad input gives exit 2, nothing on stdout and one stderr
line naming the file and the field. `audit show` (the operator audit log) must still be reachable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli_offline import CATALOG_ROWS, MEMBER, assert_operator_error, catalog_text, run

from services.datagen.regions import demo_region_codes

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "services" / "regions" / "audit_rules"

KB_HEADER = "national_code,sex,min_age,max_age,min_hospital_level,max_qty_per_day,bed_day,exclusive_group"
# XA01AAA0001 (X0001) is a women's item here; the two nursing grades form one group.
KB = "\n".join((KB_HEADER, "XA01AAA0001,F,,,,,,", "N-NURSE1,,,,,1,,护理等级", "N-NURSE2,,,,,1,,护理等级")) + "\n"
CATALOG = catalog_text([*CATALOG_ROWS, "X0101,N-NURSE1,equivalent,service,Ⅰ级护理,A,0,,,2025-01-01,",
                        "X0102,N-NURSE2,equivalent,service,Ⅱ级护理,A,0,,,2025-01-01,"])
AUDIT_MEMBER = {**MEMBER, "sex": "M", "birth_date": "1970-04-01"}
LINES = [
    # 2 × 15.00 of the women's item for a man: AUD-SEX, 30.00.
    {"line_id": "1", "code": "X0001", "qty": "2", "unit_price_fen": 1500, "amount_fen": 3000,
     "service_date": "2026-03-02"},
    # Ⅰ级 25.00 and Ⅱ级 20.00 on 03-03: AUD-EXCL keeps Ⅰ级 (larger), Ⅱ级's 20.00 violates.
    {"line_id": "2", "code": "X0101", "qty": "1", "unit_price_fen": 2500, "amount_fen": 2500,
     "service_date": "2026-03-03"},
    {"line_id": "3", "code": "X0102", "qty": "1", "unit_price_fen": 2000, "amount_fen": 2000,
     "service_date": "2026-03-03"},
]
BILL = {"region": "440100", "hospital": {"code": "H44010000001", "level": 3}, "admitted_on": "2026-03-01",
        "discharged_on": "2026-03-10", "emergency": False, "diagnoses": ["C34.1"], "lines": LINES}
HISTORY = [{"settlement_id": "S-0001", "admitted_on": "2026-02-20", "discharged_on": "2026-03-01",
            "diagnoses": ["K35"]},  # a transfer: discharged on this admission day
           {"settlement_id": "S-0002", "admitted_on": "2026-03-09", "discharged_on": "2026-03-12",
            "diagnoses": ["K35"]}]  # overlaps


def write_inputs(tmp_path: Path, catalog: str = CATALOG, kb: str = KB, rules: str = "", member: object = AUDIT_MEMBER,
                 bill: object = BILL, history: object = HISTORY) -> list[str | Path]:
    files = {"C.csv": catalog, "K.csv": "\ufeff" + kb, "R.toml": rules,
             "M.json": member if isinstance(member, str) else json.dumps(member, ensure_ascii=False),
             "B.json": bill if isinstance(bill, str) else json.dumps(bill, ensure_ascii=False)}
    if history is not None:
        files["H.json"] = history if isinstance(history, str) else json.dumps(history, ensure_ascii=False)
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    args: list[str | Path] = ["audit", "--catalog", tmp_path / "C.csv", "--kb", tmp_path / "K.csv",
                              "--rules", tmp_path / "R.toml", "--member", tmp_path / "M.json",
                              "--bill", tmp_path / "B.json"]
    return args + (["--history", tmp_path / "H.json"] if history is not None else [])


def test_audit_prints_the_findings_in_order(tmp_path: Path) -> None:
    args = write_inputs(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert sorted(tmp_path.rglob("*")) == before  # writes nothing
    output = json.loads(result.stdout)
    assert set(output) == {"findings", "definite_amount_fen"}
    shape = [(item["rule_id"], item["rule_name"], item["result"], item["action"], item["amount_fen"],
              item["violating_line_ids"], item["involved_line_ids"]) for item in output["findings"]]
    assert shape == [
        ("AUD-SEX", "限性别", "definite", "warn", 3000, ["1"], []),
        ("AUD-EXCL", "互斥项目重复收费", "definite", "warn", 2000, ["3"], ["2"]),
        ("AUD-OVERLAP", "重叠住院", "definite", "block", 0, [], []),
    ]
    assert "S-0002" in output["findings"][2]["evidence"]
    assert all(isinstance(item["evidence"], str) and item["evidence"] for item in output["findings"])
    assert output["definite_amount_fen"] == 5000


def test_audit_without_history_and_with_disabled_rules(tmp_path: Path) -> None:
    result = run(*write_inputs(tmp_path, history=None, rules="[AUD-SEX]\nenabled = false\n"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert [item["rule_id"] for item in output["findings"]] == ["AUD-EXCL"]
    assert output["definite_amount_fen"] == 2000


def test_audit_with_a_shipped_rule_library(tmp_path: Path) -> None:
    # 长沙 430100 blocks AUD-SEX.
    args = write_inputs(tmp_path)
    args[args.index("--rules") + 1] = RULES_DIR / "430100.toml"
    output = json.loads(run(*args, cwd=tmp_path).stdout)
    assert output["findings"][0]["action"] == "block"


BAD_AUDIT_INPUTS = {
    "kb unknown sex": (dict(kb=KB.replace("XA01AAA0001,F", "XA01AAA0001,W")), ["kb: row 2.sex", "'W'"]),
    "kb duplicate code": (dict(kb=KB + "N-NURSE1,,,,,,,\n"), ["kb: row 5.national_code", "row 3"]),
    "kb missing column": (dict(kb=KB.replace(",bed_day", "")), ["kb: header", "bed_day"]),
    "rules block on a suspicious rule": (dict(rules='[AUD-READMIT]\naction = "block"\n'),
                                         ["rules: AUD-READMIT.action"]),
    "rules unknown rule": (dict(rules="[AUD-SPEED]\n"), ["rules: AUD-SPEED", "unknown rule id"]),
    "rules unknown key": (dict(rules="[AUD-IDLE]\nshare = 1\n"), ["rules: AUD-IDLE.share", "unknown key"]),
    "member without sex": (dict(member={**MEMBER, "birth_date": "1970-04-01"}), ["member: member.sex"]),
    "member bad birth date": (dict(member={**AUDIT_MEMBER, "birth_date": "1970-02-30"}),
                              ["member: member.birth_date"]),
    "member born after admission": (dict(member={**AUDIT_MEMBER, "birth_date": "2026-03-05"}),
                                    ["member: member.birth_date", "after"]),
    "member unknown scheme": (dict(member={**AUDIT_MEMBER, "scheme": "student"}), ["member: member.scheme"]),
    "history not a list": (dict(history={"settlement_id": "S"}), ["history: history", "list"]),
    "history discharge before admission": (
        dict(history=[{**HISTORY[0], "discharged_on": "2026-02-19"}]), ["history: history[0].discharged_on"]),
    "history without diagnoses": (dict(history=[HISTORY[0], {**HISTORY[1], "diagnoses": []}]),
                                  ["history: history[1].diagnoses"]),
    "history unknown key": (dict(history=[{**HISTORY[0], "hospital": "H1"}]), ["history: history[0].hospital"]),
    "history invalid json": (dict(history="[{"), ["history: ", "H.json: not valid JSON"]),
    "bill amount mismatch": (dict(bill={**BILL, "lines": [{**LINES[0], "amount_fen": 3001}]}),
                             ["bill: lines[0].amount_fen"]),
    "catalog bad grade": (dict(catalog=CATALOG.replace(",Ⅰ级护理,A,", ",Ⅰ级护理,Z,")), ["catalog: row 9.grade"]),
}


@pytest.mark.parametrize("inputs, named", BAD_AUDIT_INPUTS.values(), ids=BAD_AUDIT_INPUTS.keys())
def test_audit_bad_input_is_one_line_naming_the_field(tmp_path: Path, inputs: dict, named: list[str]) -> None:
    assert_operator_error(run(*write_inputs(tmp_path, **inputs), cwd=tmp_path), *named)


def test_audit_missing_option_or_file_is_named(tmp_path: Path) -> None:
    args = write_inputs(tmp_path)
    at = args.index("--kb")
    assert_operator_error(run(*args[:at], *args[at + 2:], cwd=tmp_path), "--kb", "required")
    args[args.index("--member") + 1] = tmp_path / "nope.json"
    assert_operator_error(run(*args, cwd=tmp_path), "member: ", "nope.json", "cannot read")


def test_audit_show_is_still_the_operator_audit_log(tmp_path: Path) -> None:
    result = run("audit", "show", "--help", cwd=tmp_path)
    assert result.returncode == 0 and "operator audit log" in result.stdout
    # The offline audit's options do not mix with the subcommand.
    assert_operator_error(run("audit", "--kb", "K.csv", "show", cwd=tmp_path), "--kb", "audit show")
    # No stack running here: `show` itself runs (and says what it could not reach), it is not the offline audit.
    result = run("audit", "show", "--config", tmp_path / "missing.json", cwd=tmp_path)
    assert result.returncode == 2 and "required for the offline audit" not in result.stderr


def test_rules_validate_every_shipped_file() -> None:
    files = sorted(RULES_DIR.glob("*.toml"))
    assert [path.stem for path in files] == sorted(demo_region_codes())
    result = run("rules", "validate", *files, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": OK") == len(files)
    assert "disabled: AUD-LEVEL" in result.stdout  # 鹤岗 230400
    assert "AUD-READMIT days 30" in result.stdout  # 昆明 530100


def test_rules_validate_names_file_and_key(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text("", encoding="utf-8")
    bad.write_text('[AUD-IDLE]\naction = "block"\n', encoding="utf-8")
    assert_operator_error(run("rules", "validate", good, bad, cwd=tmp_path), f"rules {bad}: AUD-IDLE.action",
                          "suspicious")
    bad.write_text("[AUD-SEX]\naction = 'stop'\n", encoding="utf-8")
    assert_operator_error(run("rules", "validate", bad, cwd=tmp_path), "AUD-SEX.action", "'stop'")
