"""Translation through the national code and region-pair agreements (SPEC §4.3): `clearing/translate.py`."""

from __future__ import annotations

from datetime import date

import pytest

from conftest import INSURED_REGION, TREATING_REGION, bill, catalogue, csv_row, line

from clearing.catalogue import Relation
from clearing.classify import Reason, classify_bill, pick_target, reclassify_for_insured
from clearing.errors import InvalidField
from clearing.translate import (
    Agreement, CatalogueRule, Translated, Unmapped, UnmappedAction, UnmappedReason, apply_agreement,
    parse_agreements, translate,
)

DAY = date(2026, 3, 2)


@pytest.fixture
def treating():
    """广州 440100: hospital codes."""
    return catalogue(
        csv_row("X0001", "N100", "equivalent", grade="A"),
        csv_row("X0002", "N200", "narrower", grade="A"),
        csv_row("X0003", "N300", "equivalent", grade="A"),  # no 长沙 item maps to N300
        csv_row("X0004", "", "", grade="A"),  # no national code
        csv_row("X0005", "N100", "wider", grade="A", valid_from="2026-04-01"),
        csv_row("X0006", "N400", "equivalent", grade="C"),
        region=TREATING_REGION,
    )


@pytest.fixture
def insured():
    """长沙 430100: N100 has three items (one equivalent), N200 two (none equivalent), N400 one."""
    return catalogue(
        csv_row("L300", "N100", "narrower", grade="A"),
        csv_row("L100", "N100", "wider", grade="A"),
        csv_row("L200", "N100", "equivalent", grade="B", selfpay_bp=1000, price_cap_fen=800),
        csv_row("M500", "N200", "wider", grade="B", selfpay_bp=2000),
        csv_row("M400", "N200", "narrower", grade="A"),
        csv_row("K100", "N400", "equivalent", grade="A"),
        region=INSURED_REGION,
    )


def test_national_code_without_destination(treating) -> None:
    result = translate(treating, "X0001", None, DAY)
    assert result == Translated(TREATING_REGION, "X0001", "N100", Relation.EQUIVALENT, None, ())


def test_national_code_to_several_local_codes(treating, insured) -> None:
    result = translate(treating, "X0001", insured, DAY)
    assert isinstance(result, Translated)
    assert result.national_code == "N100"
    assert result.to_region == INSURED_REGION
    # every 长沙 item of N100, ordered by local code, with its own relation
    assert [(target.local_code, target.relation) for target in result.targets] == [
        ("L100", Relation.WIDER), ("L200", Relation.EQUIVALENT), ("L300", Relation.NARROWER)]


def test_relation_is_the_source_rows(treating, insured) -> None:
    result = translate(treating, "X0002", insured, DAY)
    assert isinstance(result, Translated)
    assert result.relation is Relation.NARROWER
    assert [target.local_code for target in result.targets] == ["M400", "M500"]


def test_unknown_code_is_explicitly_unmapped(treating, insured) -> None:
    assert translate(treating, "NOPE", insured, DAY) == Unmapped(
        TREATING_REGION, "NOPE", INSURED_REGION, UnmappedReason.UNKNOWN_CODE)


def test_code_without_national_code_is_explicitly_unmapped(treating, insured) -> None:
    assert translate(treating, "X0004", insured, DAY) == Unmapped(
        TREATING_REGION, "X0004", INSURED_REGION, UnmappedReason.NO_NATIONAL_CODE)
    assert translate(treating, "X0004", None, DAY) == Unmapped(
        TREATING_REGION, "X0004", None, UnmappedReason.NO_NATIONAL_CODE)


def test_national_code_without_target_is_explicitly_unmapped(treating, insured) -> None:
    assert translate(treating, "X0003", insured, DAY) == Unmapped(
        TREATING_REGION, "X0003", INSURED_REGION, UnmappedReason.NO_TARGET, "N300")


def test_code_not_valid_on_the_day_is_explicitly_unmapped(treating, insured) -> None:
    assert translate(treating, "X0005", insured, DAY) == Unmapped(
        TREATING_REGION, "X0005", INSURED_REGION, UnmappedReason.NOT_VALID_ON_DATE)
    later = translate(treating, "X0005", insured, date(2026, 4, 1))
    assert isinstance(later, Translated) and later.national_code == "N100"


# --- the insured rule (参保地目录) ---------------------------------------------------------------

def test_pick_target_prefers_the_equivalent(insured) -> None:
    chosen, rule = pick_target(insured.rows_for_national("N100", DAY))
    assert (chosen.local_code, rule) == ("L200", "equivalent")  # not L100, the lowest code


def test_pick_target_falls_back_to_the_lowest_code(insured) -> None:
    chosen, rule = pick_target(insured.rows_for_national("N200", DAY))
    assert (chosen.local_code, rule) == ("M400", "lowest_code")


