"""Idempotency of every mutating call (SPEC §8): the same request_id with the same content replays
the first answer byte for byte and changes nothing; the same request_id with different content is
ALREADY_EXISTS with a BadRequest naming the first field that differs.
"""

from __future__ import annotations

import asyncio
import uuid

import grpc
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

from services.stack.enrol import enrol_request_id

H_GUANGZHOU = "H44010000001"
H_GUANGZHOU_2 = "H44010000002"
ADMITTED_ON = "2026-03-02"
DISCHARGED_ON = "2026-03-06"


def changed(message, **fields):  # noqa: ANN001, ANN201 - a copy of a request with some fields replaced
    copy = type(message)()
    copy.CopyFrom(message)
    for name, value in fields.items():
        target = copy
        *path, last = name.split("__")
        for part in path:
            target = getattr(target, part)
        setattr(target, last, value)
    return copy


# ---------------------------------------------------------------------------------------------
# Admit (2201)
# ---------------------------------------------------------------------------------------------

async def test_admit_replays_and_names_the_differing_field(kit):
    member = await kit.new_member("610924", filing="resident")
    request = kit.admit_request(H_GUANGZHOU, member, ADMITTED_ON, diagnoses=("I63.9",))
    stub = kit.treating("440100")
    first = await stub.Admit(request)
    before = await kit.counts("treating_440100")
    again = await stub.Admit(request)
    assert kit.same_bytes(first, again)
    assert await kit.counts("treating_440100") == before, "a replay records nothing"

    for conflicting, field in [
        (changed(request, admitted_on="2026-03-03"), "admitted_on"),
        (changed(request, hospital_code=H_GUANGZHOU_2), "hospital_code"),
        (changed(request, patient__member_id=member.member_id + "X"), "patient.member_id"),
        (changed(request, emergency=True), "emergency"),
    ]:
        error = await kit.refusal(stub.Admit(conflicting))
        kit.assert_refused(error, grpc.StatusCode.ALREADY_EXISTS, field=field)
    conflicting = kit.admit_request(H_GUANGZHOU, member, ADMITTED_ON, diagnoses=("I63.9", "I10"),
                                    request_id=request.request_id)
    kit.assert_refused(await kit.refusal(stub.Admit(conflicting)), grpc.StatusCode.ALREADY_EXISTS, field="diagnoses")
    assert await kit.counts("treating_440100") == before


# ---------------------------------------------------------------------------------------------
# UploadCharges (2301)
# ---------------------------------------------------------------------------------------------

async def test_upload_replays_and_names_the_differing_line_field(kit):
    member = await kit.new_member("610924", filing="resident")
    stub = kit.treating("440100")
    encounter = await kit.admit(H_GUANGZHOU, member, ADMITTED_ON)
    other = await kit.admit(H_GUANGZHOU, member, ADMITTED_ON)
    codes = kit.plain_codes("440100")
    request = ta.UploadChargesRequest(request_id=kit.rid(), encounter_id=encounter.encounter_id, lines=[
        kit.bill_line("1", codes[0], "2", 1500, ADMITTED_ON), kit.bill_line("2", codes[1], "0.5", 999, ADMITTED_ON)])
    first = await stub.UploadCharges(request)
    assert (first.line_count, first.total_fen) == (2, 3000 + 500)  # 0.5 × 9.99 = 4.995 → 5.00
    before = await kit.counts("treating_440100")
    again = await stub.UploadCharges(request)
    assert kit.same_bytes(first, again)
    assert await kit.counts("treating_440100") == before, "the lines are not added twice"

    new_qty = ta.UploadChargesRequest()
    new_qty.CopyFrom(request)
    new_qty.lines[0].qty = "3"
    new_qty.lines[0].amount_fen = 4500
    kit.assert_refused(await kit.refusal(stub.UploadCharges(new_qty)), grpc.StatusCode.ALREADY_EXISTS,
                       field="lines[0].qty")
    fewer = ta.UploadChargesRequest(request_id=request.request_id, encounter_id=encounter.encounter_id,
                                    lines=request.lines[:1])
    kit.assert_refused(await kit.refusal(stub.UploadCharges(fewer)), grpc.StatusCode.ALREADY_EXISTS, field="lines")
    elsewhere = changed(request, encounter_id=other.encounter_id)
    kit.assert_refused(await kit.refusal(stub.UploadCharges(elsewhere)), grpc.StatusCode.ALREADY_EXISTS,
                       field="encounter_id")
    assert await kit.counts("treating_440100") == before


