"""Every cell of the authorisation table (services/security/policy.py), over real mutual-TLS connections to the
running stack: the caller is only ever its certificate.

The RPCs are discovered from the generated descriptors, so a new RPC gets its cells without editing this file (and
tests/unit/test_policy_table.py fails until it has a row). For every RPC and every role (clearing house, agency,
hospital, operator, HIS simulator), a call as an identity of that role:

* **a role without a grant** is PERMISSION_DENIED with an `ErrorInfo` naming the rule (`Service.Method: only …`),
  and nothing is written at the party called;
* **a role with a grant** gets past the table: its request meets the grant's request rules (a hospital names
  itself, an agency its own region, …), and the answer is whatever the party says to that request — never
  PERMISSION_DENIED or UNAUTHENTICATED. The requests are otherwise empty, so a mutating call is refused by the
  body for its missing `request_id` and nothing happens;
* **each request rule of each grant, broken** (another hospital's code, another region, a same-region claim sent
  through the clearing house, a call to another region's agency) is PERMISSION_DENIED naming that rule, nothing
  written.

Then the resource rules, with real resources: a hospital acting on another hospital's encounter or settlement, an
agency cancelling or reversing another region's claim or reading a claim between two other regions, the clearing
house undoing a same-region stay at an insured agency and an agency undoing a cross-region one. Certificates that
are expired, of another CA or revoked: tests/integration/test_mtls_stack.py.
"""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from collections.abc import Callable
from typing import Any

import clearinghouse.v1 as proto_package
import grpc
import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import audit_pb2_grpc, clearing_house_pb2_grpc, hospital_pb2_grpc, insured_agency_pb2_grpc
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import treating_agency_pb2_grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.security.identity import Identity, agency, clearinghouse, his_simulator, hospital, operator
from services.security.policy import POLICY, Grant

SERVED = "440100"  # the region whose agencies are called
OTHER = "430100"  # another region: its agency, or a claim treated there
THIRD = "610924"
H_OWN, H_OTHER = "H44010000001", "H44010000002"  # two hospitals of SERVED
TIMEOUT_S = 10.0

CALLERS: dict[str, Identity] = {
    "clearinghouse": clearinghouse(), "agency": agency(SERVED), "hospital": hospital(H_OWN),
    "operator": operator("admin"), "simulator": his_simulator(),
}
STUBS = {"TreatingAgencyService": treating_agency_pb2_grpc.TreatingAgencyServiceStub,
         "InsuredAgencyService": insured_agency_pb2_grpc.InsuredAgencyServiceStub,
         "ClearingHouseService": clearing_house_pb2_grpc.ClearingHouseServiceStub,
         "HospitalService": hospital_pb2_grpc.HospitalServiceStub,
         "AuditService": audit_pb2_grpc.AuditServiceStub}  # served by every server: asked at the clearing house
# The databases a call to each service could write to (compared before and after a refusal).
DATABASES = {"TreatingAgencyService": (f"treating_{SERVED}",), "InsuredAgencyService": (f"insured_{SERVED}",),
             "ClearingHouseService": ("clearinghouse",), "HospitalService": ("his",), "AuditService": ("clearinghouse",)}


def discovered() -> dict[str, Any]:
    modules = [importlib.import_module(f"clearinghouse.v1.{name}")
               for _, name, _ in pkgutil.iter_modules(proto_package.__path__) if name.endswith("_pb2")]
    return {f"{service.name}.{method.name}": method for module in modules
            for service in module.DESCRIPTOR.services_by_name.values() for method in service.methods}


RPCS = discovered()


def request_class(rpc: str) -> type[Message]:
    method = RPCS[rpc]
    module = importlib.import_module(method.input_type.file.name.replace("/", ".").removesuffix(".proto") + "_pb2")
    return getattr(module, method.input_type.name)


# -- requests that meet a grant's request rules, and requests that break one ----------------------------------

def meeting(rpc: str, caller: Identity) -> Message:
    """A request of `rpc` that meets every request rule of `caller`'s grant (otherwise empty)."""
    request = request_class(rpc)()
    fields = request.DESCRIPTOR.fields_by_name
    if "hospital_code" in fields and caller.role == "hospital":
        request.hospital_code = caller.subject
    if "claim" in fields:
        # an agency sends its own region's claims (and its own insured agency only same-region ones); the clearing
        # house sends an insured agency only other regions' claims
        request.claim.treating_region = OTHER if caller.role == "clearinghouse" else caller.subject if \
            caller.role == "agency" else SERVED
    for name in ("treating_region", "region", "insured_region"):
        if name in fields and caller.role == "agency":
            setattr(request, name, caller.subject)
    return request


