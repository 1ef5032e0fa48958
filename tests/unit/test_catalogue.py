"""A region's versioned catalogue and its CSV import (SPEC §4.1, §4.2): `clearing/catalogue.py`."""

from __future__ import annotations

from datetime import date

import pytest

from conftest import HEADER, catalogue, catalogue_csv, csv_row

from clearing.catalogue import Catalogue, Grade, Kind, Lookup, Relation, parse_catalogue_csv, parse_icd_prefixes
from clearing.errors import InvalidField


def import_error_field(text: str) -> str:
    with pytest.raises(InvalidField) as caught:
        parse_catalogue_csv(text, "440100")
    return caught.value.field


def test_a_full_row_parses() -> None:
    parsed = catalogue(csv_row("X0001", "XL01XE", "narrower", "drug", "吉非替尼片", "B", 1500, 12000,
                               "限晚期非小细胞肺癌 icd:C34,C78", "2026-01-01", "2026-12-31"))
    (row,) = parsed.rows
    assert row.local_code == "X0001"
    assert row.national_code == "XL01XE"
    assert row.relation is Relation.NARROWER
    assert row.kind is Kind.DRUG
    assert row.name == "吉非替尼片"
    assert row.grade is Grade.B
    assert row.selfpay_bp == 1500
    assert row.price_cap_fen == 12000
    assert row.icd_prefixes == ("C34", "C78")
    assert row.valid_from == date(2026, 1, 1)
    assert row.valid_to == date(2026, 12, 31)
    assert parsed.region == "440100"


def test_empty_cap_and_valid_to_mean_none() -> None:
    (row,) = catalogue(csv_row("X0001")).rows
    assert row.price_cap_fen is None
    assert row.valid_to is None
    assert row.selfpay_bp == 0
    assert row.icd_prefixes == ()


def test_byte_order_mark_is_accepted() -> None:
    parsed = parse_catalogue_csv("\ufeff" + catalogue_csv(csv_row("X0001")), "440100")
    assert [row.local_code for row in parsed.rows] == ["X0001"]


def test_extra_columns_are_accepted_and_ignored() -> None:
    text = ("remark," + HEADER + ",source\n"
            "hello," + csv_row("X0001", grade="B", selfpay_bp=1000) + ",nhsa\n")
    (row,) = parse_catalogue_csv(text, "440100").rows
    assert (row.local_code, row.grade, row.selfpay_bp) == ("X0001", Grade.B, 1000)


def test_columns_in_another_order_are_read_by_name() -> None:
    text = ("grade,local_code,national_code,relation,kind,name,selfpay_bp,price_cap_fen,restriction,"
            "valid_from,valid_to\n"
            "C,X0009,N9,wider,service,床位费,0,,,2026-01-01,\n")
    (row,) = parse_catalogue_csv(text, "440100").rows
    assert (row.local_code, row.grade, row.kind, row.relation) == ("X0009", Grade.C, Kind.SERVICE, Relation.WIDER)


def test_missing_column_is_an_error() -> None:
    text = HEADER.replace(",restriction", "") + "\n"
    assert import_error_field(text) == "header"


@pytest.mark.parametrize(("row_kwargs", "column"), [
    ({"kind": "device"}, "kind"),
    ({"relation": "similar"}, "relation"),
    ({"grade": "D"}, "grade"),
    ({"grade": ""}, "grade"),
    ({"selfpay_bp": "abc"}, "selfpay_bp"),
    ({"selfpay_bp": "10001"}, "selfpay_bp"),  # more than 100 %
    ({"selfpay_bp": "-5"}, "selfpay_bp"),
    ({"price_cap_fen": "12.5"}, "price_cap_fen"),  # money is integer fen
    ({"price_cap_fen": "１２００"}, "price_cap_fen"),  # full-width digits are not ASCII integers
    ({"selfpay_bp": "²"}, "selfpay_bp"),  # str.isdigit() would take a superscript two
    ({"valid_from": "2026-02-30"}, "valid_from"),
    ({"valid_from": ""}, "valid_from"),
    ({"valid_to": "31/12/2026"}, "valid_to"),
    ({"valid_from": "2026-06-01", "valid_to": "2026-05-31"}, "valid_to"),  # ends before it starts
])
def test_bad_value_names_row_and_column(row_kwargs: dict, column: str) -> None:
    # The header is row 1, so the third data row is row 4.
    text = catalogue_csv(csv_row("X0001"), csv_row("X0002"), csv_row("X0003", **row_kwargs))
    assert import_error_field(text) == f"row 4.{column}"


def test_missing_local_code_names_the_row() -> None:
    text = catalogue_csv(csv_row("X0001"), csv_row(""))
    assert import_error_field(text) == "row 3.local_code"


def test_grade_is_case_insensitive() -> None:
    (row,) = catalogue(csv_row("X0001", grade="b", selfpay_bp=1000)).rows
    assert row.grade is Grade.B


def test_unmapped_row_has_empty_national_code_and_no_relation() -> None:
    (row,) = catalogue(csv_row("X0001", national_code="", relation="")).rows
    assert row.national_code == ""
    assert row.relation is None


