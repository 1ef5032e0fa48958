"""The nine smart-audit rules (SPEC §12.2 with the readings of §12.6), on hand-worked stays.

Every amount is worked out by hand in the comments. Catalogue, knowledge base and rule library are built from
their file texts, as an operator would write them.
"""

from __future__ import annotations

from datetime import date

import pytest
from conftest import bill, catalogue, csv_row, line

from clearing.errors import InvalidField
from clearing.smart_audit.knowledge import parse_knowledge_base
from clearing.smart_audit.library import Action, Result, RuleId, parse_rule_library
from clearing.smart_audit.model import MemberFacts, OtherStay
from clearing.smart_audit.report import audit_json
from clearing.smart_audit.rules import age_on, audit_stay, cross_stay_findings, line_id_key

KB_HEADER = "national_code,sex,min_age,max_age,min_hospital_level,max_qty_per_day,bed_day,exclusive_group"
KB = parse_knowledge_base("\n".join((
    KB_HEADER,
    "N-UTERUS,F,,,,,,",          # 子宫…: women only
    "N-PROSTATE,M,,,,,,",        # 前列腺…: men only
    "N-CHILD,,,14,,,,",          # 小儿…: up to 14
    "N-TEEN,,14,,,,,",           # from 14 (to test the 29 February birthday)
    "N-LEVEL3,,,,3,,,",          # level-3 hospitals only
    "N-ROUND,,,,,1,,",           # at most 1 a day
    "N-BED,,,,,,1,",             # a bed-day
    "N-NURSE1,,,,,1,,护理等级",   # Ⅰ级护理
    "N-NURSE2,,,,,1,,护理等级",   # Ⅱ级护理
    "N-PLAIN,,,,,,,",            # a row with no restriction
)) + "\n")
CATALOGUE = catalogue(
    csv_row("X-UTERUS", "N-UTERUS", kind="service", name="子宫内膜活检术"),
    csv_row("X-PROSTATE", "N-PROSTATE", kind="service", name="前列腺按摩"),
    csv_row("X-CHILD", "N-CHILD", name="小儿布洛芬"),
    csv_row("X-TEEN", "N-TEEN", name="teen item"),
    csv_row("X-LEVEL3", "N-LEVEL3", kind="service", name="level-3 item"),
    csv_row("X-ROUND", "N-ROUND", kind="service", name="住院诊查费"),
    csv_row("X-ROUND-B", "N-ROUND", relation="narrower", kind="service", name="住院诊查费(专家)"),
    csv_row("X-BED", "N-BED", kind="service", name="普通病房床位费"),
    csv_row("X-NURSE1", "N-NURSE1", kind="service", name="Ⅰ级护理"),
    csv_row("X-NURSE2", "N-NURSE2", kind="service", name="Ⅱ级护理"),
    csv_row("X-DRUG", "N-PLAIN", name="plain drug"),
    csv_row("X-NOKB", "N-NOT-IN-KB", name="no facts"),
    csv_row("X-C", "N-UTERUS", kind="service", name="子宫 C", grade="C"),
    csv_row("X-LOCAL", "", relation="", name="院内制剂"),  # unmapped
    csv_row("X-OLD", "N-UTERUS", kind="service", name="expired", valid_to="2025-12-31"),
)
ALL_DEFAULT = parse_rule_library("")
MAN = MemberFacts(sex="M", birth_date=date(1980, 6, 1))


def run(stay, member=MAN, history=(), library=ALL_DEFAULT):  # noqa: ANN001, ANN201
    return audit_stay(stay, CATALOGUE, KB, library, member, history)


def only(result, rule_id):  # noqa: ANN001, ANN201
    return [item for item in result.findings if item.rule_id is rule_id]


# ---- SEX, AGE, LEVEL ------------------------------------------------------------------------------------


def test_sex_finding_is_the_line_amount_and_the_line_violates() -> None:
    stay = bill(line("X-UTERUS", qty="2", unit_price_fen=12345, line_id="7"),  # 246.90 yuan
                line("X-PROSTATE", line_id="8", index=1))
    result = run(stay)
    [found] = result.findings
    assert (found.rule_id, found.rule_name, found.result, found.action) == (RuleId.SEX, "限性别", Result.DEFINITE,
                                                                           Action.WARN)
    assert (found.amount_fen, found.violating_line_ids, found.involved_line_ids) == (24690, ("7",), ())
    assert "N-UTERUS" in found.evidence
    woman = MemberFacts("F", date(1980, 6, 1))
    assert [item.violating_line_ids for item in run(stay, woman).findings] == [("8",)]