# (rpc, role) → every request rule of the grant, each as (rule, caller, request that breaks it, served region)
Breach = tuple[str, Identity, Message, str]


def breaches(rpc: str, grant: Grant) -> list[Breach]:
    caller = CALLERS[grant.role]
    found: list[Breach] = []
    for rule in grant.request_rules:
        request = meeting(rpc, caller)
        if rule == "in_served_region":  # the hospital's request, at another region's agency
            found.append((rule, caller, request, OTHER))
        elif rule in ("names_itself", "filters_on_itself"):
            request.hospital_code = H_OTHER
            found.append((rule, caller, request, SERVED))
        elif rule == "claim_treated_by_caller":
            request.claim.treating_region = OTHER
            found.append((rule, caller, request, SERVED))
        elif rule in ("treating_region_is_caller", "region_is_caller", "insured_region_is_caller",
                      "disputes_for_itself"):
            field = "insured_region" if rule == "disputes_for_itself" else rule.removesuffix("_is_caller")
            setattr(request, field, OTHER)
            found.append((rule, caller, request, SERVED))
            empty = meeting(rpc, caller)
            setattr(empty, field, "")  # "all regions" is not the caller's own region either
            found.append((rule, caller, empty, SERVED))
        elif rule == "claim_from_another_region":  # a same-region stay sent through the clearing house
            request.claim.treating_region = SERVED
            found.append((rule, caller, request, SERVED))
        elif rule == "local_claim_of_own_agency":
            request.claim.treating_region = OTHER  # its own agency, a cross-region claim
            found.append((rule, caller, request, SERVED))
            found.append((rule, agency(OTHER), meeting(rpc, agency(OTHER)), SERVED))  # another region's agency
        elif rule == "own_region_agency":
            found.append((rule, agency(OTHER), meeting(rpc, agency(OTHER)), SERVED))
        else:
            raise AssertionError(f"no breach written for request rule {rule}: add it here")
    return found


ROLE_CELLS = [(rpc, role) for rpc in RPCS for role in CALLERS]
BREACH_CELLS = [(rpc, role, index) for rpc, row in POLICY.items() if rpc in RPCS for role, grant in
                row.grants_by_role.items() for index in range(len(breaches(rpc, grant)))]


# -- calling ----------------------------------------------------------------------------------------------------

def address_of(stack: Any, service: str, served: str) -> str:  # noqa: ANN401
    if service in ("ClearingHouseService", "AuditService"):
        return stack.clearing_address
    if service == "HospitalService":
        return f"127.0.0.1:{stack.his.port}"
    return stack.address(served)


async def call(stack: Any, rpc: str, caller: Identity, request: Message, served: str = SERVED) -> grpc.StatusCode:  # noqa: ANN401
    """The call's status code (OK, or the refusal's)."""
    service, method = rpc.split(".")
    stub = stack.stub_as(caller, STUBS[service], address_of(stack, service, served))
    try:
        if RPCS[rpc].client_streaming:
            # A batch stream is admitted before it reads anything: an empty batch is sent as no batch at all. (Had
            # the client a batch to write to a stream the server refuses at once, grpc's client could report the
            # failed write, INTERNAL, instead of the server's PERMISSION_DENIED: a race of the client library.)
            batches = [request] if request.ByteSize() else []
            async for _ in getattr(stub, method)(iter(batches), timeout=TIMEOUT_S):
                pass
        elif RPCS[rpc].server_streaming:
            async for _ in getattr(stub, method)(request, timeout=TIMEOUT_S):
                pass
        else:
            await getattr(stub, method)(request, timeout=TIMEOUT_S)
    except grpc.aio.AioRpcError as error:
        call.last_error = error  # type: ignore[attr-defined]
        return error.code()
    return grpc.StatusCode.OK


def denied_rule(error: grpc.aio.AioRpcError) -> str:
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED, error
    status = rpc_status.from_call(error)
    assert status is not None and len(status.details) == 1, error
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info), status
    assert info.reason == "NOT_ALLOWED", info
    return info.metadata["rule"]


