"""The size bounds every server states (docs/security.md "Abuse limits"): a message above MESSAGE_BYTES_MAX is
RESOURCE_EXHAUSTED from gRPC and writes nothing, while the demo's catalogues — the biggest legitimate messages —
pass with room to spare; an upload of more than LINES_PER_UPLOAD_MAX lines is INVALID_ARGUMENT naming `lines`."""

from __future__ import annotations

import grpc
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import treating_agency_pb2_grpc as ta_grpc

from clearing import limits
from services.common.regions import load_regions
from services.security.identity import hospital
from services.security.party import MESSAGE_BYTES_MAX
from services.stack.enrol import catalogue_csv_text

TREATING = "440100"
H_GUANGZHOU = "H44010000001"
INSURED = "430100"
DAY = "2026-03-02"
PARTIES = (f"treating_{TREATING}", f"insured_{INSURED}", "clearinghouse")
# A client that would send more than any of our channels: the server's own limit is what is tested.
BIG_CLIENT = (("grpc.max_send_message_length", 4 * MESSAGE_BYTES_MAX),
              ("grpc.max_receive_message_length", MESSAGE_BYTES_MAX))


def test_the_demo_catalogues_fit_the_message_limit_many_times_over():
    sizes = {region: len(catalogue_csv_text(region, 2026).encode()) for region in load_regions()}
    assert max(sizes.values()) * 10 < MESSAGE_BYTES_MAX, sizes  # the stack imported and published them all


async def test_an_oversize_message_is_resource_exhausted_and_writes_nothing(kit):
    member = await kit.new_member(INSURED, filing="resident")
    admitted = await kit.admit(H_GUANGZHOU, member, DAY)
    before = await kit.counts(*PARTIES)
    request = ta.UploadChargesRequest(request_id=kit.rid(), encounter_id=admitted.encounter_id, lines=[
        kit.bill_line("1", "X" * (MESSAGE_BYTES_MAX + 1), "1", 100, DAY)])
    assert request.ByteSize() > MESSAGE_BYTES_MAX
    channel = kit.stack.transport.channel(kit.stack.address(TREATING), hospital(H_GUANGZHOU), BIG_CLIENT)
    try:
        error = await kit.refusal(ta_grpc.TreatingAgencyServiceStub(channel).UploadCharges(request))
    finally:
        await channel.close()
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, f"{error.code().name}: {error.details()}"
    assert await kit.counts(*PARTIES) == before

    # Just under the limit is the servicer's to judge: refused for the code's length, not for the size.
    request.lines[0].code = "X" * (MESSAGE_BYTES_MAX - 1024)
    error = await kit.refusal(kit.treating(TREATING).UploadCharges(request))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert await kit.counts(*PARTIES) == before


async def test_an_upload_of_more_lines_than_the_limit_is_refused_naming_lines_and_the_limit_itself_passes(kit):
    member = await kit.new_member(INSURED, filing="resident")
    admitted = await kit.admit(H_GUANGZHOU, member, DAY)
    code = kit.plain_codes(TREATING)[0]
    lines = [kit.bill_line(f"L{index}", code, "1", 100, DAY) for index in range(limits.LINES_PER_UPLOAD_MAX + 1)]
    before = await kit.counts(*PARTIES)
    error = await kit.refusal(kit.treating(TREATING).UploadCharges(ta.UploadChargesRequest(
        request_id=kit.rid(), encounter_id=admitted.encounter_id, lines=lines)))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, "lines")
    assert str(limits.LINES_PER_UPLOAD_MAX) in error.details()
    assert await kit.counts(*PARTIES) == before

    answer = await kit.treating(TREATING).UploadCharges(ta.UploadChargesRequest(
        request_id=kit.rid(), encounter_id=admitted.encounter_id, lines=lines[:limits.LINES_PER_UPLOAD_MAX]))
    assert answer.line_count == limits.LINES_PER_UPLOAD_MAX