def test_unmapped_and_not_valid_on_date_lines_are_not_audited_but_grade_c_is() -> None:
    stay = bill(line("X-LOCAL", line_id="1"), line("X-OLD", line_id="2", index=1),
                line("X-C", qty="1", unit_price_fen=500, line_id="3", index=2))
    [found] = run(stay).findings
    assert (found.rule_id, found.violating_line_ids, found.amount_fen) == (RuleId.SEX, ("3",), 500)


def test_age_completes_on_the_birthday() -> None:
    born = date(2011, 5, 20)
    assert age_on(born, date(2026, 5, 19)) == 14
    assert age_on(born, date(2026, 5, 20)) == 15
    child = MemberFacts("M", born)
    # 小儿 item (max_age 14): payable the day before the 15th birthday, not on it.
    day_before = bill(line("X-CHILD", service_date="2026-05-19"), admitted_on="2026-05-19", discharged_on="2026-05-21")
    on_birthday = bill(line("X-CHILD", unit_price_fen=800, service_date="2026-05-20"),
                       admitted_on="2026-05-19", discharged_on="2026-05-21")
    assert run(day_before, child).findings == ()
    [found] = run(on_birthday, child).findings
    assert (found.rule_id, found.amount_fen) == (RuleId.AGE, 800)
    assert "15" in found.evidence


def test_born_on_29_february_ages_on_1_march() -> None:
    born = date(2012, 2, 29)
    assert age_on(born, date(2026, 2, 28)) == 13
    assert age_on(born, date(2026, 3, 1)) == 14
    assert age_on(born, date(2028, 2, 29)) == 16
    teen = MemberFacts("F", born)  # N-TEEN: from 14
    on_28th = bill(line("X-TEEN", service_date="2026-02-28"), admitted_on="2026-02-27", discharged_on="2026-03-02")
    on_1st = bill(line("X-TEEN", service_date="2026-03-01"), admitted_on="2026-02-27", discharged_on="2026-03-02")
    assert [item.rule_id for item in run(on_28th, teen).findings] == [RuleId.AGE]
    assert run(on_1st, teen).findings == ()


def test_level_below_the_minimum() -> None:
    assert [item.rule_id for item in run(bill(line("X-LEVEL3"), level=2)).findings] == [RuleId.LEVEL]
    assert run(bill(line("X-LEVEL3"), level=3)).findings == ()


def test_birth_after_admission_is_an_input_error() -> None:
    with pytest.raises(InvalidField) as error:
        run(bill(line("X-DRUG")), MemberFacts("M", date(2026, 3, 2)))
    assert error.value.field == "member.birth_date"


# ---- DAYQTY, BEDDAYS ------------------------------------------------------------------------------------


def test_day_quantity_excess_is_taken_from_the_last_lines_first_with_numeric_ids() -> None:
    # N-ROUND at most 1 a day. Lines "2" (1 × 30.00), "10" (0.5 × 33.33), "3" (1 × 30.00) on one day: in line
    # order 2, 3, 10 (numeric, not "10" < "2"). Σ 2.5, excess 1.5: 0.5 from "10" → round_half_up(1666.5) = 1667,
    # then 1 from "3" → 3000. Amount 4667; "3" and "10" violate, "2" is involved.
    stay = bill(line("X-ROUND", qty="1", unit_price_fen=3000, line_id="2"),
                line("X-ROUND", qty="0.5", unit_price_fen=3333, line_id="10", index=1),
                line("X-ROUND", qty="1", unit_price_fen=3000, line_id="3", index=2))
    [found] = run(stay).findings
    assert (found.rule_id, found.amount_fen) == (RuleId.DAYQTY, 4667)
    assert (found.violating_line_ids, found.involved_line_ids) == (("3", "10"), ("2",))


def test_day_quantity_partial_take_and_shared_national_code() -> None:
    # Two local codes of N-ROUND share its limit: 1 (X-ROUND, line "a") + 1.25 (X-ROUND-B, line "b") on one day.
    stay = bill(line("X-ROUND", qty="1", unit_price_fen=3000, line_id="a"),
                line("X-ROUND-B", qty="1.25", unit_price_fen=3333, line_id="b", index=1))
    # Σ 2.25, excess 1.25, all from "b" (after "a" as strings): round_half_up(1.25 × 3333 = 4166.25) = 4166.
    [found] = run(stay).findings
    assert (found.amount_fen, found.violating_line_ids, found.involved_line_ids) == (4166, ("b",), ("a",))
    stay = bill(line("X-ROUND", qty="1", unit_price_fen=3000, line_id="a"),
                line("X-ROUND-B", qty="0.25", unit_price_fen=3333, line_id="b", index=1))
    # Excess 0.25 from "b": round_half_up(0.25 × 3333 = 833.25) = 833.
    [found] = run(stay).findings
    assert (found.amount_fen, found.violating_line_ids) == (833, ("b",))


