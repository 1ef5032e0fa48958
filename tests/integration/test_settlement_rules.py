"""Settlement rules through the real parties (SPEC §2, §4.3, §5.2, §6, §8 cancel 2305).

Same-region stays are settled locally; a cross-region stay is classified by the catalogue the
region-pair agreement names (treating vs insured rule); the 211100–230400 agreement rejects
untranslatable lines with nothing recorded downstream; a cancel restores the accumulators exactly
and posts a mirror ledger transaction; the filing status decides the ratio cut.

Every test registers its own members, so accumulators start from zero and belong to that test.
Expected amounts are worked out by hand from the policy files named in the comments.
"""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_UP, Decimal

import grpc
import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

ADMITTED_ON = "2026-03-02"
DISCHARGED_ON = "2026-03-06"
H_GUANGZHOU = "H44010000001"  # 广州市第一人民医院, level 3
H_PANJIN = "H21110000001"  # 盘锦市中心医院, level 3
H_HEGANG = "H23040000001"  # 鹤岗市人民医院, level 3


def bp_of(amount_fen: int, ratio_bp: int) -> int:
    """round_half_up(amount × bp / 10000) by Decimal, independent of clearing.money."""
    return int((Decimal(amount_fen) * ratio_bp / 10000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def steps(settlement: types_pb2.Settlement, key: str) -> list[types_pb2.ExplanationStep]:
    return [step for step in settlement.adjudication.explanation if step.step == key]


# ---------------------------------------------------------------------------------------------
# Same-region stays (SPEC §2: local patients do not touch the clearing house)
# ---------------------------------------------------------------------------------------------

async def test_same_region_stay_is_settled_locally_without_the_clearing_house(kit):
    member = await kit.new_member("440100", scheme="employee")  # unfiled, but a local patient takes no cut
    code = kit.plain_codes("440100")[0]
    before = await kit.counts("clearinghouse")

    settlement = await kit.discharge(H_GUANGZHOU, member, [kit.bill_line("1", code, "2", 150000, ADMITTED_ON)],
                                     ADMITTED_ON, DISCHARGED_ON)

    assert settlement.local is True
    assert settlement.status == types_pb2.SETTLEMENT_STATUS_SETTLED
    assert settlement.catalogue_rule == types_pb2.CATALOGUE_RULE_TREATING
    assert settlement.claim.treating_region == settlement.claim.insured_region == "440100"
    # 440100 employee (440100_2026.toml), level 3: deductible 1,000.00; band 1 ratio 85 %; no cut.
    # total 2 × 1,500.00 = 3,000.00, all grade A → eligible 2,000.00 → hifp 1,700.00;
    # burden 1,300.00 is below the 大病 threshold 10,000.00 → hifmi 0; no assistance.
    split = settlement.adjudication.split
    assert (split.total_fen, split.inscp_fen, split.deductible_fen, split.hifp_fen, split.hifmi_fen,
            split.maf_fen, split.fund_pay_fen, split.psn_pay_fen) == \
        (300000, 300000, 100000, 170000, 0, 0, 170000, 130000)
    assert [step.facts["cut_bp"] for step in steps(settlement, "basic_band")] == ["0"]

    assert await kit.counts("clearinghouse") == before, "a local stay writes nothing at the clearing house"
    clearing = await kit.db("clearinghouse")
    assert await clearing.fetchval("SELECT count(*) FROM claims WHERE settlement_id = $1",
                                   uuid.UUID(settlement.settlement_id)) == 0
    assert await kit.ledger(settlement.settlement_id) == {}
    recorded = await (await kit.db("insured_440100")).fetchrow(
        "SELECT status, fund_pay_fen, psn_pay_fen FROM settlements WHERE settlement_id = $1",
        uuid.UUID(settlement.settlement_id))
    assert tuple(recorded) == ("settled", 170000, 130000)
    treating = await (await kit.db("treating_440100")).fetchrow(
        "SELECT local, status FROM settlements WHERE settlement_id = $1", uuid.UUID(settlement.settlement_id))
    assert tuple(treating) == (True, "settled")
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(settlement.adjudication.ytd_after)


# ---------------------------------------------------------------------------------------------
# Treating rule vs insured rule (SPEC §4.3)
# ---------------------------------------------------------------------------------------------

def rows_valid_on(region: str, national_code: str, day: str, kit) -> list[dict[str, str]]:
    return [row for row in kit.catalogue_rows(region) if row["national_code"] == national_code
            and row["valid_from"] <= day and (not row["valid_to"] or day <= row["valid_to"])]


def grade_a_here_grade_b_there(kit) -> tuple[str, dict[str, str], dict[str, str]]:
    """A plain grade-A 440100 code whose national code is exactly one plain grade-B row in 430100."""
    for code in kit.plain_codes("440100"):
        row = kit.versions_by_code("440100")[code][0]
        targets = rows_valid_on("430100", row["national_code"], ADMITTED_ON, kit)
        if len(targets) == 1 and targets[0]["local_code"] in kit.plain_codes("430100", "B") \
                and int(targets[0]["selfpay_bp"]) > 0:
            return code, row, targets[0]
    raise AssertionError("the generated catalogues have no such pair")


async def test_treating_rule_and_insured_rule_classify_the_same_line_differently(kit):
    code, treating_row, insured_row = grade_a_here_grade_b_there(kit)
    selfpay_bp = int(insured_row["selfpay_bp"])
    line = kit.bill_line("1", code, "3", 20000, ADMITTED_ON)  # 600.00
    # 430100–440100: the insured region's catalogue (agreements.toml); both filed residents: no cut.
    insured_rule_member = await kit.new_member("430100", filing="resident")
    treating_rule_member = await kit.new_member("610924", filing="resident")  # no agreement: treating rule

    by_insured = await kit.discharge(H_GUANGZHOU, insured_rule_member, [line], ADMITTED_ON, DISCHARGED_ON)
    by_treating = await kit.discharge(H_GUANGZHOU, treating_rule_member, [line], ADMITTED_ON, DISCHARGED_ON)

    assert by_insured.local is False and by_treating.local is False
    assert by_insured.catalogue_rule == types_pb2.CATALOGUE_RULE_INSURED
    assert by_treating.catalogue_rule == types_pb2.CATALOGUE_RULE_TREATING

    (insured_line,) = by_insured.adjudication.lines
    assert insured_line.catalogue_region == "430100"
    assert insured_line.catalogue_code == insured_row["local_code"]
    assert insured_line.national_code == treating_row["national_code"]
    assert insured_line.grade == types_pb2.GRADE_B
    assert insured_line.selfpay_bp == selfpay_bp
    preselfpay_fen = bp_of(60000, selfpay_bp)
    assert (insured_line.fulamt_ownpay_fen, insured_line.overlmt_selfpay_fen, insured_line.preselfpay_fen,
            insured_line.inscp_fen) == (0, 0, preselfpay_fen, 60000 - preselfpay_fen)
    # Price and quantity stay the hospital's.
    assert (insured_line.line.code, insured_line.line.qty, insured_line.line.amount_fen) == (code, "3", 60000)
    assert insured_row["local_code"] in insured_line.note
    assert [step.facts["note"] for step in steps(by_insured, "line_note")] == [insured_line.note]
    assert list(by_insured.claim.lines) == list(by_insured.adjudication.lines)

    (treating_line,) = by_treating.adjudication.lines
    assert treating_line.catalogue_region == "440100"
    assert treating_line.catalogue_code == code
    assert treating_line.grade == types_pb2.GRADE_A
    assert (treating_line.preselfpay_fen, treating_line.inscp_fen) == (0, 60000)
    assert treating_line.note == ""
    assert by_insured.adjudication.split.preselfpay_fen == preselfpay_fen
    assert by_treating.adjudication.split.preselfpay_fen == 0


def several_candidates(kit, with_equivalent: bool) -> tuple[str, str, int]:
    """A plain 440100 code whose national code has several 430100 rows on the date; returns the
    code, the 430100 code SPEC §4.3 chooses (the equivalent one, else the lowest) and the count.
    With an equivalent, one that is not also the lowest code is preferred (it tells the rules apart)."""
    found = []
    for code in kit.plain_codes("440100"):
        row = kit.versions_by_code("440100")[code][0]
        targets = rows_valid_on("430100", row["national_code"], ADMITTED_ON, kit)
        if len(targets) < 2:
            continue
        equivalents = sorted(t["local_code"] for t in targets if t["relation"] == "equivalent")
        lowest = min(t["local_code"] for t in targets)
        if with_equivalent and equivalents:
            found.append((equivalents[0] == lowest, code, equivalents[0], len(targets)))
        if not with_equivalent and not equivalents:
            found.append((False, code, lowest, len(targets)))
    assert found, "the generated catalogues have no such code"
    _, code, chosen, count = min(found)
    return code, chosen, count


async def test_insured_rule_chooses_the_equivalent_item_else_the_lowest_code_and_says_so(kit):
    with_equivalent, chosen_a, count_a = several_candidates(kit, with_equivalent=True)
    without, chosen_b, count_b = several_candidates(kit, with_equivalent=False)
    member = await kit.new_member("430100", filing="referral")
    settlement = await kit.discharge(H_GUANGZHOU, member, [
        kit.bill_line("1", with_equivalent, "1", 5000, ADMITTED_ON),
        kit.bill_line("2", without, "1", 5000, ADMITTED_ON),
    ], ADMITTED_ON, DISCHARGED_ON)
    first, second = settlement.adjudication.lines
    assert (first.catalogue_region, first.catalogue_code) == ("430100", chosen_a)
    assert (second.catalogue_region, second.catalogue_code) == ("430100", chosen_b)
    assert chosen_a in first.note and f"{count_a} candidates" in first.note and "equivalent" in first.note
    assert chosen_b in second.note and f"{count_b} candidates" in second.note


# ---------------------------------------------------------------------------------------------
# 211100–230400: an untranslatable line rejects the claim (agreements.toml, unmapped = "reject")
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("hospital_code", "insured_region"), [(H_PANJIN, "230400"), (H_HEGANG, "211100")],
                         ids=["230400-member-at-211100", "211100-member-at-230400"])
async def test_reject_agreement_refuses_an_unmapped_line_and_nothing_is_recorded_downstream(
        kit, hospital_code, insured_region):
    treating_region = hospital_code[1:7]
    member = await kit.new_member(insured_region, filing="resident")
    lines = [kit.bill_line("1", kit.plain_codes(treating_region)[0], "1", 8000, ADMITTED_ON),
             kit.bill_line("2", kit.local_only_code(treating_region), "2", 3000, ADMITTED_ON)]
    encounter_id = await kit.open_encounter(hospital_code, member, lines, ADMITTED_ON)
    downstream = ("clearinghouse", f"insured_{insured_region}")
    before = await kit.counts(*downstream)
    ytd_before = await kit.accumulators(member)
    request = ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on=DISCHARGED_ON)

    error = await kit.refusal(kit.treating(treating_region).Settle(request))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="lines[1].code")
    assert kit.local_only_code(treating_region) in error.details()

    assert await kit.counts(*downstream) == before, "no claim, ledger entry or adjudication anywhere downstream"
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(ytd_before)
    # The treating agency keeps the refusal under the request id (so a retry gets the same answer)
    # and the encounter has no live settlement.
    rows = await (await kit.db(f"treating_{treating_region}")).fetch(
        "SELECT status FROM settlements WHERE encounter_id = $1", uuid.UUID(encounter_id))
    assert [row["status"] for row in rows] == ["failed"]
    again = await kit.refusal(kit.treating(treating_region).Settle(request))
    kit.assert_refused(again, grpc.StatusCode.INVALID_ARGUMENT, field="lines[1].code")
    assert await kit.counts(*downstream) == before


