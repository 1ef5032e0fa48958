"""docs/his-integration.md is tested (issue 15 item 2): its `sh tested` blocks run, in order, in one bash against a
stack started as the guide says, and every line of each `text output` block must appear in what the command block
before it printed (`…` matching anything). So the guide cannot rot: a renamed field, a changed answer or a dropped
command fails here.

The guide runs from the repository's root with the stack in `var/stack` (`clearing-admin stack up` without --dir).
The test gives it a directory of its own that looks the same to every command — `.venv` (a link to the checkout's)
and `var/stack` — so the guide's commands run unchanged, and the checkout's own `var/stack` is never touched.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "his-integration.md"
CLI = Path(sys.executable).parent / "clearing-admin"
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
SCRIPT_TIMEOUT_S = 300


@dataclass(frozen=True)
class Step:
    """A tested command block and the output fragments the guide shows after it."""

    number: int
    commands: str
    expected: tuple[str, ...]


def steps(text: str) -> list[Step]:
    """The guide's `sh tested` blocks, each with the lines of the `text output` block right after it (if any)."""
    found: list[Step] = []
    for match in FENCE.finditer(text):
        info = match["info"].split()
        if info == ["sh", "tested"]:
            found.append(Step(len(found), match["body"], ()))
        elif info == ["text", "output"]:
            assert found and not found[-1].expected, "a `text output` block follows a `sh tested` block, one each"
            lines = tuple(line.strip() for line in match["body"].splitlines() if line.strip())
            found[-1] = Step(found[-1].number, found[-1].commands, lines)
    return found


def marker(number: int) -> str:
    return f"@@guide step {number}@@"


def script(guide_steps: list[Step]) -> str:
    """One bash script: every step after a line that marks where its output begins."""
    parts = ["set -euo pipefail", "exec 2>&1  # one stream: each step's output lies between its markers"]
    for step in guide_steps:
        parts += [f"echo '{marker(step.number)}'", step.commands]
    return "\n".join(parts) + "\n"


def outputs(printed: str, count: int) -> list[str]:
    """What each step printed (stdout and stderr together), split at the markers."""
    pieces = re.split(r"^@@guide step (\d+)@@$", printed, flags=re.MULTILINE)
    by_step = {int(pieces[index]): pieces[index + 1] for index in range(1, len(pieces) - 1, 2)}
    return [by_step.get(number, "") for number in range(count)]


def fragment_pattern(line: str) -> re.Pattern[str]:
    """A line of a `text output` block: literal, `…` anything."""
    return re.compile(".*?".join(re.escape(part) for part in line.split("…")))


def missing(expected: tuple[str, ...], printed: str) -> list[str]:
    return [line for line in expected if not fragment_pattern(line).search(printed)]


# -- without a stack: the guide's own shape ----------------------------------------------------------------------

def test_the_guide_has_tested_steps_for_the_whole_discharge_and_each_shows_its_output():
    guide_steps = steps(GUIDE.read_text(encoding="utf-8"))
    commands = "\n".join(step.commands for step in guide_steps)
    for rpc in ("/Admit", "/UploadCharges", "/PreSettle", "/Settle", "/Reverse", "/GetSettlement", "/SearchCatalogue",
                "Health/List", "members list", "catalog show", "certs issue", "--cacert", "--cert", "--key"):
        assert rpc in commands, f"the guide's tested commands never use {rpc}"
    assert len(guide_steps) >= 15
    assert sum(1 for step in guide_steps if step.expected) >= 14, "most steps show what they print"


def test_the_checker_finds_fragments_and_misses_what_is_absent():
    assert missing(("\"totalFen\": \"…\"",), 'x "totalFen": "4625",') == []
    assert missing(("\"totalFen\": \"4626\"",), 'x "totalFen": "4625",') == ["\"totalFen\": \"4626\""]
    assert outputs("@@guide step 0@@\na\n@@guide step 1@@\nb\n", 3) == ["\na\n", "\nb\n", ""]
    parsed = steps("```sh tested\necho hi\n```\n\n```text output\nhi\n```\n```sh\nnot run\n```\n")
    assert parsed == [Step(0, "echo hi\n", ("hi",))]


# -- against a stack started as the guide says -------------------------------------------------------------------