def test_overlapping_validity_is_an_import_error() -> None:
    text = catalogue_csv(
        csv_row("X0001", valid_from="2025-01-01", valid_to="2025-12-31"),
        csv_row("X0002"),
        csv_row("X0001", valid_from="2025-12-31", valid_to=""),  # shares 2025-12-31: ranges are inclusive
    )
    assert import_error_field(text) == "row 4.valid_from"


def test_open_row_followed_by_a_later_one_overlaps() -> None:
    text = catalogue_csv(csv_row("X0001", valid_from="2025-01-01"), csv_row("X0001", valid_from="2026-01-01"))
    assert import_error_field(text) == "row 3.valid_from"


def test_overlap_is_found_whatever_the_file_order() -> None:
    text = catalogue_csv(
        csv_row("X0001", valid_from="2026-01-01", valid_to="2026-06-30"),
        csv_row("X0001", valid_from="2025-01-01", valid_to="2026-01-01"),  # ends on the other's first day
    )
    # Sorted by valid_from the 2026 row comes second; it is file row 2.
    assert import_error_field(text) == "row 2.valid_from"


def test_adjacent_validity_ranges_are_fine() -> None:
    parsed = catalogue(csv_row("X0001", valid_from="2025-01-01", valid_to="2025-12-31", grade="B", selfpay_bp=1000),
                       csv_row("X0001", valid_from="2026-01-01", valid_to="", grade="A"))
    assert len(parsed.rows) == 2


@pytest.fixture
def versioned():
    """X0001: grade B in 2025, grade A from 2026-01-01 to 2026-06-30, nothing after; X0002 open."""
    return catalogue(
        csv_row("X0001", valid_from="2025-01-01", valid_to="2025-12-31", grade="B", selfpay_bp=1000),
        csv_row("X0001", valid_from="2026-01-01", valid_to="2026-06-30", grade="A"),
        csv_row("X0002", valid_from="2026-03-01", valid_to=""),
    )


@pytest.mark.parametrize(("day", "grade"), [
    (date(2025, 1, 1), Grade.B),  # valid_from is inclusive
    (date(2025, 7, 1), Grade.B),
    (date(2025, 12, 31), Grade.B),  # valid_to is inclusive
    (date(2026, 1, 1), Grade.A),
    (date(2026, 6, 30), Grade.A),
])
def test_row_on_picks_the_version_valid_that_day(versioned, day: date, grade: Grade) -> None:
    found = versioned.row_on("X0001", day)
    assert not isinstance(found, Lookup)
    assert found.grade is grade


@pytest.mark.parametrize("day", [date(2024, 12, 31), date(2026, 7, 1), date(2030, 1, 1)])
def test_row_on_outside_every_version_is_not_valid_on_date(versioned, day: date) -> None:
    assert versioned.row_on("X0001", day) is Lookup.NOT_VALID_ON_DATE


def test_open_ended_row(versioned) -> None:
    assert versioned.row_on("X0002", date(2026, 2, 28)) is Lookup.NOT_VALID_ON_DATE
    assert versioned.row_on("X0002", date(2026, 3, 1)).local_code == "X0002"
    assert versioned.row_on("X0002", date(2099, 12, 31)).local_code == "X0002"


def test_row_on_unknown_code(versioned) -> None:
    assert versioned.row_on("X9999", date(2026, 3, 1)) is Lookup.UNKNOWN_CODE


@pytest.fixture
def with_gap():
    """X0001 valid in two ranges with a gap (listed out of date order), X0002 on a single day."""
    return catalogue(
        csv_row("X0001", valid_from="2026-07-01", valid_to="", grade="A"),
        csv_row("X0001", valid_from="2026-01-01", valid_to="2026-03-31", grade="B", selfpay_bp=1000),
        csv_row("X0002", valid_from="2026-03-01", valid_to="2026-03-01"),
    )


def test_ranges_by_code_keeps_date_order_and_closes_the_open_end(with_gap) -> None:
    ranges = with_gap.ranges_by_code["X0001"]
    assert [(valid_from, valid_to, row.grade) for valid_from, valid_to, row in ranges] == [
        (date(2026, 1, 1), date(2026, 3, 31), Grade.B),
        (date(2026, 7, 1), date.max, Grade.A),
    ]
    assert ranges[1][2].valid_to is None  # the row itself still says "open"
    assert [row for _, _, row in ranges] == list(with_gap.by_code["X0001"])
    assert set(with_gap.ranges_by_code) == {"X0001", "X0002"}


@pytest.mark.parametrize(("day", "grade"), [
    (date(2025, 12, 31), None),
    (date(2026, 1, 1), Grade.B),
    (date(2026, 3, 31), Grade.B),
    (date(2026, 4, 1), None),  # the gap
    (date(2026, 6, 30), None),
    (date(2026, 7, 1), Grade.A),
    (date.max, Grade.A),  # an open end reaches the last representable day
])
def test_row_on_a_code_valid_in_two_ranges_with_a_gap(with_gap, day: date, grade: Grade | None) -> None:
    found = with_gap.row_on("X0001", day)
    if grade is None:
        assert found is Lookup.NOT_VALID_ON_DATE
    else:
        assert not isinstance(found, Lookup) and found.grade is grade


