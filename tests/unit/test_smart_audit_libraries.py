"""Parsing the two smart-audit libraries (SPEC §12.1 knowledge base CSV, §12.6 rule library TOML): defaults,
versions, and every refusal naming its row/column or key."""

from __future__ import annotations

import pytest

from clearing.errors import InvalidField
from clearing.smart_audit.knowledge import parse_knowledge_base
from clearing.smart_audit.library import Action, RuleId, parse_rule_library

HEADER = "national_code,sex,min_age,max_age,min_hospital_level,max_qty_per_day,bed_day,exclusive_group"


def test_knowledge_base_values_bom_extra_columns_and_version() -> None:
    text = "\ufeff" + HEADER + ",note\nN1,F,1,14,2,1.5,0,g,x\nN2,,,,,,1,,\n"
    kb = parse_knowledge_base(text)
    one = kb.facts("N1")
    assert (one.sex, one.min_age, one.max_age, one.min_hospital_level, one.max_qty_per_day_e4, one.bed_day,
            one.exclusive_group) == ("F", 1, 14, 2, 15000, False, "g")
    two = kb.facts("N2")
    assert (two.sex, two.min_age, two.max_qty_per_day_e4, two.bed_day, two.exclusive_group) == (None, None, None,
                                                                                               True, "")
    assert kb.facts("N3") is None
    assert len(kb.version) == 64
    assert parse_knowledge_base(text).version == kb.version
    assert parse_knowledge_base(text.replace("1.5", "2")).version != kb.version


@pytest.mark.parametrize(("rows", "field"), [
    ("N1,X,,,,,,", "row 2.sex"),
    ("N1,,a,,,,,", "row 2.min_age"),
    ("N1,,10,9,,,,", "row 2.max_age"),
    ("N1,,,,4,,,", "row 2.min_hospital_level"),
    ("N1,,,,0,,,", "row 2.min_hospital_level"),
    ("N1,,,,,1.00001,,", "row 2.max_qty_per_day"),
    ("N1,,,,,0,,", "row 2.max_qty_per_day"),
    ("N1,,,,,,2,", "row 2.bed_day"),
    (",,,,,,,", "row 2.national_code"),
    ("N1,,,,,,,\nN2,,,,,,,\nN1,M,,,,,,", "row 4.national_code"),
])
def test_knowledge_base_refusals_name_row_and_column(rows: str, field: str) -> None:
    with pytest.raises(InvalidField) as error:
        parse_knowledge_base(HEADER + "\n" + rows + "\n")
    assert error.value.field == field


def test_knowledge_base_needs_every_column() -> None:
    with pytest.raises(InvalidField) as error:
        parse_knowledge_base(HEADER.replace(",bed_day", "") + "\n")
    assert error.value.field == "header" and "bed_day" in error.value.reason


def test_empty_rule_library_is_every_rule_with_its_defaults() -> None:
    library = parse_rule_library("")
    assert all(library.enabled(rule) for rule in RuleId)
    assert {rule: library.settings(rule).action for rule in RuleId} == {
        rule: Action.BLOCK if rule is RuleId.OVERLAP else Action.WARN for rule in RuleId}
    readmit, idle = library.settings(RuleId.READMIT), library.settings(RuleId.IDLE)
    assert (readmit.days, readmit.exempt, idle.min_days, idle.share_bp) == (15, ("Z51.0", "Z51.1"), 4, 5000)


def test_rule_library_settings_and_version() -> None:
    text = """
[AUD-SEX]
enabled = false
[AUD-OVERLAP]
action = "warn"
[AUD-READMIT]
action = "dispute"
days = 30
exempt = ["Z51"]
[AUD-IDLE]
min_days = 7
share_bp = 6000
"""
    library = parse_rule_library(text)
    assert not library.enabled(RuleId.SEX)
    assert library.settings(RuleId.OVERLAP).action is Action.WARN
    readmit = library.settings(RuleId.READMIT)
    assert (readmit.action, readmit.days, readmit.exempt) == (Action.DISPUTE, 30, ("Z51",))
    assert (library.settings(RuleId.IDLE).min_days, library.settings(RuleId.IDLE).share_bp) == (7, 6000)
    assert library.version != parse_rule_library("").version
    assert library.version == parse_rule_library(text).version


@pytest.mark.parametrize(("text", "field"), [
    ("[AUD-FOO]\n", "AUD-FOO"),
    ('version = "1"\n', "version"),
    ("AUD-SEX = 1\n", "AUD-SEX"),
    ("[AUD-SEX]\ndays = 3\n", "AUD-SEX.days"),
    ("[AUD-SEX]\nenabled = 1\n", "AUD-SEX.enabled"),
    ('[AUD-AGE]\naction = "stop"\n', "AUD-AGE.action"),
    ('[AUD-READMIT]\naction = "block"\n', "AUD-READMIT.action"),
    ('[AUD-IDLE]\naction = "block"\n', "AUD-IDLE.action"),
    ("[AUD-READMIT]\ndays = -1\n", "AUD-READMIT.days"),
    ('[AUD-READMIT]\ndays = "15"\n', "AUD-READMIT.days"),
    ('[AUD-READMIT]\nexempt = "Z51.1"\n', "AUD-READMIT.exempt"),
    ('[AUD-READMIT]\nexempt = ["Z51.1", "化疗"]\n', "AUD-READMIT.exempt[1]"),
    ("[AUD-IDLE]\nshare_bp = 10001\n", "AUD-IDLE.share_bp"),
    ("[AUD-IDLE]\nmin_days = 0\n", "AUD-IDLE.min_days"),
    ("[AUD-IDLE]\nmin_days = 4.5\n", "AUD-IDLE.min_days"),
    ("[AUD-SEX\n", "rules"),
])
def test_rule_library_refusals_name_the_key(text: str, field: str) -> None:
    with pytest.raises(InvalidField) as error:
        parse_rule_library(text)
    assert error.value.field == field


def test_block_is_allowed_on_a_definite_rule() -> None:
    assert parse_rule_library('[AUD-SEX]\naction = "block"\n').settings(RuleId.SEX).action is Action.BLOCK