def test_pick_target_single_candidate(insured) -> None:
    chosen, rule = pick_target(insured.rows_for_national("N400", DAY))
    assert (chosen.local_code, rule) == ("K100", "only")


def treated_lines(treating, *lines_):
    bill_ = bill(*lines_)
    return classify_bill(bill_, treating), bill_.diagnoses


def test_insured_rule_classifies_with_the_equivalent_target_and_the_hospitals_price(treating, insured) -> None:
    (treated,), diagnoses = treated_lines(treating, line("X0001", "2", 1000))
    assert treated.inscp_fen == 2000  # grade A in 广州
    item = reclassify_for_insured(treated, insured, diagnoses)
    # 长沙 L200 is grade B 10 % with a cap of 800: amount 2 × 1000 = 2000 (the hospital's price);
    # over the cap (1000 − 800) × 2 = 400; preselfpay 10 % of 1600 = 160; inscp 2000 − 400 − 160 = 1440
    assert (item.fulamt_ownpay_fen, item.overlmt_selfpay_fen, item.preselfpay_fen, item.inscp_fen) == \
        (0, 400, 160, 1440)
    assert item.line.amount_fen == 2000
    assert (item.catalogue_region, item.catalogue_code, item.national_code) == (INSURED_REGION, "L200", "N100")
    # the explanation names the choice
    assert "L200" in item.note and "equivalent" in item.note and "3 candidates" in item.note


def test_insured_rule_lowest_code_is_named_in_the_note(treating, insured) -> None:
    (treated,), diagnoses = treated_lines(treating, line("X0002", "1", 1000))
    item = reclassify_for_insured(treated, insured, diagnoses)
    assert item.catalogue_code == "M400"
    assert item.inscp_fen == 1000  # M400 is grade A
    assert "M400" in item.note and "lowest_code" in item.note


def test_insured_rule_without_target_is_unmapped(treating, insured) -> None:
    (treated,), diagnoses = treated_lines(treating, line("X0003", "1", 1000))
    item = reclassify_for_insured(treated, insured, diagnoses)
    assert (item.fulamt_ownpay_fen, item.inscp_fen) == (1000, 0)
    assert item.reason is Reason.UNMAPPED
    assert item.national_code == "N300"
    assert "N300" in item.note


def test_insured_rule_can_bring_a_grade_c_line_into_scope(treating, insured) -> None:
    (treated,), diagnoses = treated_lines(treating, line("X0006", "1", 1000))
    assert treated.reason is Reason.GRADE_C
    item = reclassify_for_insured(treated, insured, diagnoses)
    assert (item.fulamt_ownpay_fen, item.inscp_fen, item.reason) == (0, 1000, None)  # K100 is grade A


def test_insured_rule_keeps_a_line_with_no_national_code_unmapped(treating, insured) -> None:
    (treated,), diagnoses = treated_lines(treating, line("X0004", "1", 1000))
    item = reclassify_for_insured(treated, insured, diagnoses)
    assert (item.fulamt_ownpay_fen, item.reason) == (1000, Reason.UNMAPPED)


def test_apply_agreement_treating_rule_changes_nothing(treating, insured) -> None:
    lines_, diagnoses = treated_lines(treating, line("X0001", "2", 1000))
    agreement = Agreement(TREATING_REGION, INSURED_REGION)
    assert apply_agreement(lines_, agreement, insured, diagnoses) == lines_


def test_apply_agreement_insured_rule(treating, insured) -> None:
    lines_, diagnoses = treated_lines(treating, line("X0001", "2", 1000))
    agreement = Agreement(TREATING_REGION, INSURED_REGION, CatalogueRule.INSURED)
    (item,) = apply_agreement(lines_, agreement, insured, diagnoses)
    assert (item.catalogue_code, item.inscp_fen) == ("L200", 1440)


def test_selfpay_agreement_keeps_unmapped_lines_self_paid(treating, insured) -> None:
    lines_, diagnoses = treated_lines(treating, line("X0001", "1", 500, line_id="1", index=0),
                                      line("NOPE", "1", 700, line_id="2", index=1))
    agreement = Agreement(TREATING_REGION, INSURED_REGION, unmapped=UnmappedAction.SELFPAY)
    _, unmapped = apply_agreement(lines_, agreement, insured, diagnoses)
    assert (unmapped.fulamt_ownpay_fen, unmapped.reason) == (700, Reason.UNMAPPED)


def test_reject_agreement_refuses_an_unmapped_line_naming_it(treating, insured) -> None:
    lines_, diagnoses = treated_lines(treating, line("X0001", "1", 500, line_id="1", index=0),
                                      line("NOPE", "1", 700, line_id="2", index=1))
    agreement = Agreement(TREATING_REGION, INSURED_REGION, unmapped=UnmappedAction.REJECT)
    with pytest.raises(InvalidField) as caught:
        apply_agreement(lines_, agreement, insured, diagnoses)
    assert caught.value.field == "lines[1].code"


