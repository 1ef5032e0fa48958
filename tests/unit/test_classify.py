"""Line classification (费用分割) by the treating catalogue (SPEC §4.2): `clearing/classify.py`."""

from __future__ import annotations

import pytest

from conftest import bill, catalogue, csv_row, line

from clearing.catalogue import Grade
from clearing.classify import LineClass, Reason, classify_bill, restriction_satisfied


def classify_one(row: str | None, *, qty: str = "1", unit_price_fen: int = 1000,
                 diagnoses: tuple[str, ...] = ("C34.1",), code: str = "X0001",
                 service_date: str = "2026-03-02") -> LineClass:
    rows = (row,) if row is not None else (csv_row("OTHER"),)
    bill_ = bill(line(code, qty, unit_price_fen, service_date=service_date), diagnoses=diagnoses)
    (item,) = classify_bill(bill_, catalogue(*rows))
    assert item.fulamt_ownpay_fen + item.overlmt_selfpay_fen + item.preselfpay_fen + item.inscp_fen == \
        item.line.amount_fen
    return item


def parts(item: LineClass) -> tuple[int, int, int, int]:
    """(全自费 fulamt_ownpay, 超限价 overlmt_selfpay, 先行自付 preselfpay, 政策范围内 inscp)."""
    return item.fulamt_ownpay_fen, item.overlmt_selfpay_fen, item.preselfpay_fen, item.inscp_fen


def test_grade_a_is_wholly_in_scope() -> None:
    item = classify_one(csv_row("X0001", grade="A"), qty="2", unit_price_fen=1500)
    assert parts(item) == (0, 0, 0, 3000)  # 2 × 1500 = 3000, all in scope
    assert item.reason is None
    assert item.grade is Grade.A
    assert item.national_code == "N0001"
    assert item.catalogue_code == "X0001"
    assert item.catalogue_region == "440100"


def test_grade_a_ignores_selfpay_bp() -> None:
    item = classify_one(csv_row("X0001", grade="A", selfpay_bp=2000), qty="2", unit_price_fen=1500)
    assert parts(item) == (0, 0, 0, 3000)  # selfpay_bp is ignored for grade A
    assert item.selfpay_bp == 0


def test_grade_b_pays_its_share_first() -> None:
    item = classify_one(csv_row("X0001", grade="B", selfpay_bp=1000), qty="2", unit_price_fen=1500)
    # amount 3000; preselfpay = 3000 × 10 % = 300; inscp = 3000 − 300 = 2700
    assert parts(item) == (0, 0, 300, 2700)
    assert item.reason is None
    assert item.selfpay_bp == 1000


def test_grade_b_preselfpay_rounds_half_up() -> None:
    item = classify_one(csv_row("X0001", grade="B", selfpay_bp=1000), qty="1", unit_price_fen=25)
    # 25 × 10 % = 2.5 → 3; inscp = 25 − 3 = 22
    assert parts(item) == (0, 0, 3, 22)


def test_grade_a_over_the_price_cap() -> None:
    item = classify_one(csv_row("X0001", grade="A", price_cap_fen=1200), qty="2", unit_price_fen=1500)
    # amount 2 × 1500 = 3000; over the cap (1500 − 1200) × 2 = 600; inscp 3000 − 600 = 2400
    assert parts(item) == (0, 600, 0, 2400)
    assert item.reason is Reason.OVER_CAP
    assert item.price_cap_fen == 1200


def test_grade_b_over_the_cap_takes_preselfpay_on_the_capped_amount() -> None:
    item = classify_one(csv_row("X0001", grade="B", selfpay_bp=2000, price_cap_fen=1200),
                        qty="2.5", unit_price_fen=1500)
    # amount 2.5 × 1500 = 3750; overlmt (1500 − 1200) × 2.5 = 750;
    # preselfpay = 20 % of (3750 − 750 = 3000) = 600 (not 20 % of 3750 = 750); inscp 3750 − 750 − 600 = 2400
    assert parts(item) == (0, 750, 600, 2400)
    assert item.reason is Reason.OVER_CAP


@pytest.mark.parametrize("unit_price_fen", [1200, 1000])
def test_price_at_or_below_the_cap_has_no_over_cap_part(unit_price_fen: int) -> None:
    item = classify_one(csv_row("X0001", grade="A", price_cap_fen=1200), qty="3", unit_price_fen=unit_price_fen)
    assert parts(item) == (0, 0, 0, 3 * unit_price_fen)
    assert item.reason is None


def test_over_cap_with_fractional_qty_rounds_half_up() -> None:
    item = classify_one(csv_row("X0001", grade="A", price_cap_fen=1000), qty="0.5", unit_price_fen=1001)
    # amount 0.5 × 1001 = 500.5 → 501; overlmt (1001 − 1000) × 0.5 = 0.5 → 1; inscp 501 − 1 = 500
    assert parts(item) == (0, 1, 0, 500)


