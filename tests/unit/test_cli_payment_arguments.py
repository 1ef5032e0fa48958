"""`clearing-admin drg weights | payment month | payment year` with bad arguments: one `error:` line naming the
argument or option, nothing on stdout, exit 2 — before any stack is asked (none runs here; the refusals that need
the treating agency are in tests/integration/test_hospital_payment.py)."""

from __future__ import annotations

import pytest
from in_process_cli import run_cli

NO_STACK = ("--config", "/nonexistent/stack.json")


@pytest.mark.parametrize(("arguments", "named"), [
    (("drg", "weights", "440100", "--from-history", "--year", "26"), "--year"),
    (("drg", "weights", "440100"), "--from-history"),
    (("drg", "weights", "4401", "--from-history"), "REGION"),
    (("payment", "month", "440100", "2026-13"), "MONTH"),
    (("payment", "month", "440100", "2026-11", "--weights-year", "2026-11"), "--weights-year"),
    (("payment", "month", "44010", "2026-11"), "REGION"),
    (("payment", "month", "440100", "2026-03", "--special-review", "S1"), "--special-review"),
    (("payment", "year", "440100", "26"), "YEAR"),
    (("payment", "year", "440100", "2026", "--chart", "y.jpg"), "--chart"),
    (("payment", "year", "4401", "2026"), "REGION"),
])
def test_bad_arguments_are_one_error_line_naming_them(arguments, named):
    result = run_cli(*arguments, *NO_STACK)
    assert result.returncode == 2 and result.stdout == "", result
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and named in result.stderr, result
