"""Read the CHS-DRG 1.1 grouping tables copied in `reference/` (sources and licence: its README.md).

The one place that reads the files: `clearing.drg.parse_tables` gets their text. Parsed once per process.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from clearing.drg import TABLE_FILES, DrgTables, parse_tables

REFERENCE_DIR = Path(__file__).with_name("reference")


def table_texts(directory: Path = REFERENCE_DIR) -> dict[str, str]:
    return {name: (directory / name).read_text(encoding="utf-8") for name in TABLE_FILES}


@cache
def load_tables() -> DrgTables:
    """The shipped tables, parsed and checked (about a second; cached)."""
    return parse_tables(table_texts())