def test_grade_c_is_wholly_self_paid_and_never_over_cap() -> None:
    item = classify_one(csv_row("X0001", grade="C", selfpay_bp=3000, price_cap_fen=1200),
                        qty="2", unit_price_fen=1500)
    assert parts(item) == (3000, 0, 0, 0)  # the whole 3000 is 全自费, no 600 over the cap
    assert item.reason is Reason.GRADE_C


RESTRICTED_ROW = csv_row("X0001", grade="A", restriction="限肺癌 icd:C34,C78")


@pytest.mark.parametrize("diagnoses", [
    ("C34.1",),
    ("c34.1",),  # case-insensitive
    ("C341",),  # dots ignored: the undotted form of C34.1
    ("I10", "C78.0"),  # any diagnosis, any prefix
    ("C34",),
])
def test_restriction_satisfied_keeps_the_line_in_scope(diagnoses: tuple[str, ...]) -> None:
    item = classify_one(RESTRICTED_ROW, qty="2", unit_price_fen=1500, diagnoses=diagnoses)
    assert parts(item) == (0, 0, 0, 3000)
    assert item.reason is None


@pytest.mark.parametrize("diagnoses", [
    ("I10",),
    ("C33",),  # C33 does not start with C34
    ("E11.9", "J18.0"),
    ("D34.1",),
])
def test_restriction_not_satisfied_is_wholly_self_paid(diagnoses: tuple[str, ...]) -> None:
    item = classify_one(RESTRICTED_ROW, qty="2", unit_price_fen=1500, diagnoses=diagnoses)
    assert parts(item) == (3000, 0, 0, 0)
    assert item.reason is Reason.RESTRICTED


def test_restriction_prefix_written_with_a_dot() -> None:
    row = csv_row("X0001", grade="A", restriction="icd:c34.1")
    assert classify_one(row, diagnoses=("C34.10",)).reason is None  # "C3410" starts with "C341"
    assert classify_one(row, diagnoses=("C34.2",)).reason is Reason.RESTRICTED


def test_restriction_without_icd_list_counts_as_satisfied() -> None:
    item = classify_one(csv_row("X0001", grade="A", restriction="限二级及以上医院"), diagnoses=("I10",))
    assert parts(item) == (0, 0, 0, 1000)
    assert item.reason is None


def test_restricted_grade_b_over_cap_is_wholly_self_paid() -> None:
    row = csv_row("X0001", grade="B", selfpay_bp=1000, price_cap_fen=500, restriction="icd:C34")
    item = classify_one(row, qty="2", unit_price_fen=1500, diagnoses=("I10",))
    assert parts(item) == (3000, 0, 0, 0)  # no over-cap or preselfpay split once it is restricted
    assert item.reason is Reason.RESTRICTED


@pytest.mark.parametrize(("prefixes", "diagnoses", "expected"), [
    ((), ("I10",), True),
    (("C34",), ("c34.1",), True),
    (("C341",), ("C34.1",), True),  # dots ignored on both sides
    (("C34",), ("C341",), True),  # an undotted diagnosis
    (("C34",), ("I10",), False),
    (("C34", "C78"), ("I10", "C78.1"), True),
])
def test_restriction_satisfied(prefixes: tuple[str, ...], diagnoses: tuple[str, ...], expected: bool) -> None:
    assert restriction_satisfied(prefixes, diagnoses) is expected


def test_code_absent_from_the_catalogue_is_unmapped() -> None:
    item = classify_one(None, qty="2", unit_price_fen=1500)
    assert parts(item) == (3000, 0, 0, 0)
    assert item.reason is Reason.UNMAPPED
    assert item.national_code == ""


def test_row_with_empty_national_code_is_unmapped() -> None:
    item = classify_one(csv_row("X0001", national_code="", relation="", grade="A"), qty="2", unit_price_fen=1500)
    assert parts(item) == (3000, 0, 0, 0)
    assert item.reason is Reason.UNMAPPED


def test_code_with_no_row_valid_on_the_service_date() -> None:
    row = csv_row("X0001", grade="A", valid_from="2026-03-05")
    before = classify_one(row, qty="2", unit_price_fen=1500, service_date="2026-03-04")
    assert parts(before) == (3000, 0, 0, 0)
    assert before.reason is Reason.NOT_VALID_ON_DATE
    on_the_day = classify_one(row, qty="2", unit_price_fen=1500, service_date="2026-03-05")
    assert parts(on_the_day) == (0, 0, 0, 3000)  # valid_from is inclusive


def test_each_line_uses_the_row_valid_on_its_own_service_date() -> None:
    versions = catalogue(
        csv_row("X0001", grade="B", selfpay_bp=1000, valid_from="2025-01-01", valid_to="2026-03-04"),
        csv_row("X0001", grade="A", valid_from="2026-03-05"),
    )
    bill_ = bill(line("X0001", "1", 1000, service_date="2026-03-04", line_id="a", index=0),
                 line("X0001", "1", 1000, service_date="2026-03-05", line_id="b", index=1))
    old, new = classify_bill(bill_, versions)
    assert parts(old) == (0, 0, 100, 900)  # grade B, 10 % of 1000 = 100 first
    assert parts(new) == (0, 0, 0, 1000)  # grade A from 2026-03-05


