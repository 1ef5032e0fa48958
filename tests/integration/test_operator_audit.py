"""The operator audit log (docs/security.md "Operator audit log"; services/security/audit_log.py) on the running
stack: every operator call is recorded, with its outcome, at the party that served it — the insured agency for a
member's registration, the treating agency for an Admit the table refuses, the clearing house and the HIS
simulator for theirs — and no call of a hospital or an agency is. The tables are append-only by trigger in every
party's database; a record holds no ID number and no name; a party that cannot write its log refuses the call and
does nothing; only operators read the log back (AuditService.ListAuditEvents), page by page."""

from __future__ import annotations

import json
import uuid

import asyncpg
import grpc
import pytest
from clearinghouse.v1 import audit_pb2, audit_pb2_grpc, hospital_pb2, hospital_pb2_grpc
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import clearing_house_pb2_grpc
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import insured_agency_pb2_grpc, treating_agency_pb2_grpc
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2

from services.security.audit_log import AuditLog
from services.security.identity import agency, clearinghouse, hospital, operator

TREATING = "440100"
INSURED = "430100"
H_GUANGZHOU = "H44010000001"
DAY = "2026-03-02"
OPERATOR = operator("admin")
AUDITOR = operator("auditor")  # a second operator, to tell callers apart
PARTIES = ("clearinghouse", "his", f"treating_{TREATING}", f"insured_{INSURED}")


async def events_where(kit, party: str, condition: str, *arguments) -> list[dict]:  # noqa: ANN001
    """The audit events of a party's database matching `condition` (SQL over the view's columns), by id, the
    request as a Python value."""
    rows = await (await kit.db(party)).fetch(
        f"SELECT * FROM operator_audit_events WHERE {condition} ORDER BY id", *arguments)
    return [{**row, "request": json.loads(row["request"])} for row in rows]


async def by_request_id(kit, party: str, request_id: str) -> list[dict]:  # noqa: ANN001
    return await events_where(kit, party, "request->>'request_id' = $1", request_id)


async def test_an_operator_action_is_recorded_with_its_outcome_at_the_party_that_performed_it(kit):
    member = await kit.new_member(INSURED)
    [event] = await events_where(kit, f"insured_{INSURED}", "rpc = 'InsuredAgencyService.RegisterMember' AND "
                                                            "request->'member'->>'member_id' = $1", member.member_id)
    assert event["caller"] == "operator/admin"
    assert (event["outcome"], event["message"]) == ("OK", "")
    assert event["at"] <= event["finished_at"]
    # Only there: the region's treating agency (same process, other database) and the clearing house have nothing.
    for party in (f"treating_{INSURED}", "clearinghouse"):
        assert await events_where(kit, party, "request::text LIKE $1", f"%{member.member_id}%") == []


async def test_every_server_records_its_own_operator_calls(kit):
    """The clearing house, a treating agency, the HIS simulator: an operator's read is recorded where it was
    served (a server stream too: its outcome once the stream ended)."""
    stack = kit.stack
    clearing = stack.stub_as(AUDITOR, clearing_house_pb2_grpc.ClearingHouseServiceStub, stack.clearing_address)
    await clearing.ListPrepayments(ch.ListPrepaymentsRequest(insured_region=INSURED))
    treating = stack.stub_as(AUDITOR, treating_agency_pb2_grpc.TreatingAgencyServiceStub, stack.address(TREATING))
    [item async for item in treating.StreamDailyDetail(ta.StreamDailyDetailRequest(day="2020-01-01"))]
    his = stack.stub_as(AUDITOR, hospital_pb2_grpc.HospitalServiceStub, f"127.0.0.1:{stack.his.port}")
    await his.GetSummary(hospital_pb2.GetSummaryRequest())
    for party, rpc in (("clearinghouse", "ClearingHouseService.ListPrepayments"),
                       (f"treating_{TREATING}", "TreatingAgencyService.StreamDailyDetail"),
                       ("his", "HospitalService.GetSummary")):
        last = (await events_where(kit, party, "caller = 'operator/auditor' AND rpc = $1", rpc))[-1]
        assert last["outcome"] == "OK", (party, last)


async def test_a_call_the_table_refuses_is_recorded_with_its_code_and_message(kit):
    member = await kit.new_member(INSURED)
    request = kit.admit_request(H_GUANGZHOU, member, DAY)  # Admit is the hospitals' own
    stub = kit.stack.stub_as(OPERATOR, treating_agency_pb2_grpc.TreatingAgencyServiceStub, kit.stack.address(TREATING))
    error = await kit.refusal(stub.Admit(request))
    kit.assert_refused(error, grpc.StatusCode.PERMISSION_DENIED)
    [event] = await by_request_id(kit, f"treating_{TREATING}", request.request_id)
    assert (event["caller"], event["rpc"]) == ("operator/admin", "TreatingAgencyService.Admit")
    assert (event["outcome"], event["message"]) == ("PERMISSION_DENIED", error.details())
    # The patient in the record: no name, the ID number masked as the logs do.
    assert "name" not in event["request"]["patient"]
    assert event["request"]["patient"]["id_number"] == member.id_number[:4] + "*" * 10 + member.id_number[-4:]


