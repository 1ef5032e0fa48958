"""Properties of the smart-audit rules (SPEC §12.2, §12.6) over random stays, knowledge bases and histories.

Self-contained: a fixed small catalogue (two local codes share a national code; one code is unmapped, one
expired), knowledge-base facts drawn per national code, bills of up to 14 lines with digit and letter line ids.
Repeatable (`derandomize=True`) and bounded.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.bill import Bill, make_bill, make_line
from clearing.catalogue import CatalogueRow, parse_catalogue_csv
from clearing.money import format_qty, line_amount_fen
from clearing.smart_audit.knowledge import ItemFacts, KnowledgeBase
from clearing.smart_audit.library import LINE_RULES, Result, RuleId, parse_rule_library
from clearing.smart_audit.model import MemberFacts, OtherStay
from clearing.smart_audit.report import audit_json
from clearing.smart_audit.rules import audit_stay

AUDIT = settings(max_examples=300, derandomize=True, deadline=None, database=None)
NATIONAL = ("N0", "N1", "N2", "N3", "N4", "N5")
CATALOGUE = parse_catalogue_csv(
    "local_code,national_code,relation,kind,name,grade,selfpay_bp,price_cap_fen,restriction,valid_from,valid_to\n"
    + "".join(f"X{index},{code},equivalent,service,item {index},A,0,,,2020-01-01,\n"
              for index, code in enumerate(NATIONAL))
    + "X6,N0,narrower,service,item 6,C,0,,,2020-01-01,\n"  # shares N0 with X0 (and is grade C)
    + "X7,,,drug,院内制剂,A,0,,,2020-01-01,\n"  # unmapped
    + "X8,N1,equivalent,service,old,A,0,,,2020-01-01,2025-12-31\n",  # not valid in 2026
    "440100")
CODES = tuple(f"X{index}" for index in range(9))
LIBRARY = parse_rule_library("[AUD-IDLE]\nmin_days = 2\n")  # short stays reach IDLE too
ADMITTED_EARLIEST = date(2026, 2, 20)


@st.composite
def item_facts(draw, code: str) -> ItemFacts:  # noqa: ANN001
    min_age = draw(st.none() | st.integers(0, 60))
    max_age = draw(st.none() | st.integers(min_age or 0, 90))
    return ItemFacts(
        national_code=code, sex=draw(st.sampled_from((None, None, "M", "F"))), min_age=min_age, max_age=max_age,
        min_hospital_level=draw(st.sampled_from((None, None, 2, 3))),
        max_qty_per_day_e4=draw(st.none() | st.sampled_from((5_000, 10_000, 20_000, 15_000))),
        bed_day=draw(st.booleans()), exclusive_group=draw(st.sampled_from(("", "", "g1", "g2"))))


@st.composite
def knowledge_bases(draw) -> KnowledgeBase:  # noqa: ANN001
    chosen = draw(st.lists(st.sampled_from(NATIONAL), unique=True))
    return KnowledgeBase("test", tuple(draw(item_facts(code)) for code in sorted(chosen)))


@st.composite
def stays(draw) -> Bill:  # noqa: ANN001
    admitted_on = ADMITTED_EARLIEST + timedelta(days=draw(st.integers(0, 30)))
    nights = draw(st.integers(0, 8))
    ids = draw(st.lists(st.integers(1, 30).map(str) | st.sampled_from(("a", "b", "1a", "z9")), min_size=1,
                        max_size=14, unique=True))
    lines = []
    for index, line_id in enumerate(ids):
        qty_e4 = draw(st.sampled_from((2_500, 5_000, 10_000, 10_000, 20_000, 30_000, 12_345)))
        price = draw(st.integers(1, 9_999))
        day = admitted_on + timedelta(days=draw(st.integers(0, nights)))
        lines.append(make_line(index, line_id, draw(st.sampled_from(CODES)), format_qty(qty_e4), price,
                               line_amount_fen(qty_e4, price), day.isoformat()))
    return make_bill("440100", "H44010000001", draw(st.integers(1, 3)), admitted_on.isoformat(),
                     (admitted_on + timedelta(days=nights)).isoformat(), False,
                     [draw(st.sampled_from(("C34.1", "C34", "Z51.1", "K35")))], tuple(lines))


@st.composite
def histories(draw) -> tuple[OtherStay, ...]:  # noqa: ANN001
    stays_drawn = []
    for number in range(draw(st.integers(0, 3))):
        admitted_on = ADMITTED_EARLIEST + timedelta(days=draw(st.integers(-30, 40)))
        stays_drawn.append(OtherStay(f"S{number}", admitted_on, admitted_on + timedelta(days=draw(st.integers(0, 9))),
                                     (draw(st.sampled_from(("C34.9", "K35", "Z51.1"))),)))
    return tuple(stays_drawn)


members = st.builds(MemberFacts, st.sampled_from(("M", "F")),
                    st.dates(date(1930, 1, 1), ADMITTED_EARLIEST))


@AUDIT
@given(stays(), knowledge_bases(), members, histories())
def test_a_definite_amount_never_exceeds_the_bill_total(stay: Bill, kb: KnowledgeBase, member: MemberFacts,
                                                       history: tuple[OtherStay, ...]) -> None:
    result = audit_stay(stay, CATALOGUE, kb, LIBRARY, member, history)
    by_line = {line.line_id: line.amount_fen for line in stay.lines}
    for found in result.findings:
        assert 0 <= found.amount_fen <= stay.total_fen
        assert found.amount_fen <= sum(by_line[line_id] for line_id in found.violating_line_ids)
        assert not set(found.violating_line_ids) & set(found.involved_line_ids)
        if found.result is Result.SUSPICIOUS or found.rule_id is RuleId.OVERLAP:
            assert found.amount_fen == 0
    for rule in RuleId:  # one rule never counts a line twice; several rules may (SEX and AGE on one line)
        assert sum(item.amount_fen for item in result.findings if item.rule_id is rule) <= stay.total_fen
    assert result.definite_amount_fen == sum(item.amount_fen for item in result.findings
                                             if item.result is Result.DEFINITE)


def national_of(stay: Bill, line_id: str) -> tuple[str, date]:
    line = next(line for line in stay.lines if line.line_id == line_id)
    row = CATALOGUE.row_on(line.code, line.service_date)
    assert isinstance(row, CatalogueRow)
    return row.national_code, line.service_date


@AUDIT
@given(stays(), knowledge_bases(), members)
def test_removing_the_violating_lines_removes_the_finding(stay: Bill, kb: KnowledgeBase, member: MemberFacts) -> None:
    result = audit_stay(stay, CATALOGUE, kb, LIBRARY, member)
    for found in result.findings:
        if found.rule_id not in LINE_RULES:
            continue
        assert found.violating_line_ids  # a line rule always names what violates
        kept = tuple(line for line in stay.lines if line.line_id not in found.violating_line_ids)
        if not kept:
            continue
        again = audit_stay(replace(stay, lines=kept), CATALOGUE, kb, LIBRARY, member)
        same_rule = [item for item in again.findings if item.rule_id is found.rule_id]
        if found.rule_id is RuleId.BEDDAYS:
            assert same_rule == []
        elif found.rule_id is RuleId.DAYQTY:
            key = national_of(stay, found.violating_line_ids[0])
            assert all(national_of(stay, item.violating_line_ids[0]) != key for item in same_rule)
        elif found.rule_id is RuleId.EXCL:
            def group_key(line_id: str) -> tuple[date, str]:
                code, day = national_of(stay, line_id)
                return day, kb.facts(code).exclusive_group
            key = group_key(found.violating_line_ids[0])
            assert all(group_key(item.violating_line_ids[0]) != key for item in same_rule)
        else:  # SEX, AGE, LEVEL: the line itself is gone
            assert all(item.violating_line_ids != found.violating_line_ids for item in same_rule)


@AUDIT
@given(stays(), knowledge_bases(), members, histories(), st.randoms(use_true_random=False))
def test_findings_do_not_depend_on_the_order_of_the_lines(stay: Bill, kb: KnowledgeBase, member: MemberFacts,
                                                          history: tuple[OtherStay, ...], rng) -> None:  # noqa: ANN001
    shuffled = list(stay.lines)
    rng.shuffle(shuffled)
    first = audit_json(audit_stay(stay, CATALOGUE, kb, LIBRARY, member, history))
    second = audit_json(audit_stay(replace(stay, lines=tuple(shuffled)), CATALOGUE, kb, LIBRARY, member, history))
    assert first == second
