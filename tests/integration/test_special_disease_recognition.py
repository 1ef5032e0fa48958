"""Recognitions of outpatient special diseases at the insured agency (SPEC §13, issue 14 item 1): record (2503),
cancel (2504) and query (5301) over the real stack, idempotent, one standing recognition of a disease per day,
bad input refused naming the field with nothing written, and the operator CLI."""

from __future__ import annotations

import json

import grpc
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import types_pb2

from conftest import clearing_admin

REGION = "430100"
DIALYSIS = types_pb2.SPECIAL_DISEASE_DIALYSIS


def recognition(**fields) -> types_pb2.SpecialDiseaseRecognition:  # noqa: ANN003
    values = {"disease": DIALYSIS, "valid_from": "2026-01-01", "valid_to": "2026-12-31", "diagnosis": "N18.500"}
    values.update(fields)
    return types_pb2.SpecialDiseaseRecognition(**values)


async def test_record_replay_overlap_cancel_and_query(kit):
    member = await kit.new_member(REGION)
    stub = kit.insured(REGION)
    request = ia.RecordSpecialDiseaseRequest(request_id=kit.rid(), member_id=member.member_id,
                                             recognition=recognition(certified_by=kit.hospital(REGION)))
    first = await stub.RecordSpecialDisease(request)
    assert first.recognition.recognition_id and first.recognition.recorded_at.endswith("Z")
    assert (first.recognition.diagnosis, first.recognition.cancelled_at) == ("N18.500", "")
    before = await kit.counts("insured_430100")
    assert kit.same_bytes(first, await stub.RecordSpecialDisease(request))  # a retry replays, writes nothing
    assert await kit.counts("insured_430100") == before

    # A second dialysis recognition sharing a day with the standing one is refused; another disease is not.
    overlapping = ia.RecordSpecialDiseaseRequest(request_id=kit.rid(), member_id=member.member_id,
                                                 recognition=recognition(valid_from="2026-12-31", valid_to=""))
    kit.assert_refused(await kit.refusal(stub.RecordSpecialDisease(overlapping)), grpc.StatusCode.FAILED_PRECONDITION)
    assert await kit.counts("insured_430100") == before
    diabetes = await stub.RecordSpecialDisease(ia.RecordSpecialDiseaseRequest(
        request_id=kit.rid(), member_id=member.member_id,
        recognition=recognition(disease=types_pb2.SPECIAL_DISEASE_DIABETES, diagnosis="E11.900", valid_to="")))

    on_day = await stub.ListSpecialDiseases(ia.ListSpecialDiseasesRequest(member_id=member.member_id,
                                                                          valid_on="2027-03-01"))
    assert [item.recognition_id for item in on_day.recognitions] == [diabetes.recognition.recognition_id]

    cancel = ia.CancelSpecialDiseaseRequest(request_id=kit.rid(), member_id=member.member_id,
                                            recognition_id=first.recognition.recognition_id, reason="transplanted")
    cancelled = await stub.CancelSpecialDisease(cancel)
    assert cancelled.recognition.cancelled_at and cancelled.recognition.cancel_reason == "transplanted"
    assert kit.same_bytes(cancelled, await stub.CancelSpecialDisease(cancel))
    again = await stub.CancelSpecialDisease(ia.CancelSpecialDiseaseRequest(  # a new request: answered as it is
        request_id=kit.rid(), member_id=member.member_id, recognition_id=first.recognition.recognition_id,
        reason="again"))
    assert again.recognition.cancel_reason == "transplanted"
    # Once cancelled, the overlapping one may be recorded; the cancelled one is still listed, never deleted.
    await stub.RecordSpecialDisease(overlapping)
    everything = await stub.ListSpecialDiseases(ia.ListSpecialDiseasesRequest(member_id=member.member_id))
    assert [(item.disease, bool(item.cancelled_at)) for item in everything.recognitions] == [
        (DIALYSIS, True), (types_pb2.SPECIAL_DISEASE_DIABETES, False), (DIALYSIS, False)]
    on_day = await stub.ListSpecialDiseases(ia.ListSpecialDiseasesRequest(member_id=member.member_id,
                                                                          valid_on="2026-06-01"))
    assert [item.disease for item in on_day.recognitions] == [types_pb2.SPECIAL_DISEASE_DIABETES]


