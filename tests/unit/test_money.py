"""Money in integer fen and ratios in basis points (SPEC §3): `clearing/money.py`."""

from __future__ import annotations

import pytest

from clearing.errors import InvalidField
from clearing.money import (
    apply_bp, format_qty, format_yuan, line_amount_fen, parse_qty_e4, round_half_up_div,
)


@pytest.mark.parametrize(("numerator", "denominator", "expected"), [
    (5, 10, 1),  # 0.5 → 1: half goes up
    (4, 10, 0),  # 0.4 → 0
    (15, 10, 2),  # 1.5 → 2 (not banker's 2-to-even coincidence: see 25)
    (25, 10, 3),  # 2.5 → 3 (banker's rounding would give 2)
    (49_999, 10_000, 5),  # 4.9999 → 5
    (45_000, 10_000, 5),  # 4.5 → 5
    (44_999, 10_000, 4),  # 4.4999 → 4
    (0, 7, 0),
    (-5, 10, -1),  # -0.5 → -1: away from zero
    (-25, 10, -3),  # -2.5 → -3
    (-4, 10, 0),  # -0.4 → 0
    (-15, 10, -2),  # -1.5 → -2
])
def test_round_half_up_div(numerator: int, denominator: int, expected: int) -> None:
    assert round_half_up_div(numerator, denominator) == expected


@pytest.mark.parametrize(("amount_fen", "ratio_bp", "expected"), [
    (100, 6500, 65),  # 100 × 0.65
    (1, 5000, 1),  # 0.5 → 1
    (3, 5000, 2),  # 1.5 → 2
    (5, 5000, 3),  # 2.5 → 3
    (1, 4999, 0),  # 0.4999 → 0
    (333, 1000, 33),  # 33.3 → 33
    (25, 1000, 3),  # 2.5 → 3
    (6_480_000, 6500, 4_212_000),  # SPEC §5.2 worked check: 64,800.00 yuan × 65 % = 42,120.00 yuan
    (12_345, 0, 0),
    (12_345, 10_000, 12_345),
    (0, 10_000, 0),
    (-5, 1000, -1),  # -0.5 → -1: away from zero
])
def test_apply_bp(amount_fen: int, ratio_bp: int, expected: int) -> None:
    assert apply_bp(amount_fen, ratio_bp) == expected


def test_apply_bp_stays_exact_for_the_largest_bill() -> None:
    # 1 billion yuan = 100,000,000,000 fen × 3333 bp = 33,330,000,000 fen exactly: no float drift.
    assert apply_bp(100_000_000_000, 3333) == 33_330_000_000
    # 99,999,999,999 × 3333 / 10000 = 33,329,999,999.6667 → 33,330,000,000
    assert apply_bp(99_999_999_999, 3333) == 33_330_000_000


@pytest.mark.parametrize(("qty_e4", "unit_price_fen", "expected"), [
    (20_000, 1500, 3000),  # 2 × 15.00
    (3_333, 1000, 333),  # 0.3333 × 1000 = 333.3 → 333
    (6_667, 1000, 667),  # 0.6667 × 1000 = 666.7 → 667
    (5, 1000, 1),  # 0.0005 × 1000 = 0.5 → 1
    (4, 1000, 0),  # 0.0004 × 1000 = 0.4 → 0
    (15_000, 3, 5),  # 1.5 × 3 = 4.5 → 5
    (25_000, 1, 3),  # 2.5 × 1 = 2.5 → 3 (half up, not to even)
    (12_345, 0, 0),  # a free item
    (1, 1, 0),  # 0.0001 fen → 0
])
def test_line_amount_fen(qty_e4: int, unit_price_fen: int, expected: int) -> None:
    assert line_amount_fen(qty_e4, unit_price_fen) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("2", 20_000),
    ("0.5", 5_000),
    ("0.0001", 1),  # the smallest quantity
    ("1.2345", 12_345),
    ("2.5000", 25_000),  # exactly four places
    ("100000", 1_000_000_000),
])
def test_parse_qty_e4_accepts_plain_decimals(text: str, expected: int) -> None:
    assert parse_qty_e4(text, "lines[0].qty") == expected


@pytest.mark.parametrize("text", [
    "0.00001",  # five places
    "1.23456",  # five places
    "0",
    "0.0000",
    "-1",
    "-0.5",
    "abc",
    "NaN",
    "Infinity",
    "",
    "   ",
    "1/2",
    "1,5",
])
def test_parse_qty_e4_rejects_and_names_the_field(text: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_qty_e4(text, "lines[3].qty")
    assert caught.value.field == "lines[3].qty"


@pytest.mark.parametrize("value", [2, 2.5, None, b"2"])
def test_parse_qty_e4_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_qty_e4(value, "lines[0].qty")  # type: ignore[arg-type]
    assert caught.value.field == "lines[0].qty"


@pytest.mark.parametrize("text", [
    "1e3",  # exponent notation: Decimal reads 1000
    "1E+2",
    "1_000",  # digit grouping: Decimal reads 1000
    "١٢",  # Arabic-Indic digits: Decimal reads 12
])
def test_parse_qty_e4_rejects_what_is_not_a_plain_decimal(text: str) -> None:
    # SPEC §5.3: `qty` is "a decimal string (up to 4 places)"; parse_qty_e4's own contract is to
    # raise for "anything that is not a plain positive decimal". Python's Decimal() is looser than
    # that (exponents, underscores, any Unicode digit), and the canonical text the quote echoes
    # (format_qty) would then differ from what the hospital sent ("1e3" comes back as "1000").
    with pytest.raises(InvalidField) as caught:
        parse_qty_e4(text, "lines[0].qty")
    assert caught.value.field == "lines[0].qty"


@pytest.mark.parametrize(("qty_e4", "text"), [
    (20_000, "2"), (15_000, "1.5"), (1, "0.0001"), (1_000_000, "100"), (12_345, "1.2345"), (3_330, "0.333"),
])
def test_format_qty(qty_e4: int, text: str) -> None:
    assert format_qty(qty_e4) == text


@pytest.mark.parametrize(("amount_fen", "text"), [
    (0, "0.00"), (5, "0.05"), (123_456, "1,234.56"), (7_000_000, "70,000.00"), (-150, "-1.50"),
])
def test_format_yuan(amount_fen: int, text: str) -> None:
    assert format_yuan(amount_fen) == text


def test_places_are_counted_in_the_text_not_the_value():
    # SPEC §5.3: qty is a decimal string with at most 4 places; "2.50000" has five even though it is 2.5.
    with pytest.raises(InvalidField, match="more than 4 decimal places"):
        parse_qty_e4("2.50000", "lines[0].qty")
    assert parse_qty_e4("2.5000", "lines[0].qty") == 25_000
