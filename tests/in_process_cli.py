"""Run `clearing-admin` inside the test's own process: the console script's `main()` with `sys.argv`, the
environment, the working directory, stdin, stdout and stderr swapped for the one call.

It is the same code the console script runs, minus the interpreter start: a fresh `clearing-admin` spends about a
second importing grpc, protobuf, rich and the core before it reads its first argument, and the unit tests call it
hundreds of times. What only a real process shows (the entry point itself, the interpreter's handling of an
uncaught exception) is tested with the console script as a subprocess: tests/unit/test_cli_usage.py.

An exception that escapes `main()` is not turned into an exit code: it fails the test with its traceback, which is
what the CLI promises never to print.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from unittest import mock

PROGRAM = "clearing-admin"
# What every in-process call runs with unless the caller says otherwise: wide rich tables, no colour codes.
DEFAULT_ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


@contextlib.contextmanager
def _environment(overrides: Mapping[str, str], unset: tuple[str, ...]) -> Iterator[None]:
    with mock.patch.dict(os.environ, overrides):
        for name in unset:
            os.environ.pop(name, None)
        yield


def _text(buffer: io.TextIOWrapper) -> str:
    buffer.flush()
    raw = buffer.buffer
    assert isinstance(raw, io.BytesIO)
    return raw.getvalue().decode("utf-8")


def run_cli(*arguments: str | Path, cwd: Path | str | None = None, env: Mapping[str, str] | None = None,
            stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`clearing-admin ARGUMENTS…` in this process; a CompletedProcess like `subprocess.run(..., text=True)` gives.

    `env` adds to (or replaces in) the environment for the call; FORCE_COLOR is always unset."""
    from services.cli.app import main  # noqa: PLC0415 - imported on first use, like the console script

    argv = [PROGRAM, *map(str, arguments)]
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    code = 0
    with (_environment({**DEFAULT_ENV, **(env or {})}, ("FORCE_COLOR",)),
          contextlib.chdir(cwd if cwd is not None else os.getcwd()),
          mock.patch.object(sys, "argv", argv),
          mock.patch.object(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8")), encoding="utf-8")),
          contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr)):
        try:
            main()
        except SystemExit as exit_:
            if exit_.code is None or isinstance(exit_.code, int):
                code = exit_.code or 0
            else:  # SystemExit("message"): the interpreter prints it and exits 1
                print(exit_.code, file=sys.stderr)
                code = 1
    return subprocess.CompletedProcess(argv, code, _text(stdout), _text(stderr))