async def assert_denied(kit: Any, rpc: str, caller: Identity, request: Message, rule: str,  # noqa: ANN401
                        served: str = SERVED) -> None:
    databases = DATABASES[rpc.split(".")[0]] if served == SERVED else (f"treating_{served}", f"insured_{served}")
    before = await kit.counts(*databases)
    code = await call(kit.stack, rpc, caller, request, served)
    assert code is grpc.StatusCode.PERMISSION_DENIED, f"{caller.path} {rpc}: {code.name}"
    assert denied_rule(call.last_error) == rule  # type: ignore[attr-defined]
    assert await kit.counts(*databases) == before, "nothing written"


# -- the table's cells --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("rpc", "role"), ROLE_CELLS, ids=[f"{rpc}-{role}" for rpc, role in ROLE_CELLS])
async def test_each_role_is_allowed_or_denied_as_the_table_says(kit, rpc, role):
    caller = CALLERS[role]
    grant = POLICY[rpc].grants_by_role.get(role)
    if grant is None:
        only = ", ".join(sorted(POLICY[rpc].grants_by_role))
        await assert_denied(kit, rpc, caller, request_class(rpc)(), f"{rpc}: only {only}")
        return
    code = await call(kit.stack, rpc, caller, meeting(rpc, caller))
    assert code not in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED), \
        f"{caller.path} may call {rpc} by the table, the party said {code.name}: {call.last_error.details()}"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("rpc", "role", "index"), BREACH_CELLS,
                         ids=[f"{rpc}-{role}-{index}" for rpc, role, index in BREACH_CELLS])
async def test_each_request_rule_broken_is_denied_naming_it(kit, rpc, role, index):
    rule, caller, request, served = breaches(rpc, POLICY[rpc].grants_by_role[role])[index]
    await assert_denied(kit, rpc, caller, request, f"{rpc}: {rule}", served)


def test_the_cells_cover_every_role_of_every_rpc():
    """The numbers the closing note quotes, and a floor so that a broken discovery cannot pass as empty."""
    allowed = sum(1 for rpc, role in ROLE_CELLS if role in POLICY[rpc].grants_by_role)
    denied = len(ROLE_CELLS) - allowed
    print(f"authorisation cells: {allowed} allowed, {denied} denied by role, {len(BREACH_CELLS)} request-rule "
          f"breaches, {len(RESOURCE_CASES)} resource-rule cases")
    assert len(RPCS) >= 40 and allowed >= 50 and denied >= 130 and len(BREACH_CELLS) >= 25


# -- resource rules, with real resources ---------------------------------------------------------------------

async def settled_stay(kit: Any, insured_region: str, hospital_code: str = H_OWN) -> tuple[str, str]:  # noqa: ANN401
    """A stay of `hospital_code` discharged and settled: (encounter id, settlement id)."""
    member = await kit.new_member(insured_region)
    code = kit.plain_codes(hospital_code[1:7])[0]
    lines = [kit.bill_line("1", code, "2", 5_000, "2026-03-02")]
    encounter = await kit.open_encounter(hospital_code, member, lines, "2026-03-01")
    settled = await kit.treating(hospital_code[1:7]).Settle(ta.SettleRequest(
        request_id=str(uuid.uuid4()), encounter_id=encounter, discharged_on="2026-03-03"))
    return encounter, settled.settlement.settlement_id


async def open_stay(kit: Any) -> str:  # noqa: ANN401
    member = await kit.new_member(OTHER)
    code = kit.plain_codes(SERVED)[0]
    return await kit.open_encounter(H_OWN, member, [kit.bill_line("1", code, "1", 1_000, "2026-03-02")], "2026-03-01")


def rid() -> str:
    return str(uuid.uuid4())


Case = Callable[[Any], Any]


async def upload_others_encounter(kit):  # noqa: ANN001, ANN201
    encounter = await open_stay(kit)
    line = kit.bill_line("9", kit.plain_codes(SERVED)[1], "1", 100, "2026-03-02")
    return ("TreatingAgencyService.UploadCharges", hospital(H_OTHER),
            ta.UploadChargesRequest(request_id=rid(), encounter_id=encounter, lines=[line]), "own_encounter")


