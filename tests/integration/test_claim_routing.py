"""A claim is routed once, with the catalogue versions it names (issue 9, items 1, 14 and 16).

* A retry of a pending claim re-drives exactly the claim first sent to the insured agency, even when the
  insured region has published a new catalogue since, or the clearing house now runs another agreement.
* A downstream ALREADY_EXISTS is not "nothing recorded there": the claim stays pending (ABORTED) and a
  reversal undoes what the insured agency holds.
* The clearing house re-classifies a claim with the treating catalogue version it names and refuses a split
  it cannot reproduce.
* Every process of a party classifies with the version the last import made current.

These tests publish catalogue versions, which are global to a region, so they run on a stack of their own
(`own_kit`). Each test changes one catalogue row to a value no other test uses and reads the version it made.
"""

from __future__ import annotations

import csv
import io
import uuid

import grpc
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

from clearing.catalogue import COLUMNS
from clearing.translate import Agreements, CatalogueRule, UnmappedAction
from services.stack.processes import free_port
from services.stack.wiring import start_clearing_house, start_region

GUANGZHOU, CHANGSHA = "440100", "430100"  # an `insured` catalogue-rule pair (services/regions/agreements.toml)
H_GUANGZHOU = "H44010000001"
ADMITTED_ON, DISCHARGED_ON = "2026-03-02", "2026-03-06"


def rows_valid_on(kit, region: str, national_code: str) -> list[dict[str, str]]:  # noqa: ANN001
    return [row for row in kit.catalogue_rows(region) if row["national_code"] == national_code
            and row["valid_from"] <= ADMITTED_ON and (not row["valid_to"] or ADMITTED_ON <= row["valid_to"])]


def codes_with_one_grade_b_target(kit) -> list[tuple[str, dict[str, str]]]:  # noqa: ANN001
    """Plain 440100 codes whose national code is exactly one plain grade-B row in 430100, with that row."""
    found = []
    for code in kit.plain_codes(GUANGZHOU):
        row = kit.versions_by_code(GUANGZHOU)[code][0]
        targets = rows_valid_on(kit, CHANGSHA, row["national_code"])
        if len(targets) == 1 and targets[0]["local_code"] in kit.plain_codes(CHANGSHA, "B") \
                and 0 < int(targets[0]["selfpay_bp"]) <= 5000:
            found.append((code, targets[0]))
    assert len(found) >= 4, "the generated catalogues have too few such pairs"
    return found


async def import_with(kit, region: str, local_code: str, **changes: str) -> int:  # noqa: ANN001
    """Import the generated catalogue of `region` with one code's row changed; returns the version made current."""
    rows = [dict(row, **changes) if row["local_code"] == local_code else dict(row) for row in kit.catalogue_rows(region)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    answer = await kit.treating(region).ImportCatalogue(ta.ImportCatalogueRequest(request_id=kit.rid(),
                                                                                  csv_text=buffer.getvalue()))
    return answer.version


async def states(kit, settlement_id: str, insured: str = CHANGSHA) -> tuple:  # noqa: ANN001
    sid = uuid.UUID(settlement_id)
    return (await (await kit.db(f"treating_{GUANGZHOU}")).fetchval(
                "SELECT status FROM settlements WHERE settlement_id = $1", sid),
            await (await kit.db("clearinghouse")).fetchval("SELECT status FROM claims WHERE settlement_id = $1", sid),
            await (await kit.db(f"insured_{insured}")).fetchval(
                "SELECT status FROM settlements WHERE settlement_id = $1", sid))


async def pending_at_every_party_but_the_insured_agency(kit, request: ta.SettleRequest) -> str:  # noqa: ANN001
    """Settle through a second clearing-house process whose insured agency cannot be reached: the treating
    agency and the clearing house record the claim as pending, as after a cut connection. Returns its id."""
    cut_off = await start_clearing_house(kit.stack.config.dsn("clearinghouse"), {CHANGSHA: f"127.0.0.1:{free_port()}"},
                                         transport=kit.stack.transport)
    region = await start_region(GUANGZHOU, kit.stack.config.dsn(f"treating_{GUANGZHOU}"),
                                kit.stack.config.dsn(f"insured_{GUANGZHOU}"), f"127.0.0.1:{cut_off.port}",
                                transport=kit.stack.transport)
    address = f"127.0.0.1:{region.port}"
    try:
        error = await kit.refusal(kit.stack.treating(GUANGZHOU, address).Settle(request, timeout=5))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await region.stop()
        await cut_off.stop()
    settlement_id = str(await (await kit.db(f"treating_{GUANGZHOU}")).fetchval(
        "SELECT settlement_id FROM settlements WHERE request_id = $1", uuid.UUID(request.request_id)))
    assert await states(kit, settlement_id) == ("pending", "pending", None)
    return settlement_id


async def treating_claim(kit, settlement_id: str) -> types_pb2.Claim:  # noqa: ANN001
    raw = await (await kit.db(f"treating_{GUANGZHOU}")).fetchval(
        "SELECT claim FROM settlements WHERE settlement_id = $1", uuid.UUID(settlement_id))
    return types_pb2.Claim.FromString(bytes(raw))


async def stay_with(kit, code: str) -> tuple[object, ta.SettleRequest]:  # noqa: ANN001
    member = await kit.new_member(CHANGSHA, filing="resident")
    line = kit.bill_line("1", code, "3", 200000, ADMITTED_ON)
    encounter_id = await kit.open_encounter(H_GUANGZHOU, member, [line], ADMITTED_ON)
    return member, ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on=DISCHARGED_ON)