@pytest.fixture(scope="module")
def root():
    """A directory laid out as the guide's repository root, with `clearing-admin stack up` running in its
    `var/stack` (as the guide starts it, few members), stopped when the module ends."""
    root = Path(tempfile.mkdtemp(prefix="clearing-guide-"))
    (root / ".venv").symlink_to(Path(sys.executable).parents[1], target_is_directory=True)
    process = subprocess.Popen([str(CLI), "stack", "up", "--members", "5"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root)
    try:
        seen = []
        for line in process.stdout:  # bounded by the stack's own health wait and the test timeout
            seen.append(line)
            if "Press Ctrl-C" in line:
                break
        assert any("Press Ctrl-C" in line for line in seen), "".join(seen) + process.stderr.read()
        yield root
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def test_every_tested_command_of_the_guide_runs_and_prints_what_the_guide_shows(root):
    guide_steps = steps(GUIDE.read_text(encoding="utf-8"))
    result = subprocess.run(["bash", "-c", script(guide_steps)], cwd=root, capture_output=True, text=True,
                            timeout=SCRIPT_TIMEOUT_S, check=False)
    printed = outputs(result.stdout, len(guide_steps))
    ran = [number for number in range(len(guide_steps)) if marker(number) in result.stdout]
    assert result.returncode == 0, (f"the guide's step {ran[-1] if ran else 0} failed (exit {result.returncode}):\n"
                                    f"{guide_steps[ran[-1] if ran else 0].commands}\n--- printed:\n"
                                    f"{result.stdout[-3000:]}\n--- stderr:\n{result.stderr[-3000:]}")
    for step in guide_steps:
        absent = missing(step.expected, printed[step.number])
        assert not absent, (f"step {step.number} of the guide did not print {absent}:\n{step.commands}\n"
                            f"--- it printed:\n{printed[step.number]}")


def clearing_admin(root: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *arguments], cwd=root, capture_output=True, text=True, timeout=120, check=False)


def one_error_line(result: subprocess.CompletedProcess, *names: str) -> None:
    """An operator error: exit 2, nothing on stdout, one `error: …` line naming each of `names`."""
    assert result.returncode == 2 and result.stdout == "", result
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    for name in names:
        assert name in result.stderr, (name, result.stderr)


def test_members_list_and_catalog_show_as_json_and_their_refusals(root):
    """The two look-ups of the guide (issue 15 item 3): --json is the proto's JSON mapping, pages follow --after, and
    a bad region or a missing choice is one error line, exit 2."""
    import json

    first = json.loads(clearing_admin(root, "members", "list", "610924", "--limit", "2", "--json").stdout)
    assert [item["member"]["member_id"] for item in first["members"]] == ["M61092400000001", "M61092400000002"]
    assert first["next_page_token"] == "M61092400000002"
    assert all(re.fullmatch(r"6109\*{10}[0-9]{3}[0-9X]", item["member"]["id_number"]) and item["member"]["name"] == ""
               for item in first["members"])
    rest = json.loads(clearing_admin(root, "members", "list", "610924", "--after", "M61092400000002", "--json").stdout)
    assert [item["member"]["member_id"] for item in rest["members"]] == [
        f"M61092400{serial:06d}" for serial in range(3, 6)]  # the stack's 5 members
    assert rest["next_page_token"] == ""
    found = json.loads(clearing_admin(root, "catalog", "show", "440100", "--search", "阿莫西林", "--json").stdout)
    assert found["items"] and all("阿莫西林" in item["name"] for item in found["items"])
    code = found["items"][0]["local_code"]
    by_code = json.loads(clearing_admin(root, "catalog", "show", "440100", "--code", code, "--json").stdout)
    assert {item["local_code"] for item in by_code["items"]} == {code} and by_code["version"] == found["version"]
    one_error_line(clearing_admin(root, "members", "list", "999999"), "REGION", "999999")
    one_error_line(clearing_admin(root, "members", "list", "4401"), "REGION")
    one_error_line(clearing_admin(root, "catalog", "show", "999999", "--code", code), "REGION", "999999")
    one_error_line(clearing_admin(root, "catalog", "show", "440100"), "--code", "--search")
    one_error_line(clearing_admin(root, "catalog", "show", "440100", "--search", "x", "--on", "2026-02-30"), "on_date")