async def void_others_encounter(kit):  # noqa: ANN001, ANN201
    encounter = await open_stay(kit)
    return ("TreatingAgencyService.VoidCharges", hospital(H_OTHER),
            ta.VoidChargesRequest(request_id=rid(), encounter_id=encounter, line_ids=["1"]), "own_encounter")


async def presettle_others_encounter(kit):  # noqa: ANN001, ANN201
    return ("TreatingAgencyService.PreSettle", hospital(H_OTHER),
            ta.PreSettleRequest(encounter_id=await open_stay(kit), discharged_on="2026-03-03"), "own_encounter")


async def audit_others_encounter(kit):  # noqa: ANN001, ANN201
    return ("TreatingAgencyService.AuditBill", hospital(H_OTHER),
            ta.AuditBillRequest(encounter_id=await open_stay(kit), discharged_on="2026-03-03"), "own_encounter")


async def settle_others_encounter(kit):  # noqa: ANN001, ANN201
    return ("TreatingAgencyService.Settle", hospital(H_OTHER),
            ta.SettleRequest(request_id=rid(), encounter_id=await open_stay(kit), discharged_on="2026-03-03"),
            "own_encounter")


async def cancel_others_settlement(kit):  # noqa: ANN001, ANN201
    _, settlement = await settled_stay(kit, OTHER)
    return ("TreatingAgencyService.Cancel", hospital(H_OTHER),
            ta.CancelRequest(request_id=rid(), settlement_id=settlement, reason="test"), "own_settlement")


async def read_others_settlement(kit):  # noqa: ANN001, ANN201
    _, settlement = await settled_stay(kit, OTHER)
    return ("TreatingAgencyService.GetSettlement", hospital(H_OTHER),
            ta.GetSettlementRequest(settlement_id=settlement), "own_settlement")


async def reverse_others_settlement(kit):  # noqa: ANN001, ANN201
    member = await kit.new_member(OTHER)
    lines = [kit.bill_line("1", kit.plain_codes(SERVED)[0], "1", 1_000, "2026-03-02")]
    encounter = await kit.open_encounter(H_OWN, member, lines, "2026-03-01")
    settle_id = rid()
    await kit.treating(SERVED).Settle(ta.SettleRequest(request_id=settle_id, encounter_id=encounter,
                                                       discharged_on="2026-03-03"))
    return ("TreatingAgencyService.Reverse", hospital(H_OTHER),
            ta.ReverseRequest(request_id=rid(), original_request_id=settle_id, reason="test"), "own_settlement")


async def cancel_another_regions_claim(kit):  # noqa: ANN001, ANN201
    _, settlement = await settled_stay(kit, THIRD)
    return ("ClearingHouseService.CancelClaim", agency(OTHER),
            ch.CancelClaimRequest(request_id=rid(), settlement_id=settlement, reason="test"), "claim_of_caller")


async def reverse_another_regions_claim(kit):  # noqa: ANN001, ANN201
    _, settlement = await settled_stay(kit, THIRD)
    return ("ClearingHouseService.ReverseClaim", agency(OTHER),
            ch.ReverseClaimRequest(request_id=rid(), settlement_id=settlement, treating_region=OTHER,
                                   insured_region=THIRD), "claim_of_caller")


async def read_a_claim_between_others(kit):  # noqa: ANN001, ANN201
    _, settlement = await settled_stay(kit, THIRD)
    return ("ClearingHouseService.GetClaim", agency(OTHER), ch.GetClaimRequest(settlement_id=settlement),
            "claim_involves_caller")


async def clearing_house_undoes_a_local_stay(kit):  # noqa: ANN001, ANN201
    _, settlement = await settled_stay(kit, SERVED)
    return ("InsuredAgencyService.CancelAdjudication", clearinghouse(),
            ia.CancelAdjudicationRequest(request_id=rid(), settlement_id=settlement), "foreign_settlement")


async def clearing_house_reverses_a_local_stay(kit):  # noqa: ANN001, ANN201
    _, settlement = await settled_stay(kit, SERVED)
    return ("InsuredAgencyService.ReverseAdjudication", clearinghouse(),
            ia.ReverseAdjudicationRequest(request_id=rid(), settlement_id=settlement), "foreign_settlement")