async def test_an_invalid_request_is_recorded_invalid_argument_without_the_number(kit):
    request_id = kit.rid()
    bad_number = "43010119700101123"  # 17 characters: malformed, still personal
    error = await kit.refusal(kit.insured(INSURED).RegisterMember(ia.RegisterMemberRequest(
        request_id=request_id, member=ia.Member(member_id=f"T{INSURED}{uuid.uuid4().hex[:12].upper()}",
                                                id_number=bad_number, name="审计测试"))))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT)
    [event] = await by_request_id(kit, f"insured_{INSURED}", request_id)
    assert event["outcome"] == "INVALID_ARGUMENT" and event["message"] == error.details()
    text = json.dumps(event["request"], ensure_ascii=False)
    assert bad_number not in text and "审计测试" not in text


async def test_hospital_and_agency_calls_are_not_recorded(kit):
    member = await kit.new_member(INSURED)
    before = {party: await (await kit.db(party)).fetchval("SELECT count(*) FROM operator_audit") for party in PARTIES}
    code = kit.plain_codes(TREATING)[0]
    settlement = await kit.discharge(H_GUANGZHOU, member, [kit.bill_line("1", code, "1", 10_000, DAY)], DAY,
                                     "2026-03-04")
    assert settlement.settlement_id  # a hospital's Admit, UploadCharges, Settle; an agency's SettleClaim; the
    # clearing house's Adjudicate; the treating agency's VerifyMember: none of them an operator's
    after = {party: await (await kit.db(party)).fetchval("SELECT count(*) FROM operator_audit") for party in PARTIES}
    assert after == before


@pytest.mark.parametrize("party", PARTIES)
@pytest.mark.parametrize("statement", [
    "UPDATE operator_audit SET rpc = 'X.Y'", "DELETE FROM operator_audit", "TRUNCATE operator_audit CASCADE",
    "UPDATE operator_audit_outcomes SET outcome = 'OK'", "DELETE FROM operator_audit_outcomes",
    "TRUNCATE operator_audit_outcomes",
])
async def test_the_log_is_append_only_by_trigger(kit, party, statement):
    connection = await kit.db(party)
    assert await connection.fetchval("SELECT count(*) FROM operator_audit_outcomes") > 0, "a log with rows"
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await connection.execute(statement)


async def test_the_time_is_the_database_clock_whatever_the_writer_says(kit):
    connection = await kit.db("clearinghouse")
    transaction = connection.transaction()
    await transaction.start()
    try:
        row = await connection.fetchrow(
            "INSERT INTO operator_audit (at, caller, rpc, request) VALUES ('2000-01-01', 'operator/test', 'A.B', '{}') "
            "RETURNING at, clock_timestamp() - at AS age")
    finally:
        await transaction.rollback()  # a test row is never left behind: it could not be deleted
    assert row["at"].year > 2000 and row["age"].total_seconds() >= 0


async def test_a_registration_record_holds_no_id_number_and_no_name(kit):
    id_number = f"{INSURED}19700101{uuid.uuid4().int % 10000:04d}"
    name = f"审计{uuid.uuid4().hex[:4]}"
    member_id = f"T{INSURED}{uuid.uuid4().hex[:12].upper()}"
    await kit.insured(INSURED).RegisterMember(ia.RegisterMemberRequest(
        request_id=kit.rid(), member=ia.Member(member_id=member_id, id_number=id_number, name=name,
                                               scheme=types_pb2.SCHEME_EMPLOYEE,
                                               assistance=types_pb2.ASSISTANCE_TIER_NONE)))
    rows = await (await kit.db(f"insured_{INSURED}")).fetch("SELECT request::text AS text FROM operator_audit")
    assert any(member_id in row["text"] for row in rows)
    for row in rows:
        assert id_number not in row["text"] and name not in row["text"]
        assert '"name"' not in row["text"]


# -- reading it back ---------------------------------------------------------------------------------------------

def audit_stub(kit, identity, address: str):  # noqa: ANN001, ANN201
    return kit.stack.stub_as(identity, audit_pb2_grpc.AuditServiceStub, address)


@pytest.mark.parametrize("identity", [hospital(H_GUANGZHOU), agency(TREATING), clearinghouse()],
                         ids=["hospital", "agency", "clearinghouse"])