def test_day_quantity_counts_per_service_date() -> None:
    stay = bill(line("X-ROUND", line_id="1", service_date="2026-03-02"),
                line("X-ROUND", line_id="2", service_date="2026-03-03", index=1))
    assert run(stay).findings == ()


def test_bed_days_count_lines_wherever_dated_and_take_from_the_last() -> None:
    # Stay 03-01 → 03-04: 3 days. Bed lines: "1" 3 nights on 03-01 at 80.00, "2" 1 night on the discharge day
    # 03-04 at 90.00. Σ 4 > 3, excess 1 from "2" (the last by date): 9000.
    stay = bill(line("X-BED", qty="3", unit_price_fen=8000, line_id="1", service_date="2026-03-01"),
                line("X-BED", qty="1", unit_price_fen=9000, line_id="2", service_date="2026-03-04", index=1),
                admitted_on="2026-03-01", discharged_on="2026-03-04")
    [found] = run(stay).findings
    assert (found.rule_id, found.amount_fen) == (RuleId.BEDDAYS, 9000)
    assert (found.violating_line_ids, found.involved_line_ids) == (("2",), ("1",))


def test_bed_days_same_day_stay_counts_one_day() -> None:
    one = bill(line("X-BED", qty="1"), admitted_on="2026-03-02", discharged_on="2026-03-02")
    two = bill(line("X-BED", qty="1.5", unit_price_fen=1000), admitted_on="2026-03-02", discharged_on="2026-03-02")
    assert run(one).findings == ()
    [found] = run(two).findings
    assert found.amount_fen == 500  # 0.5 × 10.00


# ---- EXCL -----------------------------------------------------------------------------------------------


def test_exclusive_group_keeps_the_largest_amount() -> None:
    # Ⅰ级 30.00 and Ⅱ级 20.00 + 15.00 on 03-02: Ⅱ级 has 35.00, the largest, so it is kept; Ⅰ级's 30.00 violates.
    stay = bill(line("X-NURSE1", unit_price_fen=3000, line_id="1"),
                line("X-NURSE2", unit_price_fen=2000, line_id="2", index=1),
                line("X-NURSE2", unit_price_fen=1500, line_id="3", index=2))
    [found] = only(run(stay), RuleId.EXCL)
    assert (found.amount_fen, found.violating_line_ids, found.involved_line_ids) == (3000, ("1",), ("2", "3"))


def test_exclusive_group_tie_keeps_the_lowest_code() -> None:
    stay = bill(line("X-NURSE2", unit_price_fen=2500, line_id="1"),
                line("X-NURSE1", unit_price_fen=2500, line_id="2", index=1))
    [found] = run(stay).findings
    assert (found.rule_id, found.amount_fen) == (RuleId.EXCL, 2500)
    assert (found.violating_line_ids, found.involved_line_ids) == (("1",), ("2",))  # N-NURSE1 < N-NURSE2 is kept
    assert "kept N-NURSE1" in found.evidence


def test_one_code_of_a_group_twice_on_a_day_is_not_exclusive() -> None:
    stay = bill(line("X-NURSE1", qty="0.5", line_id="1"), line("X-NURSE1", qty="0.5", line_id="2", index=1))
    assert run(stay).findings == ()


# ---- OVERLAP, READMIT -----------------------------------------------------------------------------------


def stay_dates(admitted: str, discharged: str, diagnoses: tuple[str, ...] = ("C34.1",)):  # noqa: ANN201
    return bill(line("X-DRUG", service_date=admitted), admitted_on=admitted, discharged_on=discharged,
                diagnoses=diagnoses)


def other(settlement_id: str, admitted: str, discharged: str, *diagnoses: str) -> OtherStay:
    return OtherStay(settlement_id, date.fromisoformat(admitted), date.fromisoformat(discharged),
                     diagnoses or ("K35",))


