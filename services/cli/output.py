"""Shared output of the operator CLI: the one-line error and its exit code, JSON on stdout, rich tables.

Every operator error (bad file, bad field, a refused request) is one line `error: …` on stderr and
exit code 2, the code typer already uses for usage errors; stdout then stays empty, so a script can
trust that whatever it reads there is a result.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table

EXIT_OPERATOR_ERROR = 2


def one_line(text: str) -> str:
    """Collapse any line breaks so an error is always exactly one line."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def fail(message: str) -> NoReturn:
    """Print `error: <message>` as one line on stderr and exit 2.

    Raises `SystemExit` rather than `typer.Exit` so it also works outside a command (in `main()`).
    """
    sys.stdout.flush()
    print(f"error: {one_line(message)}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_OPERATOR_ERROR)


def print_json(data: Any) -> None:
    """Machine output: indented JSON, non-ASCII kept as is (names are Chinese), no rich markup or wrapping."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def print_json_line(data: Any) -> None:
    """Machine output, one compact JSON document per line (for commands that print one per input)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, separators=(", ", ": ")) + "\n")
    sys.stdout.flush()


def console() -> Console:
    """A rich console on stdout for human output; colour only on a terminal, never markup from data."""
    return Console(highlight=False, markup=False, emoji=False)


def table(title: str, *columns: str, numeric: tuple[str, ...] = ()) -> Table:
    """A table with the given headers; `numeric` columns are right-aligned."""
    result = Table(title=title or None, title_justify="left", show_lines=False)
    for name in columns:
        result.add_column(name, justify="right" if name in numeric else "left", overflow="fold")
    return result
