"""`clearing-admin stack up | status | down` across terminals: one `stack up` (a subprocess, as an operator's
terminal) owns a temporary directory for the module, every region over mutual TLS with certificates it made; a
second one on that directory is refused, `stack status`
sees every service, the prepayments are funded, and `stack down` stops it all. The down test runs last in the
module (pytest keeps file order); run alone, it stops its own stack."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from services.stack.config import StackConfig

pytestmark = pytest.mark.e2e
CLI = Path(sys.executable).parent / "clearing-admin"
PREPAYMENT_FEN = 123_456_00  # not the default, so the test sees the option taken


@dataclass
class RunningStack:
    process: subprocess.Popen
    work_dir: Path
    seen: str

    @property
    def config(self) -> StackConfig:
        return StackConfig.load(self.work_dir / "stack.json")


def run_cli(*arguments: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `clearing-admin`; one that is still running at `timeout` (a `stack up` that was not refused) gets SIGTERM,
    which stops what it started, and the test fails."""
    process = subprocess.Popen([str(CLI), *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=120)
        pytest.fail(f"clearing-admin {' '.join(arguments)} still ran after {timeout} s")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def leftovers(work_dir: Path) -> list[str]:
    """Every process of that directory still running: its services and its embedded Postgres."""
    found = []
    for pattern in (f"--config {work_dir}", f"postgres -D {(work_dir / 'pgdata').resolve()}"):
        result = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
        found += result.stdout.split()
    return found


@pytest.fixture(scope="module")
def stack():
    work_dir = Path(tempfile.mkdtemp(prefix="clearing-stack-")) / "stack"
    process = subprocess.Popen([str(CLI), "stack", "up", "--dir", str(work_dir), "--members", "3",
                                "--prepayment-fen", str(PREPAYMENT_FEN)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        for line in process.stdout:  # bounded by the stack's own health wait (60 s) and the test timeout
            seen.append(line)
            if "Press Ctrl-C" in line:
                break
        assert any("Press Ctrl-C" in line for line in seen), "".join(seen) + process.stderr.read()
        yield RunningStack(process, work_dir, "".join(seen))
    finally:
        if process.poll() is None:  # (the down test has stopped it already)
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=120)
        assert leftovers(work_dir) == []
        shutil.rmtree(work_dir.parent, ignore_errors=True)


def test_stack_up_starts_every_region_over_mutual_tls_with_certificates_of_its_own(stack):
    """Every configured region and the clearing house, mutual TLS by default with the certificates it made under
    its directory (the stop on SIGTERM is `stack down`'s, last in the module)."""
    config = stack.config
    assert len(config.region_ports) == 7 and "clearinghouse" in stack.seen
    assert not config.insecure and Path(config.certs_dir) == (stack.work_dir / "certs").resolve()
    assert (stack.work_dir / "certs" / "operator" / "admin" / "cert.pem").exists()
    assert "Mutual TLS" in stack.seen


def test_a_second_stack_up_on_the_same_directory_is_refused_naming_the_first(stack):
    before = (stack.work_dir / "stack.json").read_bytes()
    second = run_cli("stack", "up", "--dir", str(stack.work_dir), "--members", "3", timeout=60)
    assert second.returncode == 2, second
    assert second.stdout == ""
    assert second.stderr.startswith("error: --dir: ") and second.stderr.count("\n") == 1, second.stderr
    assert f"pid {stack.process.pid}, since " in second.stderr and "stack down" in second.stderr
    assert (stack.work_dir / "stack.json").read_bytes() == before, "the first stack's configuration is untouched"
    assert stack.process.poll() is None, "the first stack runs on"


def test_stack_status_shows_every_service_healthy_with_ports_and_pids(stack):
    """… and its metrics port, which the stack also lists for Prometheus (file_sd, deploy/prometheus.yml)."""
    config = stack.config
    ports = {"clearinghouse": config.clearing_house_port, "his": config.his_port,
             **{f"region:{region}": port for region, port in config.region_ports.items()}}
    status = run_cli("stack", "status", "--dir", str(stack.work_dir), "--json")
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    assert document["healthy"] and document["state"] == "running"
    assert document["owner"]["pid"] == stack.process.pid
    services = {item["role"]: item for item in document["services"]}
    assert set(services) == set(ports) and len(services) == 9
    children = {child.pid for child in psutil.Process(stack.process.pid).children()}
    for role, item in services.items():
        assert item["health"] == "serving", item
        assert item["port"] == ports[role], item
        assert item["metrics_port"] == config.metrics_ports[role] > 0, item
        assert item["pid"] in children, item  # the owner's own child, alive
        assert item["uptime_s"] is not None and item["uptime_s"] >= 0
    assert document["database"]["health"] == "serving" and document["database"]["pid"] > 0
    shown = run_cli("stack", "status", "--dir", str(stack.work_dir))
    assert shown.returncode == 0, shown.stderr
    for role, item in services.items():
        assert role in shown.stdout and str(item["port"]) in shown.stdout and str(item["pid"]) in shown.stdout
        assert str(item["metrics_port"]) in shown.stdout
    assert "every service is serving" in shown.stdout
    targets = json.loads((stack.work_dir / "prometheus_targets.json").read_text())
    assert {group["labels"]["role"]: group["targets"] for group in targets} == {
        role: [f"127.0.0.1:{port}"] for role, port in config.metrics_ports.items()}


def test_stack_up_funds_the_prepayments(stack):
    assert "123,456.00 ¥ deposited for each of the 7 insured regions" in stack.seen.replace("\n", " ")
    status = run_cli("prepayment", "status", "--config", str(stack.work_dir / "stack.json"), "--json")
    assert status.returncode == 0, status.stderr
    items = json.loads(status.stdout)
    assert {item["insured_region"] for item in items} == set(stack.config.region_ports)
    for item in items:
        assert int(item["balance_fen"]) == PREPAYMENT_FEN, item
        assert not item.get("exhausted") and not item.get("warning"), item
    shown = run_cli("prepayment", "status", "--config", str(stack.work_dir / "stack.json"))
    assert "EXHAUSTED" not in shown.stdout


def test_stack_down_stops_the_stack_from_another_terminal(stack):
    """Last in the module: it stops the module's stack."""
    down = run_cli("stack", "down", "--dir", str(stack.work_dir))
    assert down.returncode == 0, down.stderr
    assert f"stopped the stack in {stack.work_dir}: owner pid {stack.process.pid}" in down.stdout
    out, _ = stack.process.communicate(timeout=30)
    assert stack.process.returncode in (0, 143)
    assert "stopped" in out
    assert leftovers(stack.work_dir) == [], "no service and no Postgres of the directory survives"
    for command in ("status", "down"):
        after = run_cli("stack", command, "--dir", str(stack.work_dir))
        assert after.returncode == 2 and after.stdout == "", after
        assert after.stderr.count("\n") == 1 and "no stack is running" in after.stderr
