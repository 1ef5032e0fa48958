"""Money is integer fen (分) and ratios are integer basis points (bp, 10000 = 100 %) — SPEC §3.

Quantities are decimals with at most four places; they enter the core as integer
ten-thousandths (`qty_e4`), so every product here is an integer product and every division
is one explicit round-half-up.
"""

from __future__ import annotations

import re
from decimal import Decimal

from clearing.errors import InvalidField

BP_WHOLE = 10_000
QTY_SCALE = 10_000
# ASCII digits only: Decimal() alone would also take 1e3, 1_000 and non-ASCII digits.
PLAIN_DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
AT_MOST_FOUR_PLACES = re.compile(r"^-?[0-9]+(\.[0-9]{1,4})?$")


def round_half_up_div(numerator: int, denominator: int) -> int:
    """`numerator / denominator` rounded half away from zero, in integers (四舍五入).

    For n ≥ 0, ⌊n/d + 1/2⌋ = ⌊(2n + d) / 2d⌋: one floor division, no remainder to compare (it runs for every
    bill line, issue 11); a negative numerator rounds its magnitude the same way."""
    assert denominator > 0
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((denominator - 2 * numerator) // (2 * denominator))


def apply_bp(amount_fen: int, ratio_bp: int) -> int:
    """`round_half_up(amount_fen × ratio_bp / 10000)`: the one rounding rule of SPEC §3."""
    assert ratio_bp >= 0
    return round_half_up_div(amount_fen * ratio_bp, BP_WHOLE)


def line_amount_fen(qty_e4: int, unit_price_fen: int) -> int:
    """Amount of a bill line: `round_half_up(qty × unit_price)` with qty in ten-thousandths."""
    return round_half_up_div(qty_e4 * unit_price_fen, QTY_SCALE)


def parse_qty_e4(text: str, field: str) -> int:
    """Parse a decimal quantity string (at most 4 places) into integer ten-thousandths.

    Raises `InvalidField(field, …)` for anything that is not a plain positive decimal.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidField(field, "must be a decimal string such as \"2\" or \"0.5\"")
    if not PLAIN_DECIMAL.match(text.strip()):
        raise InvalidField(field, f"{text!r} is not a plain decimal number such as 2 or 0.5")
    if not AT_MOST_FOUR_PLACES.match(text.strip()):  # counted in the text: "2.50000" has five places
        raise InvalidField(field, "has more than 4 decimal places")
    value = Decimal(text.strip())
    scaled = value * QTY_SCALE
    assert scaled == scaled.to_integral_value()
    qty_e4 = int(scaled)
    if qty_e4 <= 0:
        raise InvalidField(field, "must be positive")
    return qty_e4


def format_qty(qty_e4: int) -> str:
    """Canonical decimal text of a quantity in ten-thousandths (`15000` → `"1.5"`)."""
    text = str(Decimal(qty_e4).scaleb(-4).normalize())
    # normalize() writes 100 as 1E+2; render it as a plain number.
    return str(Decimal(text).quantize(Decimal(1))) if "E" in text else text


def format_yuan(amount_fen: int) -> str:
    """Human-readable yuan with two decimals and thousands separators (`123456` → `1,234.56`)."""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), 100)
    return f"{sign}{yuan:,}.{fen:02d}"