# ---------------------------------------------------------------------------------------------
# Settle (2304) and Cancel (2305)
# ---------------------------------------------------------------------------------------------

async def open_stay(kit, member, hospital_code: str = H_GUANGZHOU, price_fen: int = 600000) -> str:  # noqa: ANN001
    region = hospital_code[1:7]
    return await kit.open_encounter(hospital_code, member, [
        kit.bill_line("1", kit.plain_codes(region)[4], "1", price_fen, ADMITTED_ON),
        kit.bill_line("2", kit.plain_codes(region)[5], "2", 12345, "2026-03-03")], ADMITTED_ON)


async def test_settle_replays_the_first_answer_and_moves_accumulators_once(kit):
    member = await kit.new_member("610924", filing="resident")
    encounter_id = await open_stay(kit, member)
    stub = kit.treating("440100")
    ytd_before = await kit.accumulators(member)
    request = ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on=DISCHARGED_ON)

    first = await stub.Settle(request)
    ytd_after = await kit.accumulators(member)
    delta = kit.ytd_delta(ytd_before, ytd_after)
    assert delta["admissions"] == 1 and delta["hifp_fen"] == first.settlement.adjudication.split.hifp_fen > 0
    parties = ("treating_440100", "clearinghouse", "insured_610924")
    counts = await kit.counts(*parties)

    for _ in range(2):
        again = await stub.Settle(request)
        assert kit.same_bytes(first, again)
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(ytd_after), "a replay moves nothing"
    assert await kit.counts(*parties) == counts, "a replay records nothing anywhere"
    insured = await kit.db("insured_610924")
    assert await insured.fetchval("SELECT count(*) FROM settlements WHERE member_id = $1", member.member_id) == 1

    for conflicting, field in [
        (changed(request, discharged_on="2026-03-07"), "discharged_on"),
        (ta.SettleRequest(request_id=request.request_id, encounter_id=encounter_id, discharged_on=DISCHARGED_ON,
                          diagnoses=["K35.8"]), "diagnoses"),
    ]:
        kit.assert_refused(await kit.refusal(stub.Settle(conflicting)), grpc.StatusCode.ALREADY_EXISTS, field=field)
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(ytd_after)
    assert await kit.counts(*parties) == counts


async def test_cancel_replays_restores_once_and_settle_replays_after_it(kit):
    member = await kit.new_member("610924", filing="resident")
    stub = kit.treating("440100")
    # A first stay, so the restored accumulators are not simply zero.
    await kit.discharge(H_GUANGZHOU, member, [kit.bill_line("1", kit.plain_codes("440100")[6], "1", 250000,
                                                            "2026-02-02")], "2026-02-02", "2026-02-05")
    ytd_before = await kit.accumulators(member)
    encounter_id = await open_stay(kit, member)
    settle = ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id, discharged_on=DISCHARGED_ON)
    settled = await stub.Settle(settle)
    settlement_id = settled.settlement.settlement_id

    cancel = ta.CancelRequest(request_id=kit.rid(), settlement_id=settlement_id, reason="billing error")
    first = await stub.Cancel(cancel)
    assert first.settlement.status == types_pb2.SETTLEMENT_STATUS_CANCELLED
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(ytd_before)
    parties = ("treating_440100", "clearinghouse", "insured_610924")
    counts = await kit.counts(*parties)

    again = await stub.Cancel(cancel)
    assert kit.same_bytes(first, again)
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(ytd_before), "restored once, not twice"
    assert await kit.counts(*parties) == counts, "no second mirror transaction"
    assert set(await kit.ledger(settlement_id)) == {"settlement", "cancel"}

    # The settlement's own request id, replayed after the cancel, gets the stored (first) answer.
    replayed = await stub.Settle(settle)
    assert kit.same_bytes(settled, replayed)
    assert replayed.settlement.status == types_pb2.SETTLEMENT_STATUS_SETTLED
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(ytd_before), "nothing is settled again"
    assert await kit.counts(*parties) == counts


