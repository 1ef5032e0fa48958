"""`clearing-admin policy whatif` (SPEC §12.5) against a stack of the module's own with a month of settlements.

The month: the HIS simulator discharges DISCHARGES patients of every region in April 2026 (some insured in
430100 are treated at home, most elsewhere, some in batches), a few 430100 stays are then cancelled (撤销) and one
reversed (冲正), and more stays follow, so members settle again after an undo. The real command (a subprocess,
over mutual TLS as the operator) then replays 430100's settlements: under the policy in force the self-check
reproduces every recorded split, and under a draft with one band ratio changed the report moves the basic fund
and nothing else that cannot move. Bad input is one `error:` line, exit 2.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from clearinghouse.v1 import hospital_pb2
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import treating_agency_pb2 as ta

from clearing.money import apply_bp
from services.common.regions import REGIONS_DIR
from conftest import clearing_admin, write_stack_file

INSURED = "430100"
MONTH = "2026-04"
DISCHARGES = 300  # about forty stays of 430100's members (10 members in the module's stack), several each
IN_FORCE = REGIONS_DIR / "policies" / f"{INSURED}_2026.toml"



async def discharge(own_stack, seed: int, count: int) -> None:  # noqa: ANN001
    async for _ in own_stack.hospital().RunDischarges(hospital_pb2.RunDischargesRequest(
            request_id=str(uuid.uuid4()), count=count, seed=seed, concurrency=8, month=MONTH)):
        pass


@pytest.fixture(scope="module")
async def month(own_stack, own_kit, timeline, tmp_path_factory) -> Path:  # noqa: ANN001
    """The month of settlements; returns the stack's configuration file."""
    timeline.at("2026-04-30", hour=20)
    await discharge(own_stack, 11, DISCHARGES)
    undone = []
    for region in sorted(own_stack.regions):
        connection = await own_stack.connect(f"treating_{region}")
        try:
            undone += [(region, row["settlement_id"], row["request_id"]) for row in await connection.fetch(
                "SELECT settlement_id::text, request_id::text FROM settlements WHERE insured_region = $1 "
                "AND status = 'settled' ORDER BY settlement_id LIMIT 2", INSURED)]
        finally:
            await connection.close()
    assert len(undone) >= 4, "stays of 430100's members treated in several regions"
    for region, settlement_id, _ in undone[:-1]:
        await own_kit.treating(region).Cancel(ta.CancelRequest(request_id=own_kit.rid(), settlement_id=settlement_id,
                                                               reason="what-if test"))
    region, _, request_id = undone[-1]
    await own_kit.treating(region).Reverse(ta.ReverseRequest(request_id=own_kit.rid(), original_request_id=request_id,
                                                             reason="what-if test"))
    await discharge(own_stack, 12, DISCHARGES // 4)  # members settle again after the undoing
    return write_stack_file(own_stack, tmp_path_factory.mktemp("whatif") / "stack.json")


async def insured_figures(own_stack) -> dict[str, int]:  # noqa: ANN001
    connection = await own_stack.connect(f"insured_{INSURED}")
    try:
        row = await connection.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'settled') AS standing, count(*) AS recorded, "
            "count(*) FILTER (WHERE status <> 'settled') AS undone, "
            "coalesce(sum(hifp_fen) FILTER (WHERE status = 'settled'), 0) AS hifp_fen, "
            "coalesce(sum(fund_pay_fen) FILTER (WHERE status = 'settled'), 0) AS fund_pay_fen "
            "FROM settlements WHERE discharged_on >= '2026-04-01' AND discharged_on < '2026-05-01'")
        return dict(row)
    finally:
        await connection.close()


async def band_0_change_by_hand(own_stack, level_3_ratio_bp: int) -> int:  # noqa: ANN001
    """What the first employee band pays more at level 3 with `level_3_ratio_bp`, worked from the recorded
    explanations of April's standing stays: a stay's part of the band (`basic_band` band 0, from_fen..to_fen) lies
    where it lay (the eligible axis does not depend on ratios), paid at the new ratio with the same retired and
    poverty bonus and filing cut, clamped to 0..100 %, `apply_bp` as ever; the other stays do not change."""
    connection = await own_stack.connect(f"insured_{INSURED}")
    try:
        rows = await connection.fetch(
            "SELECT s.request, s.response, m.scheme FROM settlements s JOIN members m USING (member_id) "
            "WHERE s.status = 'settled' AND s.discharged_on >= '2026-04-01' AND s.discharged_on < '2026-05-01'")
    finally:
        await connection.close()
    change_fen = 0
    for row in rows:
        level = ia.AdjudicateRequest.FromString(bytes(row["request"])).claim.stay.hospital_level
        if row["scheme"] != "employee" or level != 3:
            continue
        for step in ia.AdjudicateResponse.FromString(bytes(row["response"])).adjudication.explanation:
            if step.step == "basic_band" and step.facts["band"] == "0":
                facts = {key: int(value) for key, value in step.facts.items()}
                ratio_bp = min(10_000, max(0, level_3_ratio_bp + facts["retired_bp"] + facts["poverty_bp"]
                                           - facts["cut_bp"]))
                change_fen += apply_bp(facts["to_fen"] - facts["from_fen"], ratio_bp) - step.amount_fen
    return change_fen