def test_row_on_a_one_day_range(with_gap) -> None:
    assert with_gap.row_on("X0002", date(2026, 2, 28)) is Lookup.NOT_VALID_ON_DATE
    assert with_gap.row_on("X0002", date(2026, 3, 1)).local_code == "X0002"
    assert with_gap.row_on("X0002", date(2026, 3, 2)) is Lookup.NOT_VALID_ON_DATE


def test_the_index_is_not_part_of_a_catalogues_value(with_gap) -> None:
    again = Catalogue(with_gap.region, with_gap.rows)
    assert again == with_gap and "ranges_by_code" not in repr(again)
    assert again.ranges_by_code == with_gap.ranges_by_code


def test_rows_for_national_lists_valid_rows_by_local_code() -> None:
    parsed = catalogue(
        csv_row("L300", "N1", "narrower"),
        csv_row("L100", "N1", "wider"),
        csv_row("L200", "N1", "equivalent", valid_from="2026-04-01"),
        csv_row("L400", "N2"),
        csv_row("L500", ""),  # unmapped: not listed under any national code
    )
    assert [row.local_code for row in parsed.rows_for_national("N1", date(2026, 3, 1))] == ["L100", "L300"]
    assert [row.local_code for row in parsed.rows_for_national("N1", date(2026, 4, 1))] == ["L100", "L200", "L300"]
    assert parsed.rows_for_national("N9", date(2026, 3, 1)) == ()
    assert parsed.rows_for_national("", date(2026, 3, 1)) == ()


@pytest.mark.parametrize(("restriction", "prefixes"), [
    ("", ()),
    ("限二级及以上医院使用", ()),  # informational: no icd list
    ("icd:C34", ("C34",)),
    ("icd:C34,C78", ("C34", "C78")),
    ("限肺癌 icd: c34.1, C78 ", ("C341", "C78")),  # case and dots are normalised
    ("ICD:E11", ("E11",)),
    ("限肿瘤患者 icd:C", ("C",)),  # the chapter letter alone, as the generator writes for 肿瘤/癌
    ("icd:I2,I50", ("I2", "I50")),  # a letter and one digit: a block of categories
    ("icd:C34.100x001", ("C34100X001",)),  # a full 医保版 code
    ("限二线治疗 icd：C34，C78，\u3000C79.5", ("C34", "C78", "C795")),  # full-width colon, commas and space
    ("（icd:C34,C78）限二线治疗", ("C34", "C78")),  # a closing bracket ends the list; text may follow
    ("icd:E11；限胰岛素治疗失败", ("E11",)),  # so does a semicolon
    ("icd:E11;限胰岛素治疗失败", ("E11",)),
    ("限糖尿病 icd:E10,E11,E14。", ("E10", "E11", "E14")),  # and a full stop
])
def test_parse_icd_prefixes(restriction: str, prefixes: tuple[str, ...]) -> None:
    assert parse_icd_prefixes(restriction) == prefixes


@pytest.mark.parametrize("restriction", [
    pytest.param("icd:C34 a", id="a-word-after-the-list"),  # used to add the prefix A: every A-code met it
    pytest.param("限肺癌 icd:C34 限二线", id="text-after-the-list-without-a-closing-mark"),
    pytest.param("icd:C34 C78", id="prefixes-separated-by-a-space"),
    pytest.param("icd:", id="no-prefix-at-all"),  # used to give no list: the restriction counted as met
    pytest.param("限肺癌 icd： ", id="full-width-colon-and-no-prefix"),
    pytest.param("icd:C34,", id="trailing-comma"),
    pytest.param("icd:C34,,C78", id="empty-item"),
    pytest.param("icd:34", id="digits-without-a-letter"),
    pytest.param("icd:CC", id="two-letters"),
    pytest.param("icd:C345.1", id="dot-after-four-characters"),
    pytest.param("icd:C34.", id="trailing-dot"),
    pytest.param("icd:C34-C36", id="a-range"),
    pytest.param("icd:ı", id="non-ascii-letter-that-upper-cases-to-I"),
    pytest.param("icd:C34；限二线 icd:C78", id="two-lists"),
])
def test_icd_list_with_anything_but_code_prefixes_is_an_import_error_naming_the_row(restriction: str) -> None:
    with pytest.raises(InvalidField) as caught:
        catalogue(csv_row("X0001"), csv_row("X0002", restriction=restriction))
    assert caught.value.field == "row 3.restriction"


def test_restriction_with_commas_survives_csv_quoting() -> None:
    (row,) = catalogue(csv_row("X0001", restriction="限肺癌 icd:C34,C78")).rows
    assert row.restriction == "限肺癌 icd:C34,C78"
    assert row.icd_prefixes == ("C34", "C78")
