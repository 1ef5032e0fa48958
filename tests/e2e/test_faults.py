"""The fault harness in the suite (issue 5): a minute of discharges through cutting and delaying
proxies while services are SIGKILLed and restarted, then every invariant checked against every
party's database — run through the operator command, as `make soak` runs it for five minutes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from services.cli.simulate_view import exit_code, show_report
from services.faults.invariants import Check
from services.faults.report import Report

pytestmark = pytest.mark.e2e
CLEARING_ADMIN = Path(sys.executable).parent / "clearing-admin"
INVARIANTS = {"succeeded_recorded", "refused_not_paid", "nothing_paid_unseen", "parties_agree", "ledger_balanced",
              "balances_equal_postings", "aggregates_equal_postings", "statement_lines_equal_claims",
              "accumulators_recomputed", "no_pending",
              "unknowns_resolved", "disputes_adjusted_once", "deductions_equal_adjustments"}


def simulate(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLEARING_ADMIN), "simulate", *arguments, "--json"], capture_output=True, text=True,
                          timeout=400, check=False)


async def test_half_a_minute_of_kills_cuts_and_delays_loses_no_settlement_and_pays_none_twice():
    # 25 s: a service killed every 2–5 s gives several kills of the hub and the regions; `make soak` runs 5 minutes.
    finished = await asyncio.to_thread(simulate, "--seed", "7", "--faults", "--duration", "25", "--concurrency", "12")
    assert finished.stdout, finished.stderr[-3000:]
    report = json.loads(finished.stdout)
    failing = {check["name"]: check["failures"][:5] for check in report["invariants"] if check["failed"]}
    assert finished.returncode == 0, (failing, report["work_dir"])
    assert report["ok"] and not failing
    assert {check["name"] for check in report["invariants"]} == INVARIANTS
    assert all(check["checked"] > 0 for check in report["invariants"]), report["invariants"]
    # Faults were injected, and the HIS felt them.
    assert report["kills"] > 0 and report["cuts"] > 0 and report["delays"] > 0
    assert report["codes"].get("UNAVAILABLE", 0) > 0
    assert report["resolved_after_unknown"] > 0
    # A realistic mix went through: cross-region and local, settled, refused by an agreement, cancelled.
    assert report["succeeded"] > 100
    assert report["visits"] > 0  # outpatient special-disease visits (门诊慢特病) among them, through the same faults
    assert 0 < report["local"] < report["attempted"]
    assert report["cancelled"] > 0
    assert report["unknown"] == 0
    assert report["attempted"] == report["succeeded"] + report["failed"] + report["cancelled"] + report["reversed"]
    # The HIS reversed (冲正) the unknowns its retries did not resolve — how many depends on the timing of the
    # faults, and a run where every unknown was resolved by a retry has none (seen on an idle machine: the reversal
    # path itself is tested deterministically in test_deadlines and test_cancel_races); reconciliation repaired the
    # ones it walked away from.
    assert report["reversed"] >= 0 and report["resolved_after_unknown"] + report["reversed"] > 0
    assert report["repairs"] >= report["walked_away"]
    # Disputes (拒付) raised, answered and decided while services were killed: each ended as planned, every owed
    # adjustment was posted once at the clearing house and booked once by its treating agency (the invariants).
    assert report["disputes"] > 0 and report["disputes_refused"] == 0
    assert set(report["dispute_states"]) <= {"DISPUTE_STATE_ACCEPTED", "DISPUTE_STATE_UPHELD",
                                             "DISPUTE_STATE_REJECTED"}, report["dispute_states"]


def test_a_failed_invariant_is_printed_with_its_ids_and_exits_1():
    broken = Check("no_pending", "no settlement is left pending at any party", checked=3)
    broken.fail("6f1c0a52-0000-4000-8000-000000000001 pending at the clearing house (member 430102199001011234)")
    report = Report(seed=5, duration_s=1, faults=True, concurrency=1,
                    invariants=[Check("ledger_balanced", "every ledger transaction balances", checked=9), broken],
                    work_dir="/tmp/run")
    console = Console(record=True, width=200)
    show_report(console, report)
    text = console.export_text()
    assert exit_code(report) == 1
    assert "no_pending FAILED for 1" in text and "6f1c0a52-0000-4000-8000-000000000001" in text
    assert "430102199001011234" not in text and "4301**********1234" in text  # ID numbers are masked
    assert "/tmp/run" in text
    assert exit_code(Report(seed=5, duration_s=1, faults=True, concurrency=1, invariants=[
        Check("ledger_balanced", "every ledger transaction balances", checked=9)])) == 0