def test_reject_agreement_under_the_insured_rule_refuses_a_line_without_target(treating, insured) -> None:
    lines_, diagnoses = treated_lines(treating, line("X0001", "1", 500, line_id="1", index=0),
                                      line("X0001", "1", 500, line_id="2", index=1),
                                      line("X0003", "1", 700, line_id="3", index=2))
    agreement = Agreement(TREATING_REGION, INSURED_REGION, CatalogueRule.INSURED, UnmappedAction.REJECT)
    with pytest.raises(InvalidField) as caught:
        apply_agreement(lines_, agreement, insured, diagnoses)
    assert caught.value.field == "lines[2].code"


def test_reject_agreement_lets_a_fully_mapped_bill_through(treating, insured) -> None:
    lines_, diagnoses = treated_lines(treating, line("X0001", "1", 500))
    agreement = Agreement(TREATING_REGION, INSURED_REGION, unmapped=UnmappedAction.REJECT)
    assert apply_agreement(lines_, agreement, insured, diagnoses) == lines_


# --- agreements file (`[defaults]` and `[[agreements]]` with an unordered pair of regions) ---------

AGREEMENTS = """
[[agreements]]
regions = ["440100", "430100"]
catalogue_rule = "insured"
unmapped = "reject"
note = "Guangzhou and Changsha classify by the insured catalogue"

[[agreements]]
regions = ["310100", "430100"]
"""


def test_parse_agreements_and_national_defaults() -> None:
    agreements = parse_agreements(AGREEMENTS)
    assert agreements.between("440100", "430100") == Agreement(
        "440100", "430100", CatalogueRule.INSURED, UnmappedAction.REJECT)
    # a pair agreement governs both directions
    assert agreements.between("430100", "440100") == Agreement(
        "430100", "440100", CatalogueRule.INSURED, UnmappedAction.REJECT)
    # a listed pair that sets nothing takes the defaults
    assert agreements.between("310100", "430100") == Agreement(
        "310100", "430100", CatalogueRule.TREATING, UnmappedAction.SELFPAY)
    # a pair with no agreement gets the national defaults: 就医地目录, self-paid and flagged
    assert agreements.between("110100", "430100") == Agreement(
        "110100", "430100", CatalogueRule.TREATING, UnmappedAction.SELFPAY)


def test_empty_agreements_file_means_national_defaults() -> None:
    assert parse_agreements("").between("440100", "430100") == Agreement(
        "440100", "430100", CatalogueRule.TREATING, UnmappedAction.SELFPAY)


def test_file_defaults_apply_to_pairs_without_their_own_terms() -> None:
    agreements = parse_agreements('''
[defaults]
unmapped = "reject"

[[agreements]]
regions = ["440100", "430100"]
catalogue_rule = "insured"

[[agreements]]
regions = ["310100", "430100"]
unmapped = "selfpay"
''')
    assert agreements.between("440100", "430100") == Agreement(
        "440100", "430100", CatalogueRule.INSURED, UnmappedAction.REJECT)  # unmapped from [defaults]
    assert agreements.between("310100", "430100").unmapped is UnmappedAction.SELFPAY
    assert agreements.between("110100", "430100") == Agreement(
        "110100", "430100", CatalogueRule.TREATING, UnmappedAction.REJECT)


PAIR = '[[agreements]]\nregions = ["440100", "430100"]\n'


@pytest.mark.parametrize(("text", "field"), [
    (PAIR + 'catalogue_rule = "both"\n', "agreements[0].catalogue_rule"),
    (PAIR + 'unmapped = "ignore"\n', "agreements[0].unmapped"),
    (PAIR + 'colour = "red"\n', "agreements[0].colour"),
    ('[[agreements]]\nregions = ["4401", "430100"]\n', "agreements[0].regions[0]"),
    ('[[agreements]]\nregions = ["440100", 430100]\n', "agreements[0].regions[1]"),
    ('[[agreements]]\nregions = ["440100"]\n', "agreements[0].regions"),
    ('[[agreements]]\nregions = ["440100", "440100"]\n', "agreements[0].regions"),
    ('[[agreements]]\ncatalogue_rule = "insured"\n', "agreements[0].regions"),
    (PAIR + '[[agreements]]\nregions = ["430100", "440100"]\n', "agreements[1].regions"),  # same pair again
    ('[defaults]\nunmapped = "drop"\n', "defaults.unmapped"),
    ('[defaults]\nregions = ["440100", "430100"]\n', "defaults.regions"),
    ('version = 2\n', "version"),
    ('[[agreements]\n', "agreements"),  # not TOML
])
def test_parse_agreements_errors_name_the_key(text: str, field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_agreements(text)
    assert caught.value.field == field