async def test_the_policy_in_force_reproduces_every_settlement_of_the_month(own_stack, month, tmp_path):
    figures = await insured_figures(own_stack)
    assert figures["undone"] >= 4 and figures["standing"] >= 30  # the simulator cancels a few of its own too
    code, out, err = await clearing_admin("policy", "whatif", INSURED, "--policy", str(IN_FORCE), "--months",
                                          f"{MONTH}..{MONTH}", "--config", str(month), "--json", "--out", str(tmp_path))
    assert code == 0, err
    report = json.loads(out)
    assert report["self_check"] == {"passed": True, "mismatches": []}
    assert report["replayed"] == figures["recorded"]  # the cancelled and reversed ones are replayed too
    assert report["settlements"] == figures["standing"]  # … and not reported
    assert report["by_fund"]["in_force_fen"]["fund_pay_fen"] == figures["fund_pay_fen"]
    assert report["by_fund"]["in_force_fen"]["basic"] == figures["hifp_fen"]
    assert set(report["by_fund"]["change_fen"].values()) == {0}  # the draft is the policy in force
    assert report["members_rising"] == [] and report["members_falling"] == []
    written = tmp_path / f"whatif-{INSURED}-{MONTH}-{MONTH}.png"
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(written.with_suffix(".json").read_text(encoding="utf-8")) == report


async def test_a_higher_band_ratio_raises_the_basic_fund_and_lowers_own_shares(own_stack, month, tmp_path):
    # Level-3 hospitals' first employee band 80 % → 90 %: employee stays at level-3 hospitals with an eligible
    # amount in the first band pay more from the basic fund (up to the annual cap). A member's own share can still
    # rise: a stay cancelled later paid more too, lowering the 大病 axis for the stays settled while it stood.
    text = IN_FORCE.read_text(encoding="utf-8")
    changed = text.replace('ratio_bp = { "1" = 9000, "2" = 8500, "3" = 8000 }',
                           'ratio_bp = { "1" = 9000, "2" = 8500, "3" = 9000 }')
    assert changed != text
    draft = tmp_path / "draft.toml"
    draft.write_text(changed, encoding="utf-8")
    code, out, err = await clearing_admin("policy", "whatif", INSURED, "--policy", str(draft), "--months",
                                          f"{MONTH}..{MONTH}", "--config", str(month))
    assert code == 0, err
    assert "self-check (replay under the policy in force reproduces every split): passed" in out
    code, out, err = await clearing_admin("policy", "whatif", INSURED, "--policy", str(draft), "--months",
                                          f"{MONTH}..{MONTH}", "--config", str(month), "--json")
    report = json.loads(out)
    change = report["by_fund"]["change_fen"]
    assert change["basic"] > 0 and change["psn_pay_fen"] < 0
    assert report["by_band"]["change_fen"]["band 0"] == await band_0_change_by_hand(own_stack, 9000) > 0
    assert report["by_scheme"]["resident"]["change_fen"]["fund_pay_fen"] == 0  # the resident scheme is unchanged
    assert report["members_falling"] and report["members_falling"][0]["change_fen"] < 0
    # The band's pay moves by 10 points of what of the eligible amounts lay in band 0 at level 3, before the cap
    # and the 大病/救助 knock-on: the band row alone is that exact figure, checked in tests/unit/test_whatif.py.
    assert change["fund_pay_fen"] == change["basic"] + change["critical"] + change["assistance"]
    assert change["fund_pay_fen"] == -change["psn_pay_fen"]


@pytest.mark.parametrize(("arguments", "expected"), [
    (("999999", "--months", "2026-04..2026-04"), "REGION"),
    ((INSURED, "--months", "2026-05..2026-04"), "--months"),
    ((INSURED, "--months", "2026-4"), "--months"),
    ((INSURED, "--months", "2026-04..2026-04", "BROKEN"), "schemes.employee.bands[1].upto_fen"),
    ((INSURED, "--months", "2026-04..2026-04", "OTHER-REGION"), "--policy"),
])
async def test_bad_input_is_one_error_line(month, tmp_path, arguments, expected):
    policy = IN_FORCE
    if "BROKEN" in arguments:  # bands out of order
        policy = tmp_path / "broken.toml"
        policy.write_text(IN_FORCE.read_text(encoding="utf-8").replace(
            "  [[schemes.employee.bands]]\n  ratio_bp", "  [[schemes.employee.bands]]\n  upto_fen = 100\n  ratio_bp", 1),
            encoding="utf-8")
    if "OTHER-REGION" in arguments:
        policy = REGIONS_DIR / "policies" / "440100_2026.toml"
    arguments = tuple(item for item in arguments if item not in ("BROKEN", "OTHER-REGION"))
    code, out, err = await clearing_admin("policy", "whatif", *arguments, "--policy", str(policy),
                                          "--config", str(month))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and expected in err, err
