"""`clearing.catalogue_diff`: comparing two versions of one region's catalogue (SPEC §4.1), code by code."""

from __future__ import annotations

from datetime import date

import pytest

from clearing.catalogue import Catalogue, parse_catalogue_csv
from clearing.catalogue_diff import FieldChange, RowValidity, ValidityChange, diff_catalogues
from clearing.errors import InvalidField

HEADER = "local_code,national_code,relation,kind,name,grade,selfpay_bp,price_cap_fen,restriction,valid_from,valid_to"
A1 = "X0001,XA01,equivalent,drug,阿莫西林,A,0,,,2025-01-01,"
B2 = "X0002,XB02,equivalent,drug,头孢,B,1000,2000,,2025-01-01,"
C3 = "X0003,XC03,equivalent,service,理疗,C,0,,,2025-01-01,"


def catalogue(*rows: str, region: str = "440100") -> Catalogue:
    return parse_catalogue_csv("\n".join([HEADER, *rows]) + "\n", region=region)


def test_identical_versions_have_no_changes() -> None:
    diff = diff_catalogues(catalogue(A1, B2, C3), catalogue(C3, A1, B2))
    assert diff.is_empty
    assert diff.unchanged_count == 3


def test_codes_added_and_removed_in_code_order() -> None:
    diff = diff_catalogues(catalogue(A1, B2), catalogue("X0009,XZ09,wider,consumable,支架,B,500,,,2026-01-01,", A1, C3))
    assert [item.local_code for item in diff.added] == ["X0003", "X0009"]
    assert [item.local_code for item in diff.removed] == ["X0002"]
    assert diff.added[1].rows[0].name == "支架"
    assert diff.changed == () and diff.unchanged_count == 1


def test_correction_in_place_names_each_field() -> None:
    corrected = "X0002,XB02X,narrower,drug,头孢,A,0,,icd:J18,2025-01-01,"
    (change,) = diff_catalogues(catalogue(A1, B2), catalogue(A1, corrected)).changed
    assert change.local_code == "X0002"
    assert change.validity == ()
    start = date(2025, 1, 1)
    assert change.fields == (
        FieldChange("national_code", start, "XB02", "XB02X"),
        FieldChange("relation", start, "equivalent", "narrower"),
        FieldChange("grade", start, "B", "A"),
        FieldChange("selfpay_bp", start, "1000", "0"),
        FieldChange("price_cap_fen", start, "2000", ""),
        FieldChange("restriction", start, "", "icd:J18"),
    )


def test_new_version_ends_the_old_row_and_compares_with_it() -> None:
    ended = B2.replace("2025-01-01,", "2025-01-01,2026-06-30")
    successor = "X0002,XB02,equivalent,drug,头孢,B,1500,1800,,2026-07-01,"
    (change,) = diff_catalogues(catalogue(B2), catalogue(ended, successor)).changed
    assert change.validity == (
        RowValidity(ValidityChange.ENDED, date(2025, 1, 1), None, date(2026, 6, 30)),
        RowValidity(ValidityChange.ADDED, date(2026, 7, 1), None, None),
    )
    assert change.fields == (
        FieldChange("selfpay_bp", date(2026, 7, 1), "1000", "1500"),
        FieldChange("price_cap_fen", date(2026, 7, 1), "2000", "1800"),
    )


def test_successor_is_compared_with_the_latest_earlier_row() -> None:
    v1 = "X0002,XB02,equivalent,drug,头孢,B,1000,,,2024-01-01,2024-12-31"
    v2 = "X0002,XB02,equivalent,drug,头孢,B,2000,,,2025-01-01,2025-12-31"
    v3 = "X0002,XB02,equivalent,drug,头孢,A,0,,,2026-01-01,"
    (change,) = diff_catalogues(catalogue(v1, v2), catalogue(v1, v2, v3)).changed
    assert change.validity == (RowValidity(ValidityChange.ADDED, date(2026, 1, 1), None, None),)
    assert [(item.field, item.before, item.after) for item in change.fields] == [
        ("grade", "B", "A"), ("selfpay_bp", "2000", "0")]


def test_row_removed_reopened_and_end_moved() -> None:
    old = catalogue("X0001,XA01,equivalent,drug,阿莫西林,A,0,,,2024-01-01,2024-12-31",
                    "X0001,XA01,equivalent,drug,阿莫西林,A,0,,,2025-01-01,2025-12-31",
                    "X0002,XB02,equivalent,drug,头孢,B,1000,2000,,2025-01-01,2025-06-30")
    new = catalogue("X0001,XA01,equivalent,drug,阿莫西林,A,0,,,2025-01-01,",
                    "X0002,XB02,equivalent,drug,头孢,B,1000,2000,,2025-01-01,2025-09-30")
    first, second = diff_catalogues(old, new).changed
    assert first.validity == (
        RowValidity(ValidityChange.REMOVED, date(2024, 1, 1), date(2024, 12, 31), None),
        RowValidity(ValidityChange.REOPENED, date(2025, 1, 1), date(2025, 12, 31), None),
    )
    assert second.validity == (RowValidity(ValidityChange.MOVED_END, date(2025, 1, 1), date(2025, 6, 30),
                                           date(2025, 9, 30)),)
    assert first.fields == second.fields == ()


def test_unmapped_code_getting_a_mapping() -> None:
    unmapped = "X0004,,,drug,未对照,A,0,,,2025-01-01,"
    mapped = "X0004,XD04,equivalent,drug,未对照,A,0,,,2025-01-01,"
    (change,) = diff_catalogues(catalogue(unmapped), catalogue(mapped)).changed
    assert [(item.field, item.before, item.after) for item in change.fields] == [
        ("national_code", "", "XD04"), ("relation", "", "equivalent")]


def test_catalogues_of_two_regions_are_not_compared() -> None:
    with pytest.raises(InvalidField) as caught:
        diff_catalogues(catalogue(A1), catalogue(A1, region="430100"))
    assert caught.value.field == "region"