# Regression: PreSettle ran SELECT … FOR UPDATE inside its read-only transaction and answered
# INTERNAL for every encounter.
async def test_reject_agreement_refuses_the_quote_too(kit):
    member = await kit.new_member("230400", filing="resident")
    lines = [kit.bill_line("1", kit.plain_codes("211100")[0], "1", 8000, ADMITTED_ON),
             kit.bill_line("2", kit.local_only_code("211100"), "2", 3000, ADMITTED_ON)]
    encounter_id = await kit.open_encounter(H_PANJIN, member, lines, ADMITTED_ON)
    before = await kit.counts("treating_211100", "clearinghouse", "insured_230400")
    error = await kit.refusal(kit.treating("211100").PreSettle(
        ta.PreSettleRequest(encounter_id=encounter_id, discharged_on=DISCHARGED_ON)))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="lines[1].code")
    assert await kit.counts("treating_211100", "clearinghouse", "insured_230400") == before


async def test_default_agreement_self_pays_an_unmapped_line_and_flags_it(kit):
    member = await kit.new_member("610924", filing="resident")  # 610924–211100: defaults (treating, selfpay)
    unmapped = kit.local_only_code("211100")
    settlement = await kit.discharge(H_PANJIN, member, [
        kit.bill_line("1", kit.plain_codes("211100")[0], "1", 8000, ADMITTED_ON),
        kit.bill_line("2", unmapped, "2", 3000, ADMITTED_ON)], ADMITTED_ON, DISCHARGED_ON)
    line = settlement.adjudication.lines[1]
    assert line.reason == types_pb2.LINE_REASON_UNMAPPED
    assert (line.fulamt_ownpay_fen, line.overlmt_selfpay_fen, line.preselfpay_fen, line.inscp_fen) == (6000, 0, 0, 0)
    assert list(settlement.flags) == ["UNMAPPED_LINE"]
    assert settlement.adjudication.split.fulamt_ownpay_fen == 6000
    claim = await (await kit.db("clearinghouse")).fetchrow(
        "SELECT status FROM claims WHERE settlement_id = $1", uuid.UUID(settlement.settlement_id))
    assert claim["status"] == "settled"