async def test_a_retry_re_drives_the_routed_claim_after_the_insured_region_publishes_a_new_catalogue(own_kit):
    kit = own_kit
    code, target = codes_with_one_grade_b_target(kit)[0]
    member, request = await stay_with(kit, code)
    settlement_id = await pending_at_every_party_but_the_insured_agency(kit, request)
    # The insured agency adjudicated the claim as the clearing house routed it, but the answer was lost.
    routed = (await kit.clearing().QuoteClaim(ch.QuoteClaimRequest(
        claim=await treating_claim(kit, settlement_id)))).settlement.claim
    first = await kit.insured(CHANGSHA).Adjudicate(ia.AdjudicateRequest(request_id=settlement_id, claim=routed))
    assert routed.lines[0].selfpay_bp == int(target["selfpay_bp"])

    new_version = await import_with(kit, CHANGSHA, target["local_code"], selfpay_bp=str(int(target["selfpay_bp"]) + 100))

    settled = (await kit.treating(GUANGZHOU).Settle(request)).settlement  # the HIS retries
    assert await states(kit, settlement_id) == ("settled", "settled", "settled")
    assert settled.adjudication == first.adjudication, "the insured agency replayed what it had recorded"
    assert list(settled.claim.lines) == list(routed.lines), "the claim as first routed, not re-routed"
    assert new_version > settled.claim.insured_catalogue_version == routed.insured_catalogue_version > 0
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(first.adjudication.ytd_after)
    ledger = await kit.ledger(settlement_id)
    assert ledger["settlement"][f"treating/{GUANGZHOU}/receivable/{CHANGSHA}"] == first.adjudication.split.fund_pay_fen


async def test_a_downstream_conflict_leaves_the_claim_pending_and_a_reversal_undoes_it(own_kit):
    kit = own_kit
    code, _ = codes_with_one_grade_b_target(kit)[1]
    member, request = await stay_with(kit, code)
    before = await kit.accumulators(member)
    settlement_id = await pending_at_every_party_but_the_insured_agency(kit, request)
    # The insured agency holds other content under this settlement id than the clearing house will send.
    other = (await kit.clearing().QuoteClaim(ch.QuoteClaimRequest(
        claim=await treating_claim(kit, settlement_id)))).settlement.claim
    other.lines[0].note = "a claim nobody at the clearing house recorded"
    await kit.insured(CHANGSHA).Adjudicate(ia.AdjudicateRequest(request_id=settlement_id, claim=other))

    error = await kit.refusal(kit.treating(GUANGZHOU).Settle(request))
    assert error.code() is grpc.StatusCode.ABORTED, error.details()
    assert "reverse" in error.details()
    assert await states(kit, settlement_id) == ("pending", "pending", "settled"), "nothing is marked failed"
    assert await kit.ledger(settlement_id) == {}

    reversed_ = await kit.treating(GUANGZHOU).Reverse(ta.ReverseRequest(request_id=kit.rid(),
                                                                         original_request_id=request.request_id))
    assert reversed_.outcome == types_pb2.REVERSAL_OUTCOME_REVERSED
    assert await states(kit, settlement_id) == ("reversed", "reversed", "reversed")
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(before), "the orphan's accumulators undone"