async def test_bad_requests_name_the_field_and_write_nothing(kit):
    member = await kit.new_member(REGION)
    stub = kit.insured(REGION)
    before = await kit.counts("insured_430100")
    for given, field in [
        (recognition(disease=types_pb2.SPECIAL_DISEASE_UNSPECIFIED), "recognition.disease"),
        (recognition(valid_from=""), "recognition.valid_from"),
        (recognition(valid_to="2025-12-31"), "recognition.valid_to"),
        (recognition(diagnosis="dialysis"), "recognition.diagnosis"),
        (recognition(diagnosis="E11.900"), "recognition.diagnosis"),  # a diabetes code, not within dialysis
        (recognition(certified_by="H12"), "recognition.certified_by"),
        (recognition(recognition_id="7"), "recognition.recognition_id"),
        (recognition(cancelled_at="2026-01-01T00:00:00Z"), "recognition.cancelled_at"),
    ]:
        error = await kit.refusal(stub.RecordSpecialDisease(ia.RecordSpecialDiseaseRequest(
            request_id=kit.rid(), member_id=member.member_id, recognition=given)))
        kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field=field)
    error = await kit.refusal(stub.CancelSpecialDisease(ia.CancelSpecialDiseaseRequest(
        request_id=kit.rid(), member_id=member.member_id, recognition_id="x1", reason="r")))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="recognition_id")
    error = await kit.refusal(stub.CancelSpecialDisease(ia.CancelSpecialDiseaseRequest(
        request_id=kit.rid(), member_id=member.member_id, recognition_id="999999999", reason="r")))
    kit.assert_refused(error, grpc.StatusCode.NOT_FOUND)
    error = await kit.refusal(stub.ListSpecialDiseases(ia.ListSpecialDiseasesRequest(
        member_id=member.member_id, valid_on="2026-02-30")))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="valid_on")
    error = await kit.refusal(stub.RecordSpecialDisease(ia.RecordSpecialDiseaseRequest(
        request_id=kit.rid(), member_id="NOBODY", recognition=recognition())))
    kit.assert_refused(error, grpc.StatusCode.NOT_FOUND)
    assert await kit.counts("insured_430100") == before


async def test_operators_recognise_list_and_cancel_from_the_cli(kit, stack_file):
    member = await kit.new_member(REGION)
    config = ("--config", str(stack_file))
    code, out, err = await clearing_admin("members", "recognise", REGION, member.member_id, "diabetes", "--from",
                                          "2026-02-01", "--diagnosis", "E11.900", "--json", *config)
    assert code == 0, err
    recorded = json.loads(out)["recognition"]
    assert recorded["disease"] == "SPECIAL_DISEASE_DIABETES" and recorded["valid_to"] == ""
    code, out, err = await clearing_admin("members", "diseases", REGION, member.member_id, "--on", "2026-03-01",
                                          *config)
    assert code == 0 and "糖尿病" in out and "E11.900" in out and "1 recognition" in out, (out, err)
    code, out, err = await clearing_admin("members", "unrecognise", REGION, member.member_id,
                                          recorded["recognition_id"], "--reason", "recorded in error", *config)
    assert code == 0 and "cancelled" in out, (out, err)
    for arguments, named in [
        (("members", "recognise", REGION, member.member_id, "gout", "--from", "2026-02-01", "--diagnosis", "M10.000"),
         "DISEASE"),
        (("members", "recognise", REGION, member.member_id, "dialysis", "--from", "2026-13-01", "--diagnosis",
          "N18.500"), "recognition.valid_from"),
        (("members", "diseases", "999999", member.member_id), "REGION"),
    ]:
        code, out, err = await clearing_admin(*arguments, *config)
        assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1 and named in err, err
