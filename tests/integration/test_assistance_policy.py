"""Medical assistance tiers (医疗救助) against the insured region's policy (issue 9 item 11, SPEC §5.1, §5.2 step 6).

Every demo region's policy defines all three tiers and both schemes, so each case runs its own insured agency
(the real servicer behind a real gRPC server, on its own database in the session's Postgres) with a policy
written here for region 990100:

* `SECTIONLESS` has no [assistance] section: "no assistance", so a member with a tier registers and settles
  with maf 0 and an explanation step saying why (before, every settlement of such a member was refused);
* `PARTIAL` defines only `tekun` and only the employee scheme: registering a member the policy in force could
  never settle (tier dibao, or scheme resident) is refused at RegisterMember with FAILED_PRECONDITION naming
  the field, and nothing is written.

Amounts are worked out by hand in the comments.
"""

from __future__ import annotations

import secrets
import uuid

import asyncpg
import grpc
import pytest
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import insured_agency_pb2, insured_agency_pb2_grpc
from clearinghouse.v1 import types_pb2

from clearing.policy import PolicyBook, parse_policy
from services.common.db import ensure_database
from services.common.server import ServiceBinding, start_server
from services.insured.servicer import InsuredAgencyServicer
from services.security.identity import agency
from services.stack.wiring import open_pool

REGION = "990100"
SCHEME = """\
[schemes.employee]
  [schemes.employee.deductible_fen]
  "1" = 0
  "2" = 0
  "3" = 0
  [[schemes.employee.bands]]
  ratio_bp = { "1" = 5000, "2" = 5000, "3" = 5000 }
"""
HEAD = f'region = "{REGION}"\nname = "测试地区"\neffective_from = "2000-01-01"\n\n'
SECTIONLESS = HEAD + SCHEME
PARTIAL = HEAD + SCHEME + "\n[assistance.tekun]\nratio_bp = 10000\n"
TABLES = ("members", "filings", "accumulators", "settlements", "requests")


class Agency:
    """One insured agency of region 990100 under one policy, with its stub and its database."""

    def __init__(self, stub: insured_agency_pb2_grpc.InsuredAgencyServiceStub, dsn: str) -> None:
        self.stub = stub
        self.dsn = dsn

    async def counts(self) -> dict[str, int]:
        connection = await asyncpg.connect(self.dsn)
        try:
            return {table: await connection.fetchval(f"SELECT count(*) FROM {table}") for table in TABLES}
        finally:
            await connection.close()


@pytest.fixture(scope="module")
async def agencies(stack, tmp_path_factory):
    started, databases = [], []
    result = {}
    # They serve as agency/990100, with a certificate of the stack's CA made for it.
    security = stack.transport_for(tmp_path_factory.mktemp("certs"), agency(REGION)).security(agency(REGION))
    for name, text in (("sectionless", SECTIONLESS), ("partial", PARTIAL)):
        party = f"insured_{REGION}_{name}"
        await ensure_database(stack.config.base_dsn, stack.config.database(party))
        databases.append(stack.config.database(party))
        dsn = stack.config.dsn(party)
        key = secrets.token_bytes(32)  # the member key of this made-up region (services/insured/keys.py)
        pool = await open_pool(dsn, "insured", {"member_key": key})
        servicer = InsuredAgencyServicer(REGION, pool, PolicyBook.of([parse_policy(text)]), key, security=security)
        server, port = await start_server([ServiceBinding(
            servicer, insured_agency_pb2_grpc.add_InsuredAgencyServiceServicer_to_server,
            insured_agency_pb2.DESCRIPTOR.services_by_name["InsuredAgencyService"].full_name)], 0, f"test:{name}",
            security=security)
        started.append((server, pool))
        # Member calls go as the operator, adjudication calls as the clearing house (tests/conftest.py Stack).
        result[name] = Agency(stack.insured(REGION, f"127.0.0.1:{port}"), dsn)
    yield result
    for server, pool in started:
        await server.stop(None)
        await pool.close()
    connection = await asyncpg.connect(stack.config.base_dsn)
    try:
        for database in databases:
            await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await connection.close()