async def test_a_retry_of_a_settled_claim_is_replayed_even_if_the_agreement_now_rejects_its_lines(own_kit):
    """Settled at the clearing house and the insured agency, the answer lost before the treating agency: the
    clearing house restarts with a `reject` agreement for the pair, under which this claim's unmapped line
    would be refused. The retry must get the settlement, not a refusal the treating agency records as failed."""
    kit = own_kit
    member = await kit.new_member("610924", filing="resident")  # 440100–610924: the default agreement (self-pay)
    lines = [kit.bill_line("1", kit.plain_codes(GUANGZHOU)[0], "1", 8000, ADMITTED_ON),
             kit.bill_line("2", kit.local_only_code(GUANGZHOU), "2", 3000, ADMITTED_ON)]
    encounter_id = await kit.open_encounter(H_GUANGZHOU, member, lines, ADMITTED_ON)
    request = ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on=DISCHARGED_ON)
    claim = await pending_claim_for(kit, request)
    settlement_id = claim.settlement_id
    settled = await kit.clearing().SettleClaim(ch.SettleClaimRequest(request_id=settlement_id, claim=claim))
    assert "UNMAPPED_LINE" in settled.settlement.flags

    rejecting = Agreements((CatalogueRule.TREATING, UnmappedAction.REJECT), {})
    strict = await start_clearing_house(kit.stack.config.dsn("clearinghouse"),
                                        {"610924": kit.stack.address("610924")}, agreements=rejecting,
                                        transport=kit.stack.transport)
    region = await start_region(GUANGZHOU, kit.stack.config.dsn(f"treating_{GUANGZHOU}"),
                                kit.stack.config.dsn(f"insured_{GUANGZHOU}"), f"127.0.0.1:{strict.port}",
                                transport=kit.stack.transport)
    address = f"127.0.0.1:{region.port}"
    try:
        answer = await kit.stack.treating(GUANGZHOU, address).Settle(request, timeout=10)
    finally:
        await region.stop()
        await strict.stop()
    assert answer.settlement.adjudication == settled.settlement.adjudication
    assert await states(kit, settlement_id, insured="610924") == ("settled", "settled", "settled")


async def test_the_clearing_house_refuses_a_split_it_cannot_reproduce_and_records_nothing(own_kit):
    kit = own_kit
    member = await kit.new_member("610924", filing="resident")
    line = kit.bill_line("1", kit.plain_codes(GUANGZHOU)[0], "2", 15000, ADMITTED_ON)
    encounter_id = await kit.open_encounter(H_GUANGZHOU, member, [line], ADMITTED_ON)
    quoted = await kit.treating(GUANGZHOU).PreSettle(ta.PreSettleRequest(encounter_id=encounter_id,
                                                                          discharged_on=DISCHARGED_ON))
    honest = quoted.settlement.claim
    assert (honest.lines[0].preselfpay_fen, honest.lines[0].inscp_fen) == (0, 30000)

    def tampered(**changes: int) -> types_pb2.Claim:
        claim = types_pb2.Claim()
        claim.CopyFrom(honest)
        claim.settlement_id = kit.rid()
        for name, value in changes.items():
            if name in ("treating_catalogue_version",):
                setattr(claim, name, value)
            else:
                setattr(claim.lines[0], name, value)
        return claim

    before = await kit.counts("clearinghouse", "insured_610924")
    shifted = tampered(preselfpay_fen=1000, inscp_fen=29000)  # still adds up to the line's amount
    error = await kit.refusal(kit.clearing().SettleClaim(ch.SettleClaimRequest(request_id=shifted.settlement_id,
                                                                               claim=shifted)))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="claim.lines[0].preselfpay_fen")
    error = await kit.refusal(kit.clearing().QuoteClaim(ch.QuoteClaimRequest(claim=shifted)))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="claim.lines[0].preselfpay_fen")
    regraded = tampered(grade=types_pb2.GRADE_B)
    error = await kit.refusal(kit.clearing().SettleClaim(ch.SettleClaimRequest(request_id=regraded.settlement_id,
                                                                               claim=regraded)))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="claim.lines[0].grade")
    unnamed = tampered(treating_catalogue_version=0)
    error = await kit.refusal(kit.clearing().SettleClaim(ch.SettleClaimRequest(request_id=unnamed.settlement_id,
                                                                               claim=unnamed)))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="claim.treating_catalogue_version")
    unpublished = tampered(treating_catalogue_version=honest.treating_catalogue_version + 1000)
    error = await kit.refusal(kit.clearing().SettleClaim(ch.SettleClaimRequest(request_id=unpublished.settlement_id,
                                                                               claim=unpublished)))
    kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="claim.treating_catalogue_version")
    assert await kit.counts("clearinghouse", "insured_610924") == before


