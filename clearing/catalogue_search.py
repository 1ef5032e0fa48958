"""Finding rows of a catalogue version by local code or by name: what a HIS team or an operator needs to know which
codes a bill may carry (`clearing-admin catalog show`, SearchCatalogue). Pure: the caller loads the version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from clearing.bill import check_text
from clearing.catalogue import Catalogue, CatalogueRow
from clearing.errors import InvalidField

LIMIT_DEFAULT = 50
LIMIT_MAX = 1000
QUERY_LENGTH_MAX = 64


@dataclass(frozen=True, slots=True)
class Found:
    """The rows found, in (local code, first valid day) order, at most the limit; `truncated` when more matched."""

    rows: tuple[CatalogueRow, ...]
    truncated: bool


def check_limit(limit: int, field: str = "limit") -> int:
    """1–LIMIT_MAX; 0 means LIMIT_DEFAULT."""
    if limit == 0:
        return LIMIT_DEFAULT
    if not 1 <= limit <= LIMIT_MAX:
        raise InvalidField(field, f"between 1 and {LIMIT_MAX} (0: {LIMIT_DEFAULT}), not {limit}")
    return limit


def check_query(code: str, text: str) -> tuple[str, str]:
    """Exactly one of a local code and a search text, each a short line of text."""
    if code and text:
        raise InvalidField("text", "give either code or text, not both")
    if not code and not text:
        raise InvalidField("code", "give a local code, or a text to search for in the names")
    if code:
        return check_text(code, "code", QUERY_LENGTH_MAX).strip(), ""
    return "", check_text(text, "text", QUERY_LENGTH_MAX).strip()


def matches(row: CatalogueRow, text: str) -> bool:
    """`text` in the row's name (case-insensitive), or the start of its local or national code."""
    folded = text.casefold()
    return folded in row.name.casefold() or row.local_code.casefold().startswith(folded) \
        or (bool(row.national_code) and row.national_code.casefold().startswith(folded))


def search(catalogue: Catalogue, *, code: str = "", text: str = "", on: date | None = None,
           limit: int = LIMIT_DEFAULT) -> Found:
    """Every row of `code` (all its versions over time), or every row `text` matches; only the rows valid on `on`
    when given. At most `limit` rows, in (local code, first valid day) order."""
    assert bool(code) != bool(text) and limit >= 1
    if code:
        candidates = catalogue.by_code.get(code, ())
    else:
        candidates = tuple(sorted((row for row in catalogue.rows if matches(row, text)),
                                  key=lambda row: (row.local_code, row.valid_from)))
    rows = [row for row in candidates if on is None or row.valid_on(on)]
    return Found(tuple(rows[:limit]), len(rows) > limit)