# Regression: Cancel used to compare only the request id of an already-cancelled settlement, so
# another `reason` under the same id replayed instead of ALREADY_EXISTS.
async def test_cancel_with_the_same_request_id_and_another_reason_is_already_exists(kit):
    member = await kit.new_member("610924", filing="resident")
    settled = await kit.treating("440100").Settle(ta.SettleRequest(
        request_id=kit.rid(), encounter_id=await open_stay(kit, member), discharged_on=DISCHARGED_ON))
    cancel = ta.CancelRequest(request_id=kit.rid(), settlement_id=settled.settlement.settlement_id, reason="first")
    await kit.treating("440100").Cancel(cancel)
    error = await kit.refusal(kit.treating("440100").Cancel(changed(cancel, reason="second")))
    kit.assert_refused(error, grpc.StatusCode.ALREADY_EXISTS, field="reason")


# Regression: a cancel request id reused for another settlement was not recognised; the insured
# agency's UPDATE violated `settlements.cancel_request_id UNIQUE` and the caller got INTERNAL.
async def test_cancel_request_id_reused_for_another_settlement_is_already_exists(kit):
    member = await kit.new_member("610924", filing="resident")
    stub = kit.treating("440100")
    first = await stub.Settle(ta.SettleRequest(request_id=kit.rid(), encounter_id=await open_stay(kit, member),
                                               discharged_on=DISCHARGED_ON))
    second = await stub.Settle(ta.SettleRequest(request_id=kit.rid(), encounter_id=await open_stay(kit, member),
                                                discharged_on=DISCHARGED_ON))
    cancel = ta.CancelRequest(request_id=kit.rid(), settlement_id=first.settlement.settlement_id, reason="x")
    await stub.Cancel(cancel)
    ytd = await kit.accumulators(member)
    error = await kit.refusal(stub.Cancel(changed(cancel, settlement_id=second.settlement.settlement_id)))
    try:
        kit.assert_refused(error, grpc.StatusCode.ALREADY_EXISTS, field="settlement_id")
    finally:
        assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(ytd)
        looked_up = await stub.GetSettlement(ta.GetSettlementRequest(settlement_id=second.settlement.settlement_id))
        assert looked_up.settlement.status == types_pb2.SETTLEMENT_STATUS_SETTLED


# Two copies of one Settle request in flight at once (an HIS retry after a client timeout) both
# get the one answer. Regression: the second copy used to look the request id up before waiting
# on the encounter lock, then saw the first's live settlement and answered FAILED_PRECONDITION.
# Both copies then reach the clearing house with one settlement id; it inserts-or-keeps the claim
# row before locking it, so the copies meet on one row (a regression test of a unique-violation race).
async def test_two_copies_of_one_settle_in_flight_get_the_same_answer(kit):
    member = await kit.new_member("610924", filing="resident")
    request = ta.SettleRequest(request_id=kit.rid(), encounter_id=await open_stay(kit, member),
                               discharged_on=DISCHARGED_ON)
    answers = await asyncio.gather(kit.treating("440100").Settle(request), kit.treating("440100").Settle(request),
                                   return_exceptions=True)
    try:
        assert not [a for a in answers if isinstance(a, BaseException)], answers
        assert kit.same_bytes(answers[0], answers[1])
    finally:
        insured = await kit.db("insured_610924")
        assert await insured.fetchval("SELECT count(*) FROM settlements WHERE member_id = $1",
                                      member.member_id) == 1, "paid once whatever the answers"
        assert (await kit.accumulators(member)).admissions == 1


# ---------------------------------------------------------------------------------------------
# RegisterMember and RecordFiling (insured agency)
# ---------------------------------------------------------------------------------------------

async def test_register_member_replays_and_names_the_differing_field(kit):
    stub = kit.insured("430100")
    member_id = f"T430100{uuid.uuid4().hex[:12].upper()}"
    request = ia.RegisterMemberRequest(request_id=kit.rid(), member=ia.Member(
        member_id=member_id, id_number="430100198001011234", name="王小明", scheme=types_pb2.SCHEME_EMPLOYEE,
        retired=False, poverty=False, assistance=types_pb2.ASSISTANCE_TIER_NONE))
    first = await stub.RegisterMember(request)
    assert first.member.id_number == "4301**********1234" and first.member.name != "王小明"
    before = await kit.counts("insured_430100")
    again = await stub.RegisterMember(request)
    assert kit.same_bytes(first, again)
    assert await kit.counts("insured_430100") == before

    for conflicting, field in [
        (changed(request, member__scheme=types_pb2.SCHEME_RESIDENT), "member.scheme"),
        (changed(request, member__retired=True), "member.retired"),
        (changed(request, member__assistance=types_pb2.ASSISTANCE_TIER_DIBAO), "member.assistance"),
        (changed(request, member__member_id=member_id + "Z"), "member.member_id"),
    ]:
        kit.assert_refused(await kit.refusal(stub.RegisterMember(conflicting)), grpc.StatusCode.ALREADY_EXISTS,
                           field=field)
    assert await kit.counts("insured_430100") == before
    looked_up = await stub.GetMember(ia.GetMemberRequest(member_id=member_id, year=2026))
    assert looked_up.member.scheme == types_pb2.SCHEME_EMPLOYEE


