"""`clearing-admin audit show` against the in-process test stack (the real command, in a subprocess, with a stack
configuration file naming the test stack's ports and certificate directory): it asks every party and merges their
logs by time, filters by operator, time and party, prints a table or the raw records, and refuses a bad option
with one `error: …` line, exit 2."""

from __future__ import annotations

import json

import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import clearing_house_pb2_grpc, hospital_pb2, hospital_pb2_grpc

from services.common.clock import SHANGHAI
from services.security.identity import operator
from conftest import clearing_admin

AUDITOR = operator("auditor")
INSURED = "430100"




async def test_audit_show_merges_every_party_by_time(stack, kit, stack_file):
    started = await (await kit.db("clearinghouse")).fetchval("SELECT clock_timestamp()")
    await stack.stub_as(AUDITOR, clearing_house_pb2_grpc.ClearingHouseServiceStub, stack.clearing_address) \
        .ListPrepayments(ch.ListPrepaymentsRequest(insured_region=INSURED))
    member = await kit.new_member(INSURED)  # as operator/admin, at the insured agency
    await stack.stub_as(AUDITOR, hospital_pb2_grpc.HospitalServiceStub, f"127.0.0.1:{stack.his.port}") \
        .GetSummary(hospital_pb2.GetSummaryRequest())
    since = started.astimezone(SHANGHAI).isoformat()

    code, out, err = await clearing_admin("--operator", "auditor", "audit", "show", "--config", str(stack_file),
                                          "--since", since, "--json")
    assert code == 0, err
    records = json.loads(out)
    assert [(item["party"], item["rpc"], item["caller"], item["outcome"]) for item in records] == [
        ("clearinghouse", "ClearingHouseService.ListPrepayments", "operator/auditor", "OK"),
        (f"insured:{INSURED}", "InsuredAgencyService.RegisterMember", "operator/admin", "OK"),
        ("his", "HospitalService.GetSummary", "operator/auditor", "OK")]
    assert records[1]["request"]["member"]["member_id"] == member.member_id
    assert member.id_number not in out and member.name not in out

    code, out, err = await clearing_admin("--operator", "auditor", "audit", "show", "--config", str(stack_file),
                                          "--since", since, "--who", "auditor", "--party", "his")
    assert code == 0, err
    assert "HospitalService.GetSummary" in out and "operator/auditor" in out and "│ his " in out
    assert started.astimezone(SHANGHAI).strftime("%Y-%m-%d ") in out  # Asia/Shanghai dates
    assert "ClearingHouseService" not in out and "RegisterMember" not in out
    # The earlier `audit show` calls are operator calls too, recorded where they were served.
    code, out, err = await clearing_admin("audit", "show", "--config", str(stack_file), "--since", since,
                                          "--who", "operator/auditor", "--party", "clearinghouse", "--json")
    assert [item["rpc"] for item in json.loads(out)] == [
        "ClearingHouseService.ListPrepayments", "AuditService.ListAuditEvents"]


@pytest.mark.parametrize(("option", "value", "named"), [
    ("--since", "2026-13-01", "--since"), ("--since", "yesterday", "--since"),
    ("--who", "hospital/H44010000001", "--who"), ("--who", "Bad Name", "--who"),
    ("--party", "region:999999", "--party"), ("--party", "treating", "--party"),
])
async def test_a_bad_option_is_one_error_line(stack_file, option, value, named):
    code, out, err = await clearing_admin("audit", "show", "--config", str(stack_file), option, value)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and named in err, err
