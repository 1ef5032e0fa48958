"""The authorisation table (services/security/policy.py), cell by cell, without a network: every RPC found in
the descriptors has a row; for every RPC and every role the decision is the table's, and each request rule
refuses the call that breaks it, naming the rule. The same cells over real mTLS connections:
tests/integration/test_authorisation.py."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import clearinghouse.v1
import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

from clearing.errors import NotAllowed
from services.security import identity
from services.security.policy import (
    POLICY, REQUEST_RULES, RESOURCE_RULES, Served, authorize, require, table_markdown, with_table,
)


def discovered() -> dict[str, object]:
    modules = [importlib.import_module(f"clearinghouse.v1.{name}")
               for _, name, _ in pkgutil.iter_modules(clearinghouse.v1.__path__) if name.endswith("_pb2")]
    return {f"{service.name}.{method.name}": method for module in modules
            for service in module.DESCRIPTOR.services_by_name.values() for method in service.methods}


RPCS = discovered()
CALLERS = {
    "hospital": identity.hospital("H44010000001"), "agency": identity.agency("440100"),
    "clearinghouse": identity.clearinghouse(), "operator": identity.operator("admin"),
    "simulator": identity.his_simulator(),
}


def test_every_rpc_has_a_row_and_every_row_an_rpc():
    assert sorted(set(RPCS) - set(POLICY)) == [], "add a row to services/security/policy.py POLICY"
    assert sorted(set(POLICY) - set(RPCS)) == [], "a row names an RPC that does not exist"


def test_every_rule_a_row_names_exists():
    for row in POLICY.values():
        for grant in row.grants:
            assert set(grant.request_rules) <= set(REQUEST_RULES)
            assert set(grant.resource_rules) <= set(RESOURCE_RULES)


# Only the cells without a grant: a granted cell's rules are tested below.
UNGRANTED = [(rpc, role) for rpc in sorted(RPCS) for role in sorted(CALLERS) if role not in POLICY[rpc].grants_by_role]


@pytest.mark.parametrize(("rpc", "role"), UNGRANTED)
def test_a_role_without_a_grant_is_refused_naming_the_rpc(rpc, role):
    request = RPCS[rpc].input_type._concrete_class()  # noqa: SLF001 - the generated message class
    with pytest.raises(NotAllowed) as caught:
        authorize(rpc, CALLERS[role], request, Served("440100"))
    assert caught.value.rule.startswith(f"{rpc}: only ")


def claim(treating: str, insured: str = "430100") -> types_pb2.Claim:
    return types_pb2.Claim(treating_region=treating, insured_region=insured)


# (rpc, caller, request, the region served) → None when allowed, else the rule that refuses it.
CASES = [
    ("TreatingAgencyService.Admit", identity.hospital("H44010000001"), ta.AdmitRequest(hospital_code="H44010000001"),
     "440100", None),
    ("TreatingAgencyService.Admit", identity.hospital("H44010000001"), ta.AdmitRequest(hospital_code="H44010000002"),
     "440100", "names_itself"),
    ("TreatingAgencyService.Admit", identity.hospital("H43010000001"), ta.AdmitRequest(hospital_code="H43010000001"),
     "440100", "in_served_region"),
    ("TreatingAgencyService.Settle", identity.hospital("H43010000001"), ta.SettleRequest(), "440100",
     "in_served_region"),
    ("TreatingAgencyService.GetDailyTotals", identity.hospital("H44010000001"),
     ta.GetDailyTotalsRequest(hospital_code="H44010000001"), "440100", None),
    ("TreatingAgencyService.GetDailyTotals", identity.hospital("H44010000001"), ta.GetDailyTotalsRequest(),
     "440100", "filters_on_itself"),
    ("TreatingAgencyService.StreamDailyDetail", identity.hospital("H44010000001"),
     ta.StreamDailyDetailRequest(hospital_code="H44010000002"), "440100", "filters_on_itself"),
    ("InsuredAgencyService.Adjudicate", identity.clearinghouse(), ia.AdjudicateRequest(claim=claim("440100")),
     "430100", None),
    ("InsuredAgencyService.Adjudicate", identity.clearinghouse(), ia.AdjudicateRequest(claim=claim("430100")),
     "430100", "claim_from_another_region"),
    ("InsuredAgencyService.Adjudicate", identity.agency("430100"),
     ia.AdjudicateRequest(claim=claim("430100", "430100")), "430100", None),
    ("InsuredAgencyService.Adjudicate", identity.agency("440100"), ia.AdjudicateRequest(claim=claim("440100")),
     "430100", "local_claim_of_own_agency"),
    ("InsuredAgencyService.QuoteAdjudication", identity.agency("430100"),
     ia.QuoteAdjudicationRequest(claim=claim("440100")), "430100", "local_claim_of_own_agency"),
    ("InsuredAgencyService.CancelAdjudication", identity.agency("440100"), ia.CancelAdjudicationRequest(),
     "430100", "own_region_agency"),
    ("InsuredAgencyService.GetAdjudicationDailyTotals", identity.agency("440100"),
     ia.GetAdjudicationDailyTotalsRequest(), "430100", "own_region_agency"),
    ("ClearingHouseService.SettleClaim", identity.agency("440100"), ch.SettleClaimRequest(claim=claim("440100")),
     None, None),
    ("ClearingHouseService.SettleClaim", identity.agency("440100"), ch.SettleClaimRequest(claim=claim("460100")),
     None, "claim_treated_by_caller"),
    ("ClearingHouseService.QuoteClaim", identity.agency("440100"), ch.QuoteClaimRequest(claim=claim("460100")),
     None, "claim_treated_by_caller"),
    ("ClearingHouseService.ReverseClaim", identity.agency("440100"),
     ch.ReverseClaimRequest(treating_region="460100"), None, "treating_region_is_caller"),
    ("ClearingHouseService.GetClaimDailyTotals", identity.agency("440100"), ch.GetClaimDailyTotalsRequest(),
     None, "treating_region_is_caller"),
    ("ClearingHouseService.PublishCatalogue", identity.agency("440100"),
     ch.PublishCatalogueRequest(region="440100"), None, None),
    ("ClearingHouseService.PublishCatalogue", identity.agency("440100"),
     ch.PublishCatalogueRequest(region="430100"), None, "region_is_caller"),
    ("ClearingHouseService.ListPrepayments", identity.agency("440100"), ch.ListPrepaymentsRequest(), None,
     "insured_region_is_caller"),
    ("ClearingHouseService.StreamStatement", identity.agency("440100"),
     ch.StreamStatementRequest(region="430100"), None, "region_is_caller"),
    ("ClearingHouseService.GetYearSummary", identity.agency("440100"), ch.GetYearSummaryRequest(region="440100"),
     None, None),
    ("ClearingHouseService.CloseMonth", identity.operator("admin"), ch.CloseMonthRequest(), None, None),
    ("ClearingHouseService.RaiseDispute", identity.agency("460100"), ch.RaiseDisputeRequest(insured_region="460100"),
     None, None),
    ("ClearingHouseService.RaiseDispute", identity.agency("440100"), ch.RaiseDisputeRequest(insured_region="460100"),
     None, "disputes_for_itself"),
    ("ClearingHouseService.RaiseDispute", identity.agency("440100"), ch.RaiseDisputeRequest(), None,
     "disputes_for_itself"),
    ("ClearingHouseService.ListDisputes", identity.agency("440100"), ch.ListDisputesRequest(), None,
     "region_is_caller"),
]


@pytest.mark.parametrize(("rpc", "caller", "request_", "served", "broken"), CASES,
                         ids=[f"{case[0].split('.')[1]}-{case[1].path}-{case[4] or 'allowed'}" for case in CASES])
def test_request_rules_allow_and_refuse_naming_the_rule(rpc, caller, request_, served, broken):
    if broken is None:
        assert authorize(rpc, caller, request_, Served(served)).caller == caller
        return
    with pytest.raises(NotAllowed) as caught:
        authorize(rpc, caller, request_, Served(served))
    assert caught.value.rule == f"{rpc}: {broken}"
    assert caught.value.identity == caller.path


def test_every_request_rule_is_exercised_by_a_refusal():
    assert {case[4] for case in CASES if case[4]} == set(REQUEST_RULES)


def test_a_resource_rule_refuses_only_the_grant_it_belongs_to():
    hospital = authorize("TreatingAgencyService.GetSettlement", identity.hospital("H44010000001"),
                         ta.GetSettlementRequest(), Served("440100"))
    with pytest.raises(NotAllowed) as caught:
        require(hospital, "own_settlement", met=False, what="the settlement is another hospital's")
    assert caught.value.rule == "TreatingAgencyService.GetSettlement: own_settlement"
    require(hospital, "own_settlement", met=True, what="")
    operator = authorize("TreatingAgencyService.GetSettlement", identity.operator("admin"),
                         ta.GetSettlementRequest(), Served("440100"))
    require(operator, "own_settlement", met=False, what="")  # an operator reads any settlement
    require(None, "own_settlement", met=False, what="")  # an insecure server decides nothing


def test_the_table_renders_every_row():
    text = table_markdown()
    assert all(f"`{rpc}`" in text for rpc in POLICY)


def test_the_table_in_the_security_docs_is_the_codes():
    """docs/security.md carries the table generated from POLICY: `make docs` after a change to the table."""
    document = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    assert with_table(document) == document, "docs/security.md's authorisation table is stale: run `make docs`"