# ---------------------------------------------------------------------------------------------
# Cancel (2305): accumulators restored exactly, mirror ledger transaction (SPEC §6, §8)
# ---------------------------------------------------------------------------------------------

async def test_cancel_restores_accumulators_exactly_and_posts_a_mirror_transaction(kit):
    member = await kit.new_member("610924", filing="resident")
    code = kit.plain_codes("440100")[1]
    first = await kit.discharge(H_GUANGZHOU, member, [kit.bill_line("1", code, "4", 125000, "2026-02-03")],
                                "2026-02-02", "2026-02-09")
    after_first = await kit.accumulators(member)
    assert kit.ytd_dict(after_first) == kit.ytd_dict(first.adjudication.ytd_after)
    assert after_first.admissions == 1 and after_first.hifp_fen > 0

    second = await kit.discharge(H_GUANGZHOU, member, [kit.bill_line("1", code, "10", 250000, ADMITTED_ON)],
                                 ADMITTED_ON, DISCHARGED_ON)
    assert kit.ytd_dict(second.adjudication.ytd_before) == kit.ytd_dict(after_first)
    assert kit.ytd_dict(await kit.accumulators(member)) != kit.ytd_dict(after_first)

    cancelled = await kit.treating("440100").Cancel(ta.CancelRequest(
        request_id=kit.rid(), settlement_id=second.settlement_id, reason="wrong patient"))
    assert cancelled.settlement.status == types_pb2.SETTLEMENT_STATUS_CANCELLED
    assert kit.ytd_dict(cancelled.settlement.adjudication.ytd_after) == kit.ytd_dict(after_first)
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(after_first), "restored exactly"

    fund_pay_fen = second.adjudication.split.fund_pay_fen
    postings = await kit.ledger(second.settlement_id)
    assert set(postings) == {"settlement", "cancel"}
    # The obligation and the draw on the prepayment: two legs each way.
    assert sorted(postings["settlement"].values()) == [-fund_pay_fen] * 2 + [fund_pay_fen] * 2
    assert sum(postings["cancel"].values()) == 0
    accounts = set(postings["settlement"]) | set(postings["cancel"])
    assert accounts == set(postings["settlement"]) == set(postings["cancel"])
    assert {account: postings["settlement"][account] + postings["cancel"][account] for account in accounts} == \
        dict.fromkeys(accounts, 0)
    # The first stay's postings are untouched.
    assert sorted((await kit.ledger(first.settlement_id))["settlement"].values()) == \
        [-first.adjudication.split.fund_pay_fen] * 2 + [first.adjudication.split.fund_pay_fen] * 2

    sid = uuid.UUID(second.settlement_id)
    assert await (await kit.db("clearinghouse")).fetchval("SELECT status FROM claims WHERE settlement_id = $1",
                                                          sid) == "cancelled"
    assert await (await kit.db("insured_610924")).fetchval("SELECT status FROM settlements WHERE settlement_id = $1",
                                                           sid) == "cancelled"
    looked_up = await kit.treating("440100").GetSettlement(ta.GetSettlementRequest(settlement_id=second.settlement_id))
    assert looked_up.settlement.status == types_pb2.SETTLEMENT_STATUS_CANCELLED
    claim = await kit.clearing().GetClaim(ch.GetClaimRequest(settlement_id=second.settlement_id))
    assert claim.settlement.status == types_pb2.SETTLEMENT_STATUS_CANCELLED