async def test_record_filing_replays_and_names_the_differing_field(kit):
    member = await kit.new_member("430100")
    stub = kit.insured("430100")
    request = ia.RecordFilingRequest(request_id=kit.rid(), member_id=member.member_id, filing=ia.Filing(
        category=types_pb2.FILING_STATUS_REFERRAL, treating_region="440100", valid_from="2026-03-01"))
    first = await stub.RecordFiling(request)
    before = await kit.counts("insured_430100")
    again = await stub.RecordFiling(request)
    assert kit.same_bytes(first, again)
    assert await kit.counts("insured_430100") == before

    for conflicting, field in [
        (changed(request, filing__valid_from="2026-03-02"), "filing.valid_from"),
        (changed(request, filing__category=types_pb2.FILING_STATUS_RESIDENT), "filing.category"),
        (changed(request, filing__treating_region="530100"), "filing.treating_region"),
    ]:
        kit.assert_refused(await kit.refusal(stub.RecordFiling(conflicting)), grpc.StatusCode.ALREADY_EXISTS,
                           field=field)
    assert await kit.counts("insured_430100") == before
    filings = (await stub.GetMember(ia.GetMemberRequest(member_id=member.member_id))).filings
    assert [(f.category, f.treating_region, f.valid_from) for f in filings] == \
        [(types_pb2.FILING_STATUS_REFERRAL, "440100", "2026-03-01")]


# ---------------------------------------------------------------------------------------------
# ImportCatalogue
# ---------------------------------------------------------------------------------------------

async def test_import_catalogue_replays_and_keeps_the_version(kit):
    region = "530100"
    stub = kit.treating(region)
    # The request the stack's enrolment sent, sent again, twice.
    request = ta.ImportCatalogueRequest(request_id=enrol_request_id(kit.seed, f"{region}:catalogue"),
                                        csv_text=kit.catalogue_csv(region))
    parties = (f"treating_{region}", "clearinghouse")
    before = await kit.counts(*parties)
    first = await stub.ImportCatalogue(request, timeout=120)
    again = await stub.ImportCatalogue(request, timeout=120)
    assert kit.same_bytes(first, again)
    assert await kit.counts(*parties) == before, "no new version anywhere"
    stored = await (await kit.db(f"treating_{region}")).fetchrow(
        "SELECT version, row_count FROM catalogue_versions WHERE sha256 = $1", first.sha256)
    assert (first.version, first.row_count) == (stored["version"], stored["row_count"])
    assert first.row_count == len(kit.catalogue_rows(region))
    published = await (await kit.db("clearinghouse")).fetchval(
        "SELECT sha256 FROM catalogue_versions WHERE region = $1 AND version = $2", region, first.version)
    assert published == first.sha256


# Regression: ImportCatalogue did not keep request ids, so other CSV text under the same id
# imported a new version. The "other" text is the same file with a byte-order mark: it parses to
# the same rows, so a regression cannot disturb the other tests' catalogue.
async def test_import_catalogue_with_the_same_request_id_and_other_content_is_already_exists(kit):
    region = "610924"
    request = ta.ImportCatalogueRequest(request_id=enrol_request_id(kit.seed, f"{region}:catalogue"),
                                        csv_text="\ufeff" + kit.catalogue_csv(region))
    parties = (f"treating_{region}", "clearinghouse")
    before = await kit.counts(*parties)
    error = await kit.refusal(kit.treating(region).ImportCatalogue(request, timeout=120))
    try:
        kit.assert_refused(error, grpc.StatusCode.ALREADY_EXISTS, field="csv_text")
    finally:
        assert await kit.counts(*parties) == before
