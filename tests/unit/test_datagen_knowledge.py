"""The knowledge-base generator (services/datagen/knowledge.py, SPEC §12.1): deterministic, keyed by the national
codes the regional catalogues map to, and the name rules match what docs/smart-audit.md says they match."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from clearing.smart_audit.knowledge import parse_knowledge_base
from services.datagen.__main__ import main as datagen_main
from services.datagen.catalogue import generate_catalogue_rows
from services.datagen.knowledge import (
    KNOWLEDGE_COLUMNS, NURSING_GROUP, generate_knowledge_rows, knowledge_csv_text, max_age_of, sex_of,
)
from services.datagen.national import BED_CODES, ESSENTIAL, NURSING_CODES, national_item

SEED = 2026


def facts_counts(rows: list[dict[str, str]]) -> Counter:
    return Counter((column, row[column]) for row in rows for column in KNOWLEDGE_COLUMNS[1:] if row[column])


def test_one_seed_gives_one_file_and_it_parses() -> None:
    text = knowledge_csv_text(SEED)
    assert text == knowledge_csv_text(SEED)
    assert knowledge_csv_text(SEED + 1) != text  # the seeded facts move
    kb = parse_knowledge_base(text)
    assert len(kb.items) == len(generate_knowledge_rows(SEED))


def test_rule_counts_for_the_demo_seed() -> None:
    # Pinned so a change to a rule (or to the reference lists) is a visible, reviewed change.
    assert facts_counts(generate_knowledge_rows(SEED)) == Counter({
        ("sex", "F"): 184, ("sex", "M"): 33, ("max_age", "14"): 86, ("max_age", "0"): 26, ("bed_day", "1"): 16,
        ("exclusive_group", NURSING_GROUP): 4, ("max_qty_per_day", "1"): 19, ("min_hospital_level", "2"): 70,
        ("min_hospital_level", "3"): 30})


def test_name_rules() -> None:
    assert sex_of("前列腺按摩") == "M" and sex_of("睾丸切除术") == "M"
    assert sex_of("剖宫产术") == "F" and sex_of("人工流产术") == "F" and sex_of("产后逐瘀胶囊") == "F"
    assert sex_of("经阴道B超检查") == "F"
    # 产 outside an obstetric word is not a sex restriction.
    assert sex_of("纤维蛋白(原)降解产物测定(FDP)") == "" and sex_of("双重造影产气") == ""
    assert sex_of("前列腺阴道") == ""  # contradictory: no sex
    assert max_age_of("新生儿护理") == "0" and max_age_of("普通病房床位费(新生儿床)") == "0"
    assert max_age_of("小儿布洛芬") == "14" and max_age_of("儿童清肺口服液") == "14"
    assert max_age_of("开喉剑喷雾剂(含儿童型)") == ""


def test_keyed_by_the_codes_the_catalogues_map_to() -> None:
    rows = {row["national_code"]: row for row in generate_knowledge_rows(SEED)}
    assert all(national_item(code) is not None for code in rows)
    nursing = {code for code, row in rows.items() if row["exclusive_group"] == NURSING_GROUP}
    assert set(NURSING_CODES) < nursing and len(nursing) == 4  # plus 特级护理
    assert all(rows[code]["max_qty_per_day"] == "1" for code in nursing)
    assert all(rows[code]["bed_day"] == "1" for code in BED_CODES)
    # The inpatient basics every bill carries never get a seeded level or daily limit.
    assert all(rows[code]["min_hospital_level"] == "" for code in ESSENTIAL if code in rows)
    mapped = {row["national_code"] for row in generate_catalogue_rows("440100", SEED)}
    assert set(BED_CODES) | set(NURSING_CODES) <= mapped
    assert len(mapped & set(rows)) > 0.8 * len(rows)


def test_command_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "kb.csv"
    assert datagen_main(["knowledge", "--seed", str(SEED), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == knowledge_csv_text(SEED)


def test_generated_libraries_audit_a_real_regional_catalogue() -> None:
    """The demo knowledge base on the demo catalogue of 广州 440100: a doubled nursing grade and a bed-day too many
    are found through the region's own local codes."""
    import csv
    import io
    from datetime import date

    from clearing.bill import make_bill, make_line
    from clearing.catalogue import parse_catalogue_csv
    from clearing.smart_audit.library import RuleId, parse_rule_library
    from clearing.smart_audit.model import MemberFacts
    from clearing.smart_audit.rules import audit_stay
    from services.datagen.catalogue import CATALOGUE_COLUMNS

    rows = generate_catalogue_rows("440100", SEED)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CATALOGUE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    catalogue = parse_catalogue_csv(text.getvalue(), "440100")
    day = date(2026, 3, 2)

    def local(national_code: str) -> str:
        return next(row.local_code for row in catalogue.rows_for_national(national_code, day))

    lines = (make_line(0, "1", local(NURSING_CODES[0]), "1", 2000, 2000, "2026-03-02"),  # Ⅰ级 20.00
             make_line(1, "2", local(NURSING_CODES[1]), "1", 1500, 1500, "2026-03-02"),  # Ⅱ级 15.00: violates
             make_line(2, "3", local(BED_CODES[0]), "3", 5000, 15000, "2026-03-01"))  # 3 bed-days, stay of 2
    stay = make_bill("440100", "H44010000001", 3, "2026-03-01", "2026-03-03", False, ["J18.9"], lines)
    result = audit_stay(stay, catalogue, parse_knowledge_base(knowledge_csv_text(SEED)), parse_rule_library(""),
                        MemberFacts("F", date(1960, 1, 1)))
    assert [(item.rule_id, item.amount_fen, item.violating_line_ids) for item in result.findings] == [
        (RuleId.BEDDAYS, 5000, ("3",)), (RuleId.EXCL, 1500, ("2",))]