@pytest.mark.parametrize(("qty", "unit_price_fen", "expected"), [
    ("0.3333", 1000, (0, 0, 33, 300)),  # amount 333.3 → 333; 10 % = 33.3 → 33; 333 − 33 = 300
    ("0.6667", 1000, (0, 0, 67, 600)),  # amount 666.7 → 667; 10 % = 66.7 → 67; 667 − 67 = 600
    ("0.0005", 1000, (0, 0, 0, 1)),  # amount 0.5 → 1; 10 % = 0.1 → 0; 1 − 0 = 1
    ("1.5", 3, (0, 0, 1, 4)),  # amount 4.5 → 5; 10 % = 0.5 → 1; 5 − 1 = 4
])
def test_fractional_quantities_round_and_still_add_up(qty: str, unit_price_fen: int,
                                                      expected: tuple[int, int, int, int]) -> None:
    item = classify_one(csv_row("X0001", grade="B", selfpay_bp=1000), qty=qty, unit_price_fen=unit_price_fen)
    assert parts(item) == expected


def test_a_mixed_bill_sums_to_its_total() -> None:
    book = catalogue(
        csv_row("A1", "N1", grade="A"),
        csv_row("B1", "N2", grade="B", selfpay_bp=1500, price_cap_fen=800),
        csv_row("C1", "N3", grade="C"),
        csv_row("R1", "N4", grade="A", restriction="icd:E11"),
    )
    bill_ = bill(
        line("A1", "3", 2000, line_id="1", index=0),  # 6000 in scope
        line("B1", "4", 1000, line_id="2", index=1),  # 4000; over (1000−800)×4=800; 15 % of 3200 = 480; 2720
        line("C1", "1", 555, line_id="3", index=2),  # 555 全自费
        line("R1", "2", 100, line_id="4", index=3),  # 200 restricted (diagnosis C34.1 is not E11)
        line("ZZ", "1", 70, line_id="5", index=4),  # 70 unmapped
    )
    items = classify_bill(bill_, book)
    assert [parts(item) for item in items] == [
        (0, 0, 0, 6000), (0, 800, 480, 2720), (555, 0, 0, 0), (200, 0, 0, 0), (70, 0, 0, 0)]
    assert [item.reason for item in items] == [
        None, Reason.OVER_CAP, Reason.GRADE_C, Reason.RESTRICTED, Reason.UNMAPPED]
    # 6000 + 4000 + 555 + 200 + 70 = 10825
    assert sum(sum(parts(item)) for item in items) == 10_825
    assert items[1].selfpay_out_fen == 1280  # 800 + 480


def test_icd_lists_accept_full_width_colons_and_commas():
    from clearing.catalogue import parse_icd_prefixes

    # A full-width colon used to yield no list at all, so the restriction silently counted as met.
    assert parse_icd_prefixes("限肺癌 icd：C34，C78") == ("C34", "C78")
    assert parse_icd_prefixes("限二线用药") == ()


# ---------------------------------------------------------------------------------------------
# The clearing house re-derives a claimed classification (issue 9, item 16)
# ---------------------------------------------------------------------------------------------

def test_a_classification_the_catalogue_reproduces_passes_the_check() -> None:
    from clearing.classify import check_classification

    rows = (csv_row("X0001", grade="B", selfpay_bp=1000), csv_row("X0002", national_code="N0002", grade="C"))
    claimed = classify_bill(bill(line("X0001", "2", 1500), line("X0002", "1", 700, line_id="2", index=1)),
                            catalogue(*rows))
    check_classification(claimed, catalogue(*rows), ("C34.1",), version=3)  # no error


@pytest.mark.parametrize(("changes", "field"), [
    ({"preselfpay_fen": 400, "inscp_fen": 2600}, "claim.lines[0].preselfpay_fen"),  # still adds up to 3000
    ({"grade": Grade.A}, "claim.lines[0].grade"),
    ({"reason": Reason.GRADE_C}, "claim.lines[0].reason"),
    ({"national_code": "N9999"}, "claim.lines[0].national_code"),
    ({"selfpay_bp": 500}, "claim.lines[0].selfpay_bp"),
])
def test_a_claimed_split_that_differs_is_refused_naming_the_first_differing_field(changes, field) -> None:
    from dataclasses import replace

    from clearing.classify import check_classification
    from clearing.errors import InvalidField

    rows = (csv_row("X0001", grade="B", selfpay_bp=1000),)
    (honest,) = classify_bill(bill(line("X0001", "2", 1500)), catalogue(*rows))
    with pytest.raises(InvalidField) as caught:
        check_classification((replace(honest, **changes),), catalogue(*rows), ("C34.1",), version=3)
    assert caught.value.field == field
    assert "version 3" in caught.value.reason
