"""`make demo` end to end, small: a month lived through on the demo's clock — discharged and settled in the month,
reconciled and closed on the 1st, paid and cleared on the 3rd — and a report that names the discharge month and
the clearing month (issue 9 items 2, 3 and 18)."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest
from rich.console import Console

from services.cli.demo import previous_month, run_demo
from services.common.clock import shanghai_today

pytestmark = pytest.mark.e2e


async def test_the_demo_lives_through_a_month_and_reports_it_cleared():
    work_dir = Path(tempfile.mkdtemp(prefix="clearing-demo-"))
    console = Console(record=True, width=140)
    try:
        rows = await run_demo(console, count=40, members=10, concurrency=6, seed=7, work_dir=work_dir)
        report = (work_dir / "report.md").read_text(encoding="utf-8")
        assert (work_dir / "netting.png").stat().st_size > 0 and (work_dir / "report.png").stat().st_size > 0
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    month = previous_month(shanghai_today())
    output = console.export_text()
    assert sum(row.stays for row in rows) >= 30
    assert f"Stays discharged in {month}" in output and "clearing month" in output
    assert f"{month} is over" in output
    # A month of outpatient special-disease visits beside the stays (seed 7, 10 members: one diabetes patient).
    assert f"Outpatient special-disease visits (门诊慢特病, med_type 14) in {month}" in output
    assert re.search(r"糖尿病 diabetes .*│\s+1\s+│\s+1\s+│", output), "the diabetes patient's monthly visit"
    assert "Smart audit (智能审核) at settlement" in output and "AUD-OVERLAP 重叠住院" in output  # by rule and region
    assert re.search(rf"{month}: settled \(已清算\)", output), "every transfer confirmed, the month cleared"
    assert f"Payout lists of {month}" in output and "closed, frozen" in output
    # One full dispute cycle after the audit table: 事后 audit, one accepted, one appealed and upheld, adjusted.
    assert f"事后 audit of 460100's members' cross-region stays discharged in {month}" in output
    assert "accepted" in output and "appeal" in output and "upheld" in output
    assert output.count(f"adjustment posted in {month}") == 2
    deducted = re.findall(r"│\s+([\d,]+\.\d\d)\s+│\s+[\d,]+\.\d\d\s+│ closed, frozen", output)
    assert len(deducted) == 7 and sum(value != "0.00" for value in deducted) >= 1, deducted  # the hospitals' 扣款
    # One region's DRG payment of the month (issue 13): per hospital, the grouped share, the cross-region balance.
    assert f"440100 pays its hospitals for {month} by DRG points" in output
    assert re.search(r"grouped \d+ of \d+ stays", output) and "cross-region DRG stays:" in output
    assert "; posted)" in output, "the month's payment posted at the treating agency"
    assert re.search(r"the DRG budget (gains|loses|breaks even) [\d,]+\.\d\d yuan", output)
    assert re.search(r"year-to-date preview \(1 month\(s\) posted\): point value [\d.]+ fen a point", output)
    assert f"Cross-region settlements of {month}" in report
    assert "*discharge month*" in report and "*clearing month*" in report
    assert "Month state: **settled" in report