async def agency_undoes_a_cross_region_stay(kit):  # noqa: ANN001, ANN201
    """A stay treated in OTHER of a member insured in SERVED: SERVED's own agency may not cancel it there."""
    _, settlement = await settled_stay(kit, SERVED, "H43010000001")
    return ("InsuredAgencyService.CancelAdjudication", agency(SERVED),
            ia.CancelAdjudicationRequest(request_id=rid(), settlement_id=settlement), "local_settlement")


async def agency_reverses_a_cross_region_stay(kit):  # noqa: ANN001, ANN201
    _, settlement = await settled_stay(kit, SERVED, "H43010000001")
    return ("InsuredAgencyService.ReverseAdjudication", agency(SERVED),
            ia.ReverseAdjudicationRequest(request_id=rid(), settlement_id=settlement), "local_settlement")


async def raised_dispute(kit) -> str:  # noqa: ANN001
    """A dispute (raised by an operator for THIRD) on a stay of THIRD's member at SERVED's hospital."""
    member = await kit.new_member(THIRD)
    lines = [kit.bill_line("1", kit.plain_codes(SERVED)[3], "10", 500_000, "2026-03-02")]
    settlement = await kit.discharge(H_OWN, member, lines, "2026-03-01", "2026-03-03")
    key = rid()
    await kit.clearing().RaiseDispute(ch.RaiseDisputeRequest(
        request_id=key, settlement_id=settlement.settlement_id, amount_fen=100, reason="test",
        insured_region=THIRD))
    return key


async def answer_a_dispute_of_another_region(kit):  # noqa: ANN001, ANN201
    key = await raised_dispute(kit)
    return ("ClearingHouseService.AnswerDispute", agency(OTHER),
            ch.AnswerDisputeRequest(request_id=rid(), dispute_id=key, answer=ch.DISPUTE_ANSWER_ACCEPT),
            "dispute_treated_by_caller")


async def read_a_dispute_between_others(kit):  # noqa: ANN001, ANN201
    key = await raised_dispute(kit)
    return ("ClearingHouseService.GetDispute", agency(OTHER), ch.GetDisputeRequest(dispute_id=key),
            "dispute_involves_caller")


RESOURCE_CASES: list[Case] = [
    upload_others_encounter, void_others_encounter, presettle_others_encounter, audit_others_encounter,
    settle_others_encounter,
    cancel_others_settlement, read_others_settlement, reverse_others_settlement, cancel_another_regions_claim,
    reverse_another_regions_claim, read_a_claim_between_others, clearing_house_undoes_a_local_stay,
    clearing_house_reverses_a_local_stay, agency_undoes_a_cross_region_stay, agency_reverses_a_cross_region_stay,
    answer_a_dispute_of_another_region, read_a_dispute_between_others,
]


@pytest.mark.parametrize("case", RESOURCE_CASES, ids=[case.__name__ for case in RESOURCE_CASES])
async def test_a_resource_of_another_party_is_denied_naming_the_rule(kit, case):
    rpc, caller, request, rule = await case(kit)
    await assert_denied(kit, rpc, caller, request, f"{rpc}: {rule}")


async def test_the_owner_of_each_resource_is_allowed(kit):
    """The same resources, their own parties: the hospital that admitted and settled, the claim's own agencies."""
    encounter, settlement = await settled_stay(kit, THIRD)
    stack = kit.stack
    got = await stack.stub_as(hospital(H_OWN), treating_agency_pb2_grpc.TreatingAgencyServiceStub,
                              stack.address(SERVED)).GetSettlement(ta.GetSettlementRequest(settlement_id=settlement))
    assert got.settlement.settlement_id == settlement
    for region in (SERVED, THIRD):  # the claim's treating and insured regions
        claim = await stack.stub_as(agency(region), clearing_house_pb2_grpc.ClearingHouseServiceStub,
                                    stack.clearing_address).GetClaim(ch.GetClaimRequest(settlement_id=settlement))
        assert claim.settlement.settlement_id == settlement
    cancelled = await stack.stub_as(hospital(H_OWN), treating_agency_pb2_grpc.TreatingAgencyServiceStub,
                                    stack.address(SERVED)).Cancel(ta.CancelRequest(
                                        request_id=rid(), settlement_id=settlement, reason="the owner cancels"))
    assert cancelled.settlement.settlement_id == settlement
    assert encounter