async def test_a_second_clearing_house_process_routes_with_the_version_just_published(own_kit):
    """A clearing-house process started before an import routes with the new version at once."""
    kit = own_kit
    code, target = codes_with_one_grade_b_target(kit)[2]
    _, request = await stay_with(kit, code)
    claim = await pending_claim_for(kit, request)
    second = await start_clearing_house(kit.stack.config.dsn("clearinghouse"), {CHANGSHA: kit.stack.address(CHANGSHA)},
                                        transport=kit.stack.transport)
    address = f"127.0.0.1:{second.port}"
    try:
        selfpay_bp = int(target["selfpay_bp"]) + 300
        version = await import_with(kit, CHANGSHA, target["local_code"], selfpay_bp=str(selfpay_bp))
        quoted = await kit.stack.clearing(address).QuoteClaim(
            ch.QuoteClaimRequest(claim=claim))
    finally:
        await second.stop()
    assert quoted.settlement.claim.lines[0].selfpay_bp == selfpay_bp
    assert quoted.settlement.claim.insured_catalogue_version == version


async def test_a_second_treating_agency_process_classifies_with_the_version_just_imported(own_kit):
    """A treating-agency process started before an import classifies with the new version at once. (It changes
    a 440100 row, so it runs last in this module.)"""
    kit = own_kit
    code = kit.plain_codes(GUANGZHOU)[-1]
    member = await kit.new_member("610924", filing="resident")  # the treating rule: the 440100 catalogue decides
    encounter_id = await kit.open_encounter(H_GUANGZHOU, member, [kit.bill_line("1", code, "2", 15000, ADMITTED_ON)],
                                            ADMITTED_ON)
    second = await start_region(GUANGZHOU, kit.stack.config.dsn(f"treating_{GUANGZHOU}"),
                                kit.stack.config.dsn(f"insured_{GUANGZHOU}"), f"127.0.0.1:{kit.stack.clearing_house.port}",
                                transport=kit.stack.transport)
    address = f"127.0.0.1:{second.port}"
    try:
        version = await import_with(kit, GUANGZHOU, code, grade="B", selfpay_bp="1500")
        quoted = await kit.stack.treating(GUANGZHOU, address).PreSettle(
            ta.PreSettleRequest(encounter_id=encounter_id, discharged_on=DISCHARGED_ON))
    finally:
        await second.stop()
    line = quoted.settlement.claim.lines[0]
    assert (line.grade, line.selfpay_bp, line.preselfpay_fen) == (types_pb2.GRADE_B, 1500, 4500)  # 15 % of 300.00
    assert quoted.settlement.claim.treating_catalogue_version == version


async def pending_claim_for(kit, request: ta.SettleRequest) -> types_pb2.Claim:  # noqa: ANN001
    """Record the claim as pending at the treating agency only (its clearing house cannot be reached) and
    return it: exactly what the treating agency sends."""
    unreachable = await start_region(GUANGZHOU, kit.stack.config.dsn(f"treating_{GUANGZHOU}"),
                                     kit.stack.config.dsn(f"insured_{GUANGZHOU}"), f"127.0.0.1:{free_port()}",
                                     transport=kit.stack.transport)
    address = f"127.0.0.1:{unreachable.port}"
    try:
        error = await kit.refusal(kit.stack.treating(GUANGZHOU, address).Settle(request, timeout=5))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await unreachable.stop()
    settlement_id = str(await (await kit.db(f"treating_{GUANGZHOU}")).fetchval(
        "SELECT settlement_id FROM settlements WHERE request_id = $1", uuid.UUID(request.request_id)))
    return await treating_claim(kit, settlement_id)
