"""`clearing-admin members recognise / unrecognise / diseases`: an insured region's recognitions (认定) of its members'
outpatient special diseases (门诊慢特病, SPEC §13; national 2503 filing, 2504 cancel, 5301 query), as the operator.

Without a recognition valid on the visit day, a cross-region visit for the disease is not paid by the fund."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import insured_agency_pb2_grpc, types_pb2
from google.protobuf import json_format
from rich.console import Console

from services.cli import online, output
from services.cli.lookup_view import JSON_OPTIONS, wide
from services.common import convert

DISEASE_WORDS = {"hypertension": "高血压 hypertension", "diabetes": "糖尿病 diabetes",
                 "cancer_therapy": "恶性肿瘤门诊放化疗 cancer radio/chemotherapy", "dialysis": "尿毒症透析 dialysis",
                 "transplant": "器官移植术后抗排异 anti-rejection after transplant"}


def disease_key(value: int) -> str:
    return next((key for key, number in convert.SPECIAL_DISEASES.items() if number == value), "?")


def stub(channel: Any) -> insured_agency_pb2_grpc.InsuredAgencyServiceStub:  # noqa: ANN401 - a grpc.aio channel
    return insured_agency_pb2_grpc.InsuredAgencyServiceStub(channel)


def record(config_path: Path, region: str, member_id: str, disease: str, valid_from: str, valid_to: str,
           diagnosis: str, certified_by: str, request_id: str) -> ia.RecordSpecialDiseaseResponse:
    if disease not in convert.SPECIAL_DISEASES:
        output.fail(f"DISEASE: {disease!r} is not one of {', '.join(convert.SPECIAL_DISEASES)}")
    config = online.load_config(config_path)
    address = online.region_address(config, region, "REGION")
    request = ia.RecordSpecialDiseaseRequest(
        request_id=request_id or str(uuid.uuid4()), member_id=member_id,
        recognition=types_pb2.SpecialDiseaseRecognition(
            disease=convert.SPECIAL_DISEASES[disease], valid_from=valid_from, valid_to=valid_to, diagnosis=diagnosis,
            certified_by=certified_by))
    return online.call(config, address, lambda channel: stub(channel).RecordSpecialDisease(
        request, timeout=online.CALL_TIMEOUT_S))


def cancel(config_path: Path, region: str, member_id: str, recognition_id: str, reason: str,
           request_id: str) -> ia.CancelSpecialDiseaseResponse:
    config = online.load_config(config_path)
    address = online.region_address(config, region, "REGION")
    request = ia.CancelSpecialDiseaseRequest(request_id=request_id or str(uuid.uuid4()), member_id=member_id,
                                             recognition_id=recognition_id, reason=reason)
    return online.call(config, address, lambda channel: stub(channel).CancelSpecialDisease(
        request, timeout=online.CALL_TIMEOUT_S))


def list_recognitions(config_path: Path, region: str, member_id: str, valid_on: str) -> ia.ListSpecialDiseasesResponse:
    config = online.load_config(config_path)
    address = online.region_address(config, region, "REGION")
    request = ia.ListSpecialDiseasesRequest(member_id=member_id, valid_on=valid_on)
    return online.call(config, address, lambda channel: stub(channel).ListSpecialDiseases(
        request, timeout=online.CALL_TIMEOUT_S))


def as_json(answer: Any) -> dict[str, Any]:  # noqa: ANN401 - any of the three responses
    return json_format.MessageToDict(answer, **JSON_OPTIONS)


def recognition_line(item: types_pb2.SpecialDiseaseRecognition) -> str:
    state = f"cancelled {item.cancelled_at} ({item.cancel_reason})" if item.cancelled_at else "standing"
    return (f"recognition {item.recognition_id}: {DISEASE_WORDS.get(disease_key(item.disease), '?')}, "
            f"{item.valid_from}–{item.valid_to or 'open'}, diagnosis {item.diagnosis}, {state}")


def show(console: Console, region: str, member_id: str, answer: ia.ListSpecialDiseasesResponse) -> None:
    listing = output.table(f"Outpatient special diseases of {member_id} at {region} (门诊慢特病认定)", "id", "disease",
                           "valid from", "valid to", "diagnosis", "certified by", "recorded", "cancelled")
    for item in answer.recognitions:
        listing.add_row(item.recognition_id, DISEASE_WORDS.get(disease_key(item.disease), "?"), item.valid_from,
                        item.valid_to or "open", item.diagnosis, item.certified_by, item.recorded_at,
                        f"{item.cancelled_at} ({item.cancel_reason})" if item.cancelled_at else "")
    wide(console).print(listing)
    console.print(online.plural(len(answer.recognitions), "recognition"))