def register_request(scheme: int = types_pb2.SCHEME_EMPLOYEE,
                     assistance: int = types_pb2.ASSISTANCE_TIER_NONE) -> ia.RegisterMemberRequest:
    return ia.RegisterMemberRequest(request_id=str(uuid.uuid4()), member=ia.Member(
        member_id=f"T{REGION}{uuid.uuid4().hex[:12].upper()}", id_number="990100198001011234", name="王五",
        scheme=scheme, assistance=assistance))


def claim_for(member_id: str) -> types_pb2.Claim:
    """One grade-A line in scope: 2 × 5,000.00 = 10,000.00 yuan at a level-3 hospital of 440100."""
    line = types_pb2.ClassifiedLine(
        line=types_pb2.BillLine(line_id="1", code="X0001", qty="2", unit_price_fen=500_000, amount_fen=1_000_000,
                                service_date="2026-03-03"),
        catalogue_region="440100", catalogue_code="X0001", national_code="XA01AAA0001",
        relation=types_pb2.RELATION_EQUIVALENT, grade=types_pb2.GRADE_A, name="复方硼砂", inscp_fen=1_000_000,
        kind="drug")
    return types_pb2.Claim(
        settlement_id=str(uuid.uuid4()), treating_region="440100", insured_region=REGION, member_id=member_id,
        settlement_day="2026-03-06",
        stay=types_pb2.Stay(hospital_code="H44010000001", hospital_level=3, admitted_on="2026-03-02",
                            discharged_on="2026-03-06", diagnoses=["J18.9"]),
        lines=[line])


@pytest.mark.parametrize(("request_", "subject"), [
    pytest.param(register_request(assistance=types_pb2.ASSISTANCE_TIER_DIBAO), "member.assistance", id="tier-dibao"),
    pytest.param(register_request(assistance=types_pb2.ASSISTANCE_TIER_DISHOURU), "member.assistance",
                 id="tier-dishouru"),
    pytest.param(register_request(scheme=types_pb2.SCHEME_RESIDENT), "member.scheme", id="scheme-resident"),
])
async def test_register_member_refuses_what_the_policy_in_force_does_not_define_and_writes_nothing(
        kit, agencies, request_, subject):
    agency = agencies["partial"]
    before = await agency.counts()
    error = await kit.refusal(agency.stub.RegisterMember(request_))
    kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject=subject)
    assert await agency.counts() == before, "a refused registration writes nothing"


async def test_register_member_accepts_a_tier_the_policy_defines(agencies):
    request = register_request(assistance=types_pb2.ASSISTANCE_TIER_TEKUN)
    answer = await agencies["partial"].stub.RegisterMember(request)
    assert answer.member.assistance == types_pb2.ASSISTANCE_TIER_TEKUN


async def test_member_with_a_tier_under_a_policy_without_assistance_settles_with_no_assistance(kit, agencies):
    agency = agencies["sectionless"]
    request = register_request(assistance=types_pb2.ASSISTANCE_TIER_DIBAO)
    await agency.stub.RegisterMember(request)  # no [assistance] section: any tier registers
    claim = claim_for(request.member.member_id)
    quoted = await agency.stub.QuoteAdjudication(ia.QuoteAdjudicationRequest(claim=claim))
    settled = await agency.stub.Adjudicate(ia.AdjudicateRequest(request_id=claim.settlement_id, claim=claim))
    for adjudication in (quoted.adjudication, settled.adjudication):
        split = adjudication.split
        # inscp 1,000,000, deductible 0, 50 %: hifp 500,000; no 大病; r = 500,000, and no assistance on it.
        assert (split.hifp_fen, split.hifmi_fen, split.maf_fen) == (500_000, 0, 0)
        assert (split.fund_pay_fen, split.psn_pay_fen) == (500_000, 500_000)
        steps = {step.step: step for step in adjudication.explanation}
        assert steps["assistance_none"].text_zh == "医疗救助（dibao）：参保地政策未设医疗救助，支付 0.00 元"
        assert steps["assistance_none"].text_en == ("medical assistance (dibao): the insured region's policy has no "
                                                    "medical assistance, pays 0.00")
    accumulators = (await agency.stub.GetMember(ia.GetMemberRequest(member_id=request.member.member_id,
                                                                     year=2026))).accumulators
    assert (accumulators.assist_base_fen, accumulators.maf_fen, accumulators.admissions) == (500_000, 0, 1)
