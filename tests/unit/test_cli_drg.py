"""`clearing-admin drg group` (SPEC §14), run as the real console script in a subprocess on C.json files.

The groups are hand-worked in tests/unit/drg/test_drg_grouper.py; here the contract: one JSON line per case in
order, the exact keys, "0000" with the reason, and every bad input as exit 2 with one stderr line naming the
field and nothing on stdout.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli_offline import assert_operator_error, run

KEYS = {"mdc", "adrg", "drg", "cc_level", "reason"}
# J80.x00 成人呼吸窘迫综合征 (MDCE, ER3 splits 1/3/5) with A41.900 败血症, an MCC of another exclusion table.
ARDS = {"principal_diagnosis": "J80.x00", "other_diagnoses": ["A41.900"], "procedures": [], "sex": "M",
        "age_years": 67, "age_days": None, "birth_weight_g": None, "los_days": 8, "discharge_status": "1"}
# P07.200 极度未成熟, 3 days old, 1,200 g: MDCP, PS1 (< 1500 g), no CC → PS15.
NEWBORN = {**ARDS, "principal_diagnosis": "P07.200", "other_diagnoses": [], "sex": "F", "age_years": 0,
           "age_days": 3, "birth_weight_g": 1200, "los_days": 20}
# N40.x00 前列腺增生 is only on the MDCM list: a woman with it cannot be grouped.
CONFLICT = {**ARDS, "principal_diagnosis": "N40.x00", "other_diagnoses": [], "sex": "F"}


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_group_one_case_prints_one_json_line(tmp_path: Path) -> None:
    result = run("drg", "group", "--case", write(tmp_path, "C.json", ARDS), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert set(data) == KEYS
    assert (data["mdc"], data["adrg"], data["drg"], data["cc_level"]) == ("MDCE", "ER3", "ER31", "MCC")
    assert "A41.900" in data["reason"]


def test_group_several_cases_in_order_with_an_ungroupable_one(tmp_path: Path) -> None:
    paths = [write(tmp_path, name, data) for name, data in
             (("a.json", NEWBORN), ("b.json", CONFLICT), ("c.json", ARDS))]
    result = run("drg", "group", *(arg for path in paths for arg in ("--case", path)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["drg"] for row in rows] == ["PS15", "0000", "ER31"]
    assert rows[1]["mdc"] is None and rows[1]["adrg"] is None and rows[1]["cc_level"] == "none"
    assert "MDCM" in rows[1]["reason"] and "sex is F" in rows[1]["reason"]
    assert all(set(row) == KEYS for row in rows)


BAD_CASES = {
    "sex": ({**ARDS, "sex": "X"}, ["sex", "'M', 'F'"]),
    "age_years text": ({**ARDS, "age_years": "67"}, ["age_years", "whole number"]),
    "other diagnosis": ({**ARDS, "other_diagnoses": ["A41.900", "sepsis"]}, ["other_diagnoses[1]"]),
    "procedure": ({**ARDS, "procedures": [36.06]}, ["procedures[0]"]),
    "missing field": ({key: value for key, value in ARDS.items() if key != "discharge_status"},
                      ["discharge_status", "missing"]),
    "unknown field": ({**ARDS, "department": "ICU"}, ["department", "unknown field"]),
    "age_days for an adult": ({**ARDS, "age_days": 10}, ["age_days"]),
    "not an object": ([ARDS], ["must be a JSON object"]),
    "invalid json": ('{"principal_diagnosis": ', ["not valid JSON", "line 1"]),
    "duplicate key": ('{"sex": "M", "sex": "F"}', ["'sex' appears twice"]),
}


@pytest.mark.parametrize(("data", "named"), BAD_CASES.values(), ids=BAD_CASES.keys())
def test_bad_case_is_one_line_naming_the_field(tmp_path: Path, data: object, named: list[str]) -> None:
    path = write(tmp_path, "C.json", data)
    assert_operator_error(run("drg", "group", "--case", path, cwd=tmp_path), f"case {path}", *named)


def test_a_bad_second_case_prints_nothing_for_the_first(tmp_path: Path) -> None:
    good = write(tmp_path, "good.json", ARDS)
    bad = write(tmp_path, "bad.json", {**ARDS, "discharge_status": "7"})
    assert_operator_error(run("drg", "group", "--case", good, "--case", bad, cwd=tmp_path),
                          "bad.json", "discharge_status")


def test_missing_file_and_missing_option(tmp_path: Path) -> None:
    assert_operator_error(run("drg", "group", "--case", tmp_path / "nope.json", cwd=tmp_path), "nope.json",
                          "cannot read")
    assert_operator_error(run("drg", "group", cwd=tmp_path), "--case")
