"""`clearing-admin certs …` through the console script's `main()` (tests/in_process_cli.py): the directory it makes, rotation, revocation, the table,
and every refusal as one `error: …` line with exit code 2."""

from __future__ import annotations

import subprocess
from pathlib import Path

from in_process_cli import run_cli

from services.common.regions import load_regions
from services.security import certs
from services.security.certs import CertDir
from services.security.identity import agency, hospital, operator



def run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return run_cli("certs", *arguments)


def test_init_issue_revoke_show(tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    made = run("init", str(directory), "--operator", "alice", "--days", "30")
    assert made.returncode == 0, made.stderr
    regions = load_regions()
    expected = 2 + len(regions) + sum(len(region.hospitals) for region in regions.values()) + 2  # admin, alice
    assert len(CertDir(directory).identities()) == expected
    assert operator("alice") in CertDir(directory).identities()
    again = run("init", str(directory), "--operator", "alice")
    assert again.returncode == 0 and f"0 certificates issued, {expected} kept" in again.stdout

    old = certs.load_certificate(CertDir(directory).cert(agency("440100"))).serial_number
    issued = run("issue", str(directory), "agency/440100", "--days", "5")
    new = certs.load_certificate(CertDir(directory).cert(agency("440100"))).serial_number
    assert issued.returncode == 0 and new != old and f"{new:x}" in issued.stdout

    revoked = run("revoke", str(directory), "hospital/H44010000001/")
    serial = certs.load_certificate(CertDir(directory).cert(hospital("H44010000001"))).serial_number
    assert revoked.returncode == 0 and certs.read_deny_list(CertDir(directory).revoked) == {serial}

    shown = run("show", str(directory))
    assert shown.returncode == 0
    line = next(text for text in shown.stdout.splitlines() if "hospital/H44010000001 " in text)
    assert f"{serial:x}" in line and "yes" in line
    assert f"{new:x}" in shown.stdout


def test_refusals_are_one_line_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    for arguments, needle in [
        (("issue", str(empty), "agency/440100"), "DIR:"),
        (("show", str(empty)), "DIR:"),
        (("init", str(tmp_path / "x"), "--operator", "Alice"), "--operator:"),
        (("issue", str(empty), "agency/44010"), "ROLE_PATH:"),
        (("revoke", str(empty), "insured/440100"), "ROLE_PATH:"),
    ]:
        refused = run(*arguments)
        assert refused.returncode == 2, (arguments, refused.stderr)
        assert refused.stdout == ""
        lines = refused.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], (arguments, refused.stderr)
