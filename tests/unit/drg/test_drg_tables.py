"""Parsing the grouping tables and their condition notation (clearing/drg/tables.py, conditions.py)."""

from __future__ import annotations

import pytest
from drg_cases import tables

from clearing.drg import Split, parse_tables
from clearing.drg.conditions import (
    Always, And, Compare, Facts, InList, Or, RegionCount, Subject, compile_condition, parse_condition,
)
from clearing.drg.tables import ADRG_CONDITIONS, CC, DRG_SPLIT, MDC_CONDITIONS
from clearing.errors import InvalidField
from services.drg.reference import table_texts


def test_the_shipped_tables_hold_26_mdcs_376_adrgs_628_drgs_in_order() -> None:
    loaded = tables()
    assert [mdc.mdc for mdc in loaded.mdcs][:6] == ["MDCA", "MDCP", "MDCY", "MDCZ", "MDCM", "MDCN"]
    assert len(loaded.mdcs) == 26
    assert len(loaded.adrgs) == 376
    assert sum(len(adrg.drgs) for adrg in loaded.adrgs.values()) == 628
    assert len(loaded.drg_names) == 628
    assert loaded.adrgs["ER3"].drgs[0].drg == "ER31" and loaded.adrgs["ER3"].drgs[-1].split is Split.NONE


def test_and_binds_tighter_than_or_and_parentheses_group() -> None:
    parsed = parse_condition("principal_diagnosis in principal_diagnosis and (any procedure in "
                             "main_procedure[procedure_group=1] or always)", "c")
    assert parsed == And((InList(Subject.PRINCIPAL_DIAGNOSIS, "principal_diagnosis"),
                          Or((InList(Subject.ANY_PROCEDURE, "main_procedure", "1"), Always()))))
    assert parse_condition("always or always and age_days <= 28", "c") == Or(
        (Always(), And((Always(), Compare("age_days", "<=", 28)))))


def test_the_sex_gloss_and_the_mdcz_region_count_parse() -> None:
    assert parse_condition("sex == 1 (male)", "c") == Compare("sex", "==", 1)
    text = ("principal_diagnosis in mdc_principal_diagnosis and count_distinct(mdcz_body_region over all "
            "diagnoses found in mdc_principal_diagnosis) >= 2")
    assert parse_condition(text, "c") == And((InList(Subject.PRINCIPAL_DIAGNOSIS, "mdc_principal_diagnosis"),
                                              RegionCount(2)))


@pytest.mark.parametrize("text", ["", "principal_diagnosis in nowhere", "age_days <= many", "weight > 3",
                                  "(always", "always always", "any operation in main_procedure", "sex = 1"])
def test_an_unknown_condition_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_condition(text, "t.csv: row 9.condition")
    assert caught.value.field == "t.csv: row 9.condition"


def facts(**overrides: object) -> Facts:
    values = {"principal_diagnosis": "X", "diagnoses": frozenset({"X"}), "main_procedure": None,
              "procedures": frozenset(), "sex": 1, "age_years": 0, "age_days": None, "birth_weight_g": None}
    return Facts(**{**values, **overrides})  # type: ignore[arg-type]


def test_a_comparison_on_a_missing_value_is_false_and_a_zero_birth_weight_is_missing() -> None:
    under = compile_condition(parse_condition("birth_weight_g < 1500", "c"), lambda *_: frozenset(), {})
    assert under(facts(birth_weight_g=1200))
    assert not under(facts(birth_weight_g=None))
    assert not under(facts(birth_weight_g=0))
    young = compile_condition(parse_condition("age_days <= 28", "c"), lambda *_: frozenset(), {})
    assert young(facts(age_days=0)) and young(facts(age_days=28)) and not young(facts(age_days=29))
    assert not young(facts(age_days=None))


def test_main_procedure_is_false_without_procedures_and_no_procedure_is_true() -> None:
    lists = {"valid_procedures": frozenset({"36.0601"})}
    main = compile_condition(parse_condition("main_procedure in valid_procedures", "c"),
                             lambda name, group: lists[name], {})
    none = compile_condition(parse_condition("no procedure in valid_procedures", "c"),
                             lambda name, group: lists[name], {})
    assert not main(facts()) and none(facts())
    with_one = facts(main_procedure="93.9600", procedures=frozenset({"93.9600", "36.0601"}))
    assert not main(with_one)  # only the first procedure is the main one
    assert not none(with_one)  # but any procedure counts for "no procedure"


def edited(name: str, old: str, new: str) -> dict[str, str]:
    texts = table_texts()
    assert old in texts[name]
    return {**texts, name: texts[name].replace(old, new, 1)}


@pytest.mark.parametrize(("name", "old", "new", "named"), [
    (DRG_SPLIT, "AA19,AA1,MDCA,unsplit", "AA19,AA1,MDCA,MCC", f"{DRG_SPLIT}: row 2.drg"),
    (ADRG_CONDITIONS, "AA1,MDCA,1,main_procedure in main_procedure",
     "AA1,MDCA,1,main_procedure in procedure_2", f"{ADRG_CONDITIONS}: row 2.condition"),
    (ADRG_CONDITIONS, "AA1,MDCA,1,main_procedure in main_procedure",
     "AA1,MDCA,1,main_procedure on main_procedure", f"{ADRG_CONDITIONS}: row 2.condition"),
    (MDC_CONDITIONS, "MDCP,2,", "MDCP,7,", MDC_CONDITIONS),
    (CC, "code,level,exclusion_table", "code,level,table", f"{CC}: row 1"),
    (CC, "A01.100,MCC,1", "A01.100,SEVERE,1", f"{CC}: row 2.level"),
])
def test_a_broken_table_is_refused_naming_file_and_row(name: str, old: str, new: str, named: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_tables(edited(name, old, new))
    assert caught.value.field == named


def test_a_missing_table_is_refused() -> None:
    texts = table_texts()
    del texts[CC]
    with pytest.raises(InvalidField, match="table missing"):
        parse_tables(texts)
