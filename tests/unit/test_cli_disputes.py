"""`clearing-admin dispute …` and `audit month` with bad input: one `error: FIELD: …` line on stderr naming the
argument or option, nothing on stdout, exit 2 — before any stack is asked (none runs here)."""

from __future__ import annotations

import subprocess

import pytest
from in_process_cli import run_cli

SETTLEMENT = "0b5e7d0c-3c2e-4f4e-9a43-6a1f1d6e1203"


def run(*arguments: str) -> subprocess.CompletedProcess:
    return run_cli(*arguments, "--config", "/nonexistent/stack.json")


@pytest.mark.parametrize(("arguments", "field"), [
    (("dispute", "raise", "4401", SETTLEMENT, "--amount-fen", "5", "--rule", "AUD-DAYQTY"), "REGION"),
    (("dispute", "raise", "460100", "not-a-uuid", "--amount-fen", "5", "--rule", "AUD-DAYQTY"), "SETTLEMENT_ID"),
    (("dispute", "raise", "460100", SETTLEMENT, "--amount-fen", "0", "--rule", "AUD-DAYQTY"), "--amount-fen"),
    (("dispute", "raise", "460100", SETTLEMENT, "--amount-fen", "x", "--rule", "AUD-DAYQTY"), "--amount-fen"),
    (("dispute", "raise", "460100", SETTLEMENT, "--amount-fen", "5", "--rule", "AUD-FOO"), "--rule"),
    (("dispute", "raise", "460100", SETTLEMENT, "--amount-fen", "5"), "--reason"),
    (("dispute", "raise", "460100", SETTLEMENT, "--amount-fen", "5", "--reason", "r", "--key", "k"), "--key"),
    (("dispute", "answer", SETTLEMENT), "--accept/--appeal"),
    (("dispute", "answer", SETTLEMENT, "--accept", "--appeal", "text"), "--accept/--appeal"),
    (("dispute", "answer", SETTLEMENT, "--appeal", " "), "--appeal"),
    (("dispute", "answer", "x", "--accept"), "DISPUTE_ID"),
    (("dispute", "decide", SETTLEMENT, "maybe"), "DECISION"),
    (("dispute", "show", "x"), "DISPUTE_ID"),
    (("dispute", "list", "--region", "44"), "--region"),
    (("dispute", "list", "--month", "2026-13"), "--month"),
    (("audit", "month", "46010", "2026-06"), "REGION"),
    (("audit", "month", "460100", "2026-6"), "MONTH"),
])
def test_bad_input_names_the_field_and_exits_2(arguments, field):
    result = run(*arguments)
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and field in lines[0], result.stderr


def test_good_input_gets_as_far_as_the_missing_stack():
    result = run("dispute", "raise", "460100", SETTLEMENT, "--amount-fen", "5", "--rule", "AUD-DAYQTY")
    assert result.returncode == 2 and result.stderr.startswith("error: --config:"), result.stderr