def test_a_transfer_on_the_same_day_is_not_an_overlap() -> None:
    stay = stay_dates("2026-03-10", "2026-03-15")
    assert only(run(stay, history=[other("S-before", "2026-03-01", "2026-03-10")]), RuleId.OVERLAP) == []
    assert only(run(stay, history=[other("S-after", "2026-03-15", "2026-03-20")]), RuleId.OVERLAP) == []
    result = run(stay, history=[other("S-1", "2026-03-01", "2026-03-11"), other("S-2", "2026-03-14", "2026-03-16")])
    found = only(result, RuleId.OVERLAP)
    assert [item.evidence.split()[2] for item in found] == ["S-1", "S-2"]  # the history's order
    assert {(item.action, item.amount_fen, item.violating_line_ids) for item in found} == {(Action.BLOCK, 0, ())}


def test_day_15_is_a_readmission_and_day_16_is_not() -> None:
    history = [other("S-1", "2026-03-01", "2026-03-05", "c34.9")]  # same category, compared upper-cased
    day_15 = run(stay_dates("2026-03-20", "2026-03-25", ("C34.1",)), history=history)
    day_16 = run(stay_dates("2026-03-21", "2026-03-26", ("C34.1",)), history=history)
    [found] = day_15.findings
    assert (found.rule_id, found.result, found.amount_fen) == (RuleId.READMIT, Result.SUSPICIOUS, 0)
    assert "S-1" in found.evidence
    assert day_16.findings == ()
    assert len(run(stay_dates("2026-03-05", "2026-03-08"), history=history).findings) == 1  # day 0: a transfer


def test_readmission_needs_the_same_category_and_an_earlier_discharge() -> None:
    history = [other("S-1", "2026-03-01", "2026-03-05", "C35.0")]
    assert run(stay_dates("2026-03-10", "2026-03-12"), history=history).findings == ()
    later = [other("S-2", "2026-03-20", "2026-03-25", "C34.0")]  # discharged after this admission
    assert run(stay_dates("2026-03-10", "2026-03-12"), history=later).findings == ()


def test_an_exempt_chemotherapy_cycle_is_not_a_readmission() -> None:
    history = [other("S-1", "2026-03-01", "2026-03-05", "Z51.1", "C34.1")]
    # The new principal z51.1 (any case, dots ignored) starts with the exempt prefix Z51.1.
    assert run(stay_dates("2026-03-12", "2026-03-14", ("z511", "C34.1")), history=history).findings == ()
    # Same category Z51 but Z51.8 is not exempt.
    assert len(run(stay_dates("2026-03-12", "2026-03-14", ("Z51.8",)), history=history).findings) == 1
    # With `exempt = []` the cycle is a readmission too.
    library = parse_rule_library("[AUD-READMIT]\nexempt = []\ndays = 7\n")
    assert len(run(stay_dates("2026-03-12", "2026-03-14", ("Z51.1",)), history=history, library=library).findings) == 1
    assert run(stay_dates("2026-03-13", "2026-03-14", ("Z51.1",)), history=history, library=library).findings == ()


def test_cross_stay_rules_need_no_bill() -> None:
    found = cross_stay_findings(date(2026, 3, 1), date(2026, 3, 3), ("A01",),
                                [other("S-9", "2026-03-02", "2026-03-04", "A01")], ALL_DEFAULT)
    assert [item.rule_id for item in found] == [RuleId.OVERLAP]


# ---- IDLE -----------------------------------------------------------------------------------------------


def idle_bill(*extra, admitted: str = "2026-03-01", discharged: str = "2026-03-05"):  # noqa: ANN001, ANN201
    """Bed + Ⅰ级护理 on 03-01, 03-02 and 03-03 (lines 1–6), a plain drug on 03-04 (line 7)."""
    lines = []
    for day in ("2026-03-01", "2026-03-02", "2026-03-03"):
        lines.append(line("X-BED", line_id=str(len(lines) + 1), service_date=day, index=len(lines)))
        lines.append(line("X-NURSE1", line_id=str(len(lines) + 1), service_date=day, index=len(lines)))
    lines.append(line("X-DRUG", line_id="7", service_date="2026-03-04", index=len(lines)))
    return bill(*lines, *extra, admitted_on=admitted, discharged_on=discharged)


