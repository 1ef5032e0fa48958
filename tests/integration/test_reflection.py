"""Reflection serves the API with its comments (issue 15 item 1; services/common/descriptors.py): what an integrator
learns from the server alone — money in int64 fen, request ids UUID4, quantities as decimal strings — is what the
protos say, read here from a reflected file's `source_code_info`."""

from __future__ import annotations

from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.security.identity import hospital

H_GUANGZHOU = "H44010000001"


async def reflected_files(kit, **request: str) -> dict[str, descriptor_pb2.FileDescriptorProto]:  # noqa: ANN001
    """Ask the Guangzhou server's reflection, as one of its hospitals would; file name → file."""
    stub = kit.stack.stub_as(hospital(H_GUANGZHOU), reflection_pb2_grpc.ServerReflectionStub, kit.stack.address("440100"))
    answers = [answer async for answer in stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(**request)]), timeout=10)]
    assert len(answers) == 1 and answers[0].HasField("file_descriptor_response"), answers
    files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
             for raw in answers[0].file_descriptor_response.file_descriptor_proto]
    return {file.name: file for file in files}


def comment_of(file: descriptor_pb2.FileDescriptorProto, message: str, field: str | None = None) -> str:
    """The leading comment of `message` (or of its `field`) in `file`, found by its source-info path (4 = the
    file's message_type, 2 = a message's field)."""
    index = [item.name for item in file.message_type].index(message)
    path = [4, index]
    if field is not None:
        path += [2, [item.name for item in file.message_type[index].field].index(field)]
    found = [location.leading_comments for location in file.source_code_info.location if list(location.path) == path]
    return found[0].strip() if found else ""


async def test_a_reflected_message_and_its_fields_carry_their_comments(kit):
    files = await reflected_files(kit, file_containing_symbol="clearinghouse.v1.AdmitRequest")
    treating = files["clearinghouse/v1/treating_agency.proto"]
    assert comment_of(treating, "AdmitRequest") == "Request of Admit."
    assert comment_of(treating, "AdmitRequest", "request_id") == "Idempotency key (UUID4)."
    # Its imports come along, commented too: the money and quantity conventions live in types.proto.
    types = files["clearinghouse/v1/types.proto"]
    assert "fen" in comment_of(types, "BillLine", "unit_price_fen")
    assert "decimal" in comment_of(types, "BillLine", "qty").lower()


async def test_a_file_asked_by_name_carries_its_comments_and_others_are_served_as_before(kit):
    files = await reflected_files(kit, file_by_filename="clearinghouse/v1/insured_agency.proto")
    assert comment_of(files["clearinghouse/v1/insured_agency.proto"], "AdjudicateBatchRequest").startswith(
        "One batch of AdjudicateBatch")
    health = await reflected_files(kit, file_containing_symbol="grpc.health.v1.Health")
    assert "grpc_health/v1/health.proto" in health  # not ours: served as grpc_reflection serves it
