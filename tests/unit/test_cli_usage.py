"""The operator CLI's own texts: a usage error (missing argument, unknown option, not an int) is one `error: …`
line with exit 2 like every other operator error, `--help` still works, no help text cites a SPEC section the
project does not ship, and reconciliation's "why" of a failed repair is sentences, not exception class names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from clearinghouse.v1 import types_pb2
from in_process_cli import run_cli
from prometheus_client import REGISTRY

from clearing.errors import NotFound, PreconditionFailed
from clearing.reconcile import DayKey
from services.common import reconciling
from services.common.metrics import Party

CLI = Path(sys.executable).parent / "clearing-admin"


def run(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *arguments], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("arguments", "names"), [
    (("settlement", "show"), ("Missing argument", "settlement_id")),
    (("month", "close"), ("Missing argument", "month")),
    (("settlement", "show", "x", "--bogus"), ("No such option", "--bogus")),
    (("statement", "year", "440100", "2026", "--csv", "x"), ("No such option", "--csv")),
    (("demo", "--count", "x"), ("--count", "integer")),
    (("prepayment", "topup", "--region", "440100", "--amount-fen", "1.5"), ("--amount-fen",)),
    (("no-such-command",), ("No such command", "no-such-command")),
])
def test_a_usage_error_is_one_error_line_with_exit_code_2(arguments, names):
    result = run_cli(*arguments)
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "╭" not in result.stderr and "Usage:" not in result.stderr, "not typer's boxed block"
    for name in names:
        assert name in result.stderr


def test_a_usage_error_is_one_line_from_the_console_script_too():
    """The entry point itself, as a process: the same one line and exit 2 (the rest of the module runs `main()` in
    this process)."""
    result = run("settlement", "show")
    assert result.returncode == 2 and result.stdout == "" and result.stderr.count("\n") == 1, result
    assert result.stderr.startswith("error: ") and "settlement_id" in result.stderr


def test_help_still_works():
    for arguments in (("--help",), ("settlement", "show", "--help"), ("stack", "--help")):
        result = run(*arguments)
        assert result.returncode == 0, result
        assert "Usage:" in result.stdout and result.stderr == ""


def command_paths() -> list[tuple[str, ...]]:
    """Every group and command of the app, as the words an operator types."""
    import typer

    from services.cli.app import app

    paths = []

    def walk(command, path: tuple[str, ...]) -> None:  # noqa: ANN001 - a click command or group
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return paths


def test_no_help_text_cites_a_spec_section():
    """The help points at the project's own docs (README, docs/*.md), never at "SPEC §…"."""
    from typer.testing import CliRunner

    from services.cli.app import app

    paths = command_paths()
    assert ("stack", "down") in paths and ("discharge", "run") in paths and len(paths) > 30
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], prog_name="clearing-admin", terminal_width=200)
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output, path
        assert "SPEC" not in result.output and "§" not in result.output, (path, result.output)


LABELS = ("party", "region", "action", "result")


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


@pytest.mark.parametrize(("error", "words"), [
    (PreconditionFailed("settlement_id", "it is recorded here as settled on settlement day 2026-06-17, so it was "
                                         "not reversed; reconcile that day"), ("2026-06-17", "not reversed")),
    (NotFound("settlements/x", "no settled claim with this id"), ("no settled claim",)),
    (rpc_error(grpc.StatusCode.UNAVAILABLE, "connection refused"), ("could not be reached", "next run")),
    (rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "settlement_id: cancelled since"), ("refused", "cancelled since")),
])
async def test_a_failed_repair_says_why_in_sentences(error, words):
    """What `clearing-admin reconcile` shows in its "why" column for a repair that did not go through: built by
    `reconcile_pair` from the exception, with no class name (`PreconditionFailed: …`) nor status code name; and
    counted as a failed repair of the party that ran it."""
    orphan = types_pb2.DetailLine(settlement_id="6d0f8a3e-6c4b-4a57-9d7e-2f3b7c9d1e21",
                                  status=types_pb2.SETTLEMENT_STATUS_SETTLED, total_fen=100, fund_pay_fen=60,
                                  psn_pay_fen=40, settlement_day="2026-06-18")

    async def detail() -> list[types_pb2.DetailLine]:
        return [orphan]

    async def repair(difference, up, down) -> None:  # noqa: ANN001
        raise error

    async def record(item: types_pb2.Repair) -> None:
        return None

    failed = ("test", "", "reverse_orphan", "failed")
    before = REGISTRY.get_sample_value("clearing_reconciliation_repairs_total", dict(zip(LABELS, failed))) or 0
    report = await reconciling.reconcile_pair("a<->b", "2026-06-18", DayKey.SETTLEMENT, [], reconciling.totals([orphan]),
                                              detail, 60, repair, record, party=Party("test"))
    [item] = report.repairs
    assert not item.repaired and item.action == "reverse_orphan"
    assert REGISTRY.get_sample_value("clearing_reconciliation_repairs_total", dict(zip(LABELS, failed))) == before + 1
    text = item.error
    for name in ("PreconditionFailed", "NotFound", "Error", "UNAVAILABLE", "FAILED_PRECONDITION"):
        assert name not in text, text
    assert text[0].isupper() and text.endswith("."), text
    for word in words:
        assert word in text, text