async def test_only_operators_read_the_log(kit, identity):
    error = await kit.refusal(audit_stub(kit, identity, kit.stack.address(TREATING)).ListAuditEvents(
        audit_pb2.ListAuditEventsRequest()))
    kit.assert_refused(error, grpc.StatusCode.PERMISSION_DENIED)
    assert kit.detail_of(error, error_details_pb2.ErrorInfo).metadata["rule"] == \
        "AuditService.ListAuditEvents: only operator"


async def test_a_region_answers_with_both_agencies_events_labelled_and_pages_through_them(kit):
    started = Timestamp()
    started.FromDatetime(await (await kit.db(f"treating_{TREATING}")).fetchval("SELECT clock_timestamp()"))
    member = await kit.new_member(TREATING)  # an insured-agency event …
    await kit.stack.stub_as(AUDITOR, treating_agency_pb2_grpc.TreatingAgencyServiceStub,
                            kit.stack.address(TREATING)).ListPayouts(ta.ListPayoutsRequest(month="2026-03"))
    stub = audit_stub(kit, AUDITOR, kit.stack.address(TREATING))  # … and a treating-agency one
    everything = await stub.ListAuditEvents(audit_pb2.ListAuditEventsRequest(since=started, limit=1000))
    parties = {event.party for event in everything.events}
    assert parties == {f"treating:{TREATING}", f"insured:{TREATING}"}
    assert any(member.member_id in event.request_json for event in everything.events)
    times = [event.at.ToDatetime() for event in everything.events]
    assert times == sorted(times)

    mine = await stub.ListAuditEvents(audit_pb2.ListAuditEventsRequest(since=started, who="operator/auditor"))
    assert {event.caller for event in mine.events} == {"operator/auditor"}
    # The listing call itself is recorded (at the region's treating agency), but not listed in its own answer: the
    # earlier listing is, finished.
    assert [(event.party, event.rpc, event.outcome) for event in mine.events] == [
        (f"treating:{TREATING}", "TreatingAgencyService.ListPayouts", "OK"),
        (f"treating:{TREATING}", "AuditService.ListAuditEvents", "OK")]

    # Page by page (two at a time; each page's own call is recorded and shows on the later pages, two behind).
    pages, token = [], ""
    while True:
        page = await stub.ListAuditEvents(audit_pb2.ListAuditEventsRequest(since=started, limit=2, page_token=token))
        pages.extend((event.party, event.id) for event in page.events)
        token = page.next_page_token
        if not token:
            break
    whole = [(event.party, event.id) for event in everything.events]
    assert pages[:len(whole)] == whole and len(set(pages)) == len(pages) > len(whole)


async def test_bad_list_requests_are_refused_naming_the_field(kit):
    stub = audit_stub(kit, OPERATOR, kit.stack.clearing_address)
    for request, field in ((audit_pb2.ListAuditEventsRequest(limit=1001), "limit"),
                           (audit_pb2.ListAuditEventsRequest(who="hospital/H44010000001"), "who"),
                           (audit_pb2.ListAuditEventsRequest(who="admin"), "who"),
                           (audit_pb2.ListAuditEventsRequest(page_token="nonsense"), "page_token")):
        kit.assert_refused(await kit.refusal(stub.ListAuditEvents(request)), grpc.StatusCode.INVALID_ARGUMENT, field)


# -- a log that cannot be written ----------------------------------------------------------------------------------

class BrokenPool:
    """A pool whose database is gone."""

    async def fetchval(self, *arguments):  # noqa: ANN002, ANN201
        raise ConnectionRefusedError("the audit database is down")

    execute = fetchval


async def test_a_party_that_cannot_write_its_log_refuses_operator_calls_and_does_nothing(kit):
    insured = kit.stack.regions[INSURED].servicers["insured"]
    kept = insured.audit_log
    member_id = f"T{INSURED}{uuid.uuid4().hex[:12].upper()}"
    insured.audit_log = AuditLog(BrokenPool(), kept.party)  # type: ignore[arg-type]
    try:
        stub = kit.stack.stub_as(OPERATOR, insured_agency_pb2_grpc.InsuredAgencyServiceStub, kit.stack.address(INSURED))
        error = await kit.refusal(stub.RegisterMember(ia.RegisterMemberRequest(
            request_id=kit.rid(), member=ia.Member(member_id=member_id, id_number=f"{INSURED}197001015678",
                                                   name="审计"))))
    finally:
        insured.audit_log = kept
    assert error.code() is grpc.StatusCode.UNAVAILABLE and "audit log" in error.details()
    assert await (await kit.db(f"insured_{INSURED}")).fetchval(
        "SELECT count(*) FROM members WHERE member_id = $1", member_id) == 0