async def test_cancel_of_a_local_stay_restores_accumulators_without_a_ledger(kit):
    member = await kit.new_member("440100", scheme="resident")
    code = kit.plain_codes("440100")[2]
    settlement = await kit.discharge(H_GUANGZHOU, member, [kit.bill_line("1", code, "1", 450000, ADMITTED_ON)],
                                     ADMITTED_ON, DISCHARGED_ON)
    assert settlement.local and kit.ytd_dict(await kit.accumulators(member))["admissions"] == 1
    cancelled = await kit.treating("440100").Cancel(ta.CancelRequest(
        request_id=kit.rid(), settlement_id=settlement.settlement_id, reason="duplicate bill"))
    assert cancelled.settlement.status == types_pb2.SETTLEMENT_STATUS_CANCELLED
    assert kit.ytd_dict(await kit.accumulators(member)) == dict.fromkeys(kit.ytd_dict(settlement.adjudication.ytd_after), 0)
    assert await kit.ledger(settlement.settlement_id) == {}


# ---------------------------------------------------------------------------------------------
# Filing status and the ratio cut (SPEC §5.2 step 3)
# ---------------------------------------------------------------------------------------------

# 610924_2026.toml: employee, level 3: deductible 800.00, one band at 80 %; [filing] resident 0,
# referral 0, temporary 1000, unfiled 2000 (bp). The stay: one grade-A line of 3,000.00 at
# 广州 (level 3, treating rule) → eligible 2,200.00; hifp = 2,200.00 × (80 % − cut).
@pytest.mark.parametrize(("filing", "filing_region", "emergency", "cut_bp", "hifp_fen"), [
    (None, "", False, 2000, 132000),  # unfiled: the unfiled cut, 60 %
    (None, "", True, 1000, 154000),  # unfiled emergency: the temporary cut, 70 %
    ("temporary", "", False, 1000, 154000),
    ("referral", "", False, 0, 176000),
    ("resident", "440100", False, 0, 176000),  # a filing for this very region
    ("resident", "530100", False, 2000, 132000),  # a filing for another region does not count here
], ids=["unfiled", "unfiled-emergency", "temporary", "referral", "resident-here", "resident-elsewhere"])
async def test_filing_status_decides_the_ratio_cut(kit, filing, filing_region, emergency, cut_bp, hifp_fen):
    member = await kit.new_member("610924", scheme="employee", filing=filing, filing_region=filing_region)
    code = kit.plain_codes("440100")[3]
    settlement = await kit.discharge(H_GUANGZHOU, member, [kit.bill_line("1", code, "1", 300000, ADMITTED_ON)],
                                     ADMITTED_ON, DISCHARGED_ON, emergency=emergency)
    bands = steps(settlement, "basic_band")
    assert len(bands) == 1
    facts = bands[0].facts
    assert (facts["cut_bp"], facts["base_bp"], facts["ratio_bp"]) == (str(cut_bp), "8000", str(8000 - cut_bp))
    split = settlement.adjudication.split
    assert (split.deductible_fen, split.eligible_fen, split.hifp_fen) == (80000, 220000, hifp_fen)
    assert hifp_fen == bp_of(220000, 8000 - cut_bp)