def test_idle_share_is_compared_exactly() -> None:
    # 4 stay days (03-01..03-04), 3 idle: 30000 > 5000 × 4.
    [found] = run(idle_bill()).findings
    assert (found.rule_id, found.result, found.amount_fen, found.violating_line_ids) == (
        RuleId.IDLE, Result.SUSPICIOUS, 0, ())
    # A drug on 03-03 too: 2 idle of 4, 20000 > 20000 is false.
    assert run(idle_bill(line("X-DRUG", line_id="8", service_date="2026-03-03", index=7))).findings == ()
    # share_bp 7499: 30000 > 29996; 7500: 30000 > 30000 is false.
    assert len(run(idle_bill(), library=parse_rule_library("[AUD-IDLE]\nshare_bp = 7499\n")).findings) == 1
    assert run(idle_bill(), library=parse_rule_library("[AUD-IDLE]\nshare_bp = 7500\n")).findings == ()


def test_idle_lines_without_facts_and_short_stays() -> None:
    # An unmapped line, or one with no knowledge-base row, on 03-02 and 03-03 leaves 1 idle day of 4.
    assert run(idle_bill(line("X-LOCAL", line_id="8", service_date="2026-03-02", index=7),
                         line("X-NOKB", line_id="9", service_date="2026-03-03", index=8))).findings == ()
    # Discharged 03-04: 3 stay days < min_days 4.
    assert run(idle_bill(discharged="2026-03-04")).findings == ()
    # The discharge day is not a stay day: lines dated 03-05 do not count.
    assert len(run(idle_bill(line("X-BED", line_id="8", service_date="2026-03-05", index=7))).findings) == 1


# ---- order, actions, disabled rules ----------------------------------------------------------------------


def test_findings_follow_the_table_then_the_first_line() -> None:
    stay = bill(line("X-PROSTATE", line_id="9", service_date="2026-03-05"),
                line("X-UTERUS", line_id="10", service_date="2026-03-02", index=1),
                line("X-LEVEL3", line_id="1", service_date="2026-03-03", index=2),
                line("X-UTERUS", line_id="2", service_date="2026-03-02", index=3),
                level=2)
    woman = MemberFacts("F", date(1990, 1, 1))
    result = run(stay, woman, history=[other("S-1", "2026-03-09", "2026-03-12")])
    assert [(item.rule_id, item.violating_line_ids) for item in result.findings] == [
        (RuleId.SEX, ("9",)), (RuleId.LEVEL, ("1",)), (RuleId.OVERLAP, ())]
    man = run(stay)
    assert [item.violating_line_ids for item in man.findings if item.rule_id is RuleId.SEX] == [("2",), ("10",)]


def test_disabled_rules_produce_nothing_and_actions_come_from_the_library() -> None:
    stay = bill(line("X-UTERUS"), line("X-LEVEL3", line_id="2", index=1), level=1)
    library = parse_rule_library('[AUD-SEX]\nenabled = false\n[AUD-LEVEL]\naction = "dispute"\n')
    [found] = run(stay, library=library).findings
    assert (found.rule_id, found.action) == (RuleId.LEVEL, Action.DISPUTE)


def test_definite_amount_sums_findings_and_can_exceed_the_total() -> None:
    # A man charged a women's item (10.00, SEX) and a child's item (6.00, AGE): 16.00.
    stay = bill(line("X-UTERUS", unit_price_fen=1000), line("X-CHILD", unit_price_fen=600, line_id="2", index=1))
    output = audit_json(run(stay))
    assert output["definite_amount_fen"] == 1600
    assert [item["rule_id"] for item in output["findings"]] == ["AUD-SEX", "AUD-AGE"]
    # A woman's level-3 item at a level-2 hospital for a man: SEX and LEVEL both count the line's 10.00.
    kb = parse_knowledge_base(KB_HEADER + "\nN-BOTH,F,,,3,,,\n")
    cat = catalogue(csv_row("X-BOTH", "N-BOTH", kind="service"))
    result = audit_stay(bill(line("X-BOTH", unit_price_fen=1000), level=2), cat, kb, ALL_DEFAULT, MAN)
    assert result.definite_amount_fen == 2000 > 1000


def test_line_id_order_is_total() -> None:
    ids = ["9", "10", "1a", "b", "010", "10"]
    assert sorted(ids, key=line_id_key) == ["9", "010", "10", "10", "1a", "b"]


def test_audit_json_shape() -> None:
    output = audit_json(run(bill(line("X-UTERUS", unit_price_fen=1000))))
    assert output == {"findings": [{
        "rule_id": "AUD-SEX", "rule_name": "限性别", "result": "definite", "action": "warn", "amount_fen": 1000,
        "violating_line_ids": ["1"], "involved_line_ids": [], "evidence": output["findings"][0]["evidence"]}],
        "definite_amount_fen": 1000}
