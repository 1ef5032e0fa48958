"""Who may call what: the authorisation table, one row per RPC (SPEC §9; docs/security.md is generated from it).

A row names the roles allowed to call the RPC and, for each role that needs one, an ownership rule. A rule is
either a *request* rule, checked here from the request's fields and the party the server is (the region a
treating or insured agency serves), or a *resource* rule, which needs the resource the request names (the
encounter a hospital admitted, the claim a treating agency sent): the servicer checks it with `require` once it
has loaded the resource. The caller's identity comes from its certificate (services/security/tls.py), never from
a request field: a request field naming a party is *checked against* the caller.

Every RPC of every service in proto/clearinghouse/v1 must have a row (tests/unit/test_policy_table.py finds them
from the descriptors), so a new RPC without one fails the build.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clearing.bill import check_hospital_code, check_region
from clearing.errors import NotAllowed
from services.security.identity import AGENCY, CLEARINGHOUSE, HOSPITAL, OPERATOR, Identity

Check = Callable[[Identity, Any, "Served"], str | None]  # None: allowed; else why not


@dataclass(frozen=True)
class Served:
    """The party the server is: the region of a treating or insured agency (None for the clearing house and the
    HIS simulator)."""

    region: str | None = None


@dataclass(frozen=True)
class Grant:
    """One role allowed to call an RPC, with the rules its calls must also meet."""

    role: str
    request_rules: tuple[str, ...] = ()  # names in REQUEST_RULES, checked here
    resource_rules: tuple[str, ...] = ()  # names in RESOURCE_RULES, checked by the servicer (`require`)


@dataclass(frozen=True)
class Row:
    grants: tuple[Grant, ...]
    grants_by_role: dict[str, Grant] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "grants_by_role", {grant.role: grant for grant in self.grants})
        assert len(self.grants_by_role) == len(self.grants), "one grant per role"


def region_of(caller: Identity) -> str | None:
    """The region a caller belongs to: an agency's, or a hospital's (the 6 digits after H)."""
    if caller.role == AGENCY:
        return caller.subject
    if caller.role == HOSPITAL:
        return caller.subject[1:7]
    return None


def _claim(request: Any) -> Any:  # noqa: ANN401 - a types_pb2.Claim
    return request.claim


# -- request rules: (caller, request, served) → None when met, else the reason ---------------------------------

def _in_served_region(caller: Identity, request: Any, served: Served) -> str | None:  # noqa: ANN401
    if region_of(caller) != served.region:
        return f"calls only its own region's agency ({region_of(caller)}), not {served.region}'s"
    return None


# A request rule compares a field with the caller only once the field is well formed: a malformed one is refused
# INVALID_ARGUMENT naming it, with the validator's own words, as it would be without the rule.

def _names_itself_as_hospital(caller: Identity, request: Any, served: Served) -> str | None:  # noqa: ANN401
    if check_hospital_code(request.hospital_code, "hospital_code") != caller.subject:
        return f"acts only as itself: hospital_code names {request.hospital_code or 'no hospital'}"
    return None


def _filters_on_itself(caller: Identity, request: Any, served: Served) -> str | None:  # noqa: ANN401
    if not request.hospital_code:
        return "reads only its own settlements: set hospital_code to its own code"
    if check_hospital_code(request.hospital_code, "hospital_code") != caller.subject:
        return f"reads only its own settlements: hospital_code names {request.hospital_code}"
    return None


def _claim_treated_by_caller(caller: Identity, request: Any, served: Served) -> str | None:  # noqa: ANN401
    if check_region(_claim(request).treating_region, "claim.treating_region") != caller.subject:
        return f"sends only claims of its own region: claim.treating_region is {_claim(request).treating_region}"
    return None


def _field_is_caller(field: str, verb: str = "acts only for") -> Check:
    """The rule "`field` names the caller's own region": empty (all regions) is not the caller's own either."""

    def check(caller: Identity, request: Any, served: Served) -> str | None:  # noqa: ANN401
        value = getattr(request, field)
        if not value:
            return f"acts only for its own region: set {field} to {caller.subject}"
        if check_region(value, field) != caller.subject:
            return f"{verb} its own region: {field} is {value}"
        return None

    return check


_treating_region_is_caller = _field_is_caller("treating_region")
_region_is_caller = _field_is_caller("region")
_insured_region_is_caller = _field_is_caller("insured_region", "reads only")
_disputes_for_itself = _field_is_caller("insured_region", "disputes only for")


def _claim_from_another_region(caller: Identity, request: Any, served: Served) -> str | None:  # noqa: ANN401
    treating = _claim(request).treating_region
    if treating == served.region:
        return f"clears only other regions' claims: claim.treating_region is this agency's own ({treating})"
    return None


def _local_claim_of_own_agency(caller: Identity, request: Any, served: Served) -> str | None:  # noqa: ANN401
    if caller.subject != served.region:
        return f"a treating agency adjudicates only at its own region's insured agency, not {served.region}'s"
    if _claim(request).treating_region != served.region:
        return "a treating agency sends its own insured agency only its same-region stays"
    return None


def _own_region_agency(caller: Identity, request: Any, served: Served) -> str | None:  # noqa: ANN401
    if caller.subject != served.region:
        return f"calls only its own region's insured agency, not {served.region}'s"
    return None


REQUEST_RULES: dict[str, tuple[Check, str]] = {
    "in_served_region": (_in_served_region, "the caller belongs to the region this agency serves"),
    "names_itself": (_names_itself_as_hospital, "`hospital_code` is the caller's own code"),
    "filters_on_itself": (_filters_on_itself, "`hospital_code` is set to the caller's own code"),
    "claim_treated_by_caller": (_claim_treated_by_caller, "`claim.treating_region` is the caller's region"),
    "treating_region_is_caller": (_treating_region_is_caller, "`treating_region` is the caller's region"),
    "region_is_caller": (_region_is_caller, "`region` is the caller's region"),
    "insured_region_is_caller": (_insured_region_is_caller, "`insured_region` is the caller's region"),
    "claim_from_another_region": (_claim_from_another_region,
                                  "`claim.treating_region` is a region other than this agency's"),
    "local_claim_of_own_agency": (_local_claim_of_own_agency,
                                  "the caller is this region's own agency and the claim a same-region stay"),
    "own_region_agency": (_own_region_agency, "the caller is this region's own agency"),
    "disputes_for_itself": (_disputes_for_itself, "`insured_region` is the caller's region (and the disputed "
                                                  "settlement's insured region, checked by the servicer)"),
}

# -- resource rules: checked by the servicer once the resource is loaded (`require`) ---------------------------

RESOURCE_RULES: dict[str, str] = {
    "own_encounter": "the encounter was admitted by the calling hospital",
    "own_settlement": "the settlement is of an encounter the calling hospital admitted",
    "claim_of_caller": "the claim's treating region is the calling agency's",
    "claim_involves_caller": "the claim's treating or insured region is the calling agency's",
    "foreign_settlement": "the settlement's treating region is not this agency's (the clearing house clears "
                          "only cross-region stays)",
    "local_settlement": "the settlement's treating region is this agency's own (a same-region stay)",
    "dispute_treated_by_caller": "the dispute's treating region (its hospital's) is the calling agency's",
    "dispute_involves_caller": "the dispute's insured or treating region is the calling agency's",
}

# -- the table ----------------------------------------------------------------------------------------------

HOSPITAL_AT_HOME = Grant(HOSPITAL, ("in_served_region",))
OPERATOR_ANY = Grant(OPERATOR)


def _hospital_with(*resource: str) -> Grant:
    return Grant(HOSPITAL, ("in_served_region",), resource)


POLICY: dict[str, Row] = {
    # TreatingAgencyService: the hospitals of the region (their HIS), and operators for agency-wide work.
    "TreatingAgencyService.Admit": Row((Grant(HOSPITAL, ("in_served_region", "names_itself")),)),
    "TreatingAgencyService.RegisterVisit": Row((Grant(HOSPITAL, ("in_served_region", "names_itself")),)),
    "TreatingAgencyService.UploadCharges": Row((_hospital_with("own_encounter"),)),
    "TreatingAgencyService.VoidCharges": Row((_hospital_with("own_encounter"),)),
    "TreatingAgencyService.PreSettle": Row((_hospital_with("own_encounter"),)),
    "TreatingAgencyService.AuditBill": Row((_hospital_with("own_encounter"), OPERATOR_ANY)),
    "TreatingAgencyService.Settle": Row((_hospital_with("own_encounter"),)),
    "TreatingAgencyService.Cancel": Row((_hospital_with("own_settlement"),)),
    "TreatingAgencyService.Reverse": Row((_hospital_with("own_settlement"),)),
    "TreatingAgencyService.GetSettlement": Row((_hospital_with("own_settlement"), OPERATOR_ANY)),
    "TreatingAgencyService.ImportCatalogue": Row((OPERATOR_ANY,)),
    # The catalogue in force is what every bill of the region is classified with: its hospitals look codes up too.
    "TreatingAgencyService.SearchCatalogue": Row((HOSPITAL_AT_HOME, OPERATOR_ANY)),
    "TreatingAgencyService.ListPayouts": Row((OPERATOR_ANY,)),
    "TreatingAgencyService.ClosePayoutMonth": Row((OPERATOR_ANY,)),
    # The stays' facts feed the DRG weights and hospital payments: operators only (hospitals see their own bills).
    "TreatingAgencyService.ListSettledStays": Row((OPERATOR_ANY,)),
    # Paying the hospitals (月度预拨, 年终清算) moves the agency's money: operators only.
    "TreatingAgencyService.CloseHospitalPaymentMonth": Row((OPERATOR_ANY,)),
    "TreatingAgencyService.CloseHospitalPaymentYear": Row((OPERATOR_ANY,)),
    "TreatingAgencyService.GetDailyTotals": Row((Grant(HOSPITAL, ("in_served_region", "filters_on_itself")),
                                                 OPERATOR_ANY)),
    "TreatingAgencyService.StreamDailyDetail": Row((Grant(HOSPITAL, ("in_served_region", "filters_on_itself")),
                                                    OPERATOR_ANY)),
    "TreatingAgencyService.Reconcile": Row((OPERATOR_ANY,)),
    # InsuredAgencyService: the clearing house for cross-region stays, the region's own treating agency for its
    # same-region stays, operators for members.
    "InsuredAgencyService.RegisterMember": Row((OPERATOR_ANY,)),
    "InsuredAgencyService.RecordFiling": Row((OPERATOR_ANY,)),
    "InsuredAgencyService.GetMember": Row((OPERATOR_ANY,)),
    # Member numbers, with the ID number masked and no name (the proto says why that much): operators only.
    "InsuredAgencyService.ListMembers": Row((OPERATOR_ANY,)),
    # Any treating agency checks, once per admission, that the patient it admits is the member it names.
    "InsuredAgencyService.VerifyMember": Row((Grant(AGENCY),)),
    "InsuredAgencyService.QuoteAdjudication": Row((Grant(CLEARINGHOUSE, ("claim_from_another_region",)),
                                                   Grant(AGENCY, ("local_claim_of_own_agency",)))),
    "InsuredAgencyService.Adjudicate": Row((Grant(CLEARINGHOUSE, ("claim_from_another_region",)),
                                            Grant(AGENCY, ("local_claim_of_own_agency",)))),
    # The clearing house's batch stream: each claim of a batch is authorised as its own Adjudicate (the row above).
    "InsuredAgencyService.AdjudicateBatch": Row((Grant(CLEARINGHOUSE),)),
    "InsuredAgencyService.CancelAdjudication": Row((Grant(CLEARINGHOUSE, (), ("foreign_settlement",)),
                                                    Grant(AGENCY, ("own_region_agency",), ("local_settlement",)))),
    "InsuredAgencyService.ReverseAdjudication": Row((Grant(CLEARINGHOUSE, (), ("foreign_settlement",)),
                                                     Grant(AGENCY, ("own_region_agency",), ("local_settlement",)))),
    "InsuredAgencyService.GetAdjudicationDailyTotals": Row((Grant(CLEARINGHOUSE), Grant(AGENCY, ("own_region_agency",)),
                                                            OPERATOR_ANY)),
    "InsuredAgencyService.StreamAdjudicationDailyDetail": Row((Grant(CLEARINGHOUSE),
                                                               Grant(AGENCY, ("own_region_agency",)), OPERATOR_ANY)),
    # Fund supervision's policy what-if (SPEC §12.5) reads every settlement with its member: operators only.
    "InsuredAgencyService.ExportAdjudications": Row((OPERATOR_ANY,)),
    # Outpatient special diseases (SPEC §13): the region's operators recognise and cancel (2503/2504); any treating
    # agency may look a member's recognitions up (5301) for its hospital before a visit, as it verifies a member.
    "InsuredAgencyService.RecordSpecialDisease": Row((OPERATOR_ANY,)),
    "InsuredAgencyService.CancelSpecialDisease": Row((OPERATOR_ANY,)),
    "InsuredAgencyService.ListSpecialDiseases": Row((Grant(AGENCY), OPERATOR_ANY)),
    # ClearingHouseService: treating agencies for their own claims, every agency for its own figures, operators.
    "ClearingHouseService.QuoteClaim": Row((Grant(AGENCY, ("claim_treated_by_caller",)),)),
    "ClearingHouseService.SettleClaim": Row((Grant(AGENCY, ("claim_treated_by_caller",)),)),
    # A treating agency's batch stream: each claim of a batch is authorised as its own SettleClaim (the row above).
    "ClearingHouseService.SettleClaimBatch": Row((Grant(AGENCY),)),
    "ClearingHouseService.CancelClaim": Row((Grant(AGENCY, (), ("claim_of_caller",)),)),
    "ClearingHouseService.ReverseClaim": Row((Grant(AGENCY, ("treating_region_is_caller",), ("claim_of_caller",)),)),
    "ClearingHouseService.GetClaimDailyTotals": Row((Grant(AGENCY, ("treating_region_is_caller",)), OPERATOR_ANY)),
    "ClearingHouseService.StreamClaimDailyDetail": Row((Grant(AGENCY, ("treating_region_is_caller",)),
                                                        OPERATOR_ANY)),
    "ClearingHouseService.ReconcileInsuredAgencies": Row((OPERATOR_ANY,)),
    "ClearingHouseService.GetClaim": Row((Grant(AGENCY, (), ("claim_involves_caller",)), OPERATOR_ANY)),
    "ClearingHouseService.Translate": Row((Grant(AGENCY), Grant(HOSPITAL), OPERATOR_ANY)),
    "ClearingHouseService.PublishCatalogue": Row((Grant(AGENCY, ("region_is_caller",)),)),
    "ClearingHouseService.CloseMonth": Row((OPERATOR_ANY,)),
    "ClearingHouseService.GetMonthClosing": Row((Grant(AGENCY), OPERATOR_ANY)),
    "ClearingHouseService.ConfirmTransfer": Row((OPERATOR_ANY,)),
    "ClearingHouseService.SetPrepaymentTerms": Row((OPERATOR_ANY,)),
    "ClearingHouseService.TopUpPrepayment": Row((OPERATOR_ANY,)),
    "ClearingHouseService.ListPrepayments": Row((Grant(AGENCY, ("insured_region_is_caller",)), OPERATOR_ANY)),
    "ClearingHouseService.StreamStatement": Row((Grant(AGENCY, ("region_is_caller",)), OPERATOR_ANY)),
    "ClearingHouseService.GetYearSummary": Row((Grant(AGENCY, ("region_is_caller",)), OPERATOR_ANY)),
    # Disputes (SPEC §12.3): the insured agency raises for its members, the treating agency answers for its
    # hospitals, an operator decides; an operator may also act for an agency (the step records who did it).
    "ClearingHouseService.RaiseDispute": Row((Grant(AGENCY, ("disputes_for_itself",)), OPERATOR_ANY)),
    "ClearingHouseService.AnswerDispute": Row((Grant(AGENCY, (), ("dispute_treated_by_caller",)), OPERATOR_ANY)),
    "ClearingHouseService.DecideDispute": Row((OPERATOR_ANY,)),
    "ClearingHouseService.GetDispute": Row((Grant(AGENCY, (), ("dispute_involves_caller",)), OPERATOR_ANY)),
    "ClearingHouseService.ListDisputes": Row((Grant(AGENCY, ("region_is_caller",)), OPERATOR_ANY)),
    # HospitalService: the HIS simulator, driven by operators.
    "HospitalService.RunDischarges": Row((OPERATOR_ANY,)),
    "HospitalService.RunVisits": Row((OPERATOR_ANY,)),
    "HospitalService.GetSummary": Row((OPERATOR_ANY,)),
    "HospitalService.ReconcileWithAgencies": Row((OPERATOR_ANY,)),
    # AuditService, on every server: the operator audit log is read by operators only.
    "AuditService.ListAuditEvents": Row((OPERATOR_ANY,)),
}


@dataclass(frozen=True)
class Decision:
    """An allowed call: the grant that allowed it (its resource rules are still the servicer's to check)."""

    rpc: str
    caller: Identity
    grant: Grant


def authorize(rpc: str, caller: Identity, request: Any, served: Served) -> Decision:  # noqa: ANN401
    """The grant under which `caller` may make this call, or `NotAllowed` naming the rule it breaks."""
    row = POLICY.get(rpc)
    assert row is not None, f"{rpc} has no row in the authorisation table"
    grant = row.grants_by_role.get(caller.role)
    if grant is None:
        roles = ", ".join(sorted(row.grants_by_role))
        raise NotAllowed(caller.path, f"call {rpc}", rule=f"{rpc}: only {roles}")
    for name in grant.request_rules:
        check, _ = REQUEST_RULES[name]
        reason = check(caller, request, served)
        if reason is not None:
            raise NotAllowed(caller.path, f"call {rpc}: {reason}", rule=f"{rpc}: {name}")
    return Decision(rpc, caller, grant)


def require(decision: Decision | None, rule: str, met: bool, what: str) -> None:
    """A resource rule of the decision's grant, checked by the servicer with the resource in hand: `met` says
    whether it holds. A call the grant does not subject to `rule` (another role), or an insecure server (no
    decision), passes."""
    assert rule in RESOURCE_RULES, f"unknown resource rule {rule}"
    if decision is None or rule not in decision.grant.resource_rules:
        return
    if not met:
        raise NotAllowed(decision.caller.path, f"call {decision.rpc}: {what}", rule=f"{decision.rpc}: {rule}")


def require_caller(decision: Decision | None, rule: str, owner: str, what: str) -> None:
    """`require` for a resource owned by `owner` (a hospital code or a region): the caller must be that party."""
    require(decision, rule, decision is not None and decision.caller.subject == owner, what)


DOCS_START = "<!-- authorisation table: generated by `make docs` from services/security/policy.py -->"
DOCS_END = "<!-- end of the authorisation table -->"


def with_table(document: str) -> str:
    """`document` (docs/security.md) with the text between its table markers replaced by the current table."""
    head, start, rest = document.partition(DOCS_START)
    _, end, tail = rest.partition(DOCS_END)
    if not start or not end:
        raise ValueError(f"the document has no `{DOCS_START}` … `{DOCS_END}` markers")
    return f"{head}{DOCS_START}\n{table_markdown()}{DOCS_END}{tail}"


def table_markdown() -> str:
    """The table as markdown, for docs/security.md (generated, so it cannot drift from the code)."""
    lines = ["| RPC | allowed callers and what their calls must meet |", "|---|---|"]
    for rpc, row in POLICY.items():
        cells = []
        for grant in row.grants:
            rules = [REQUEST_RULES[name][1] for name in grant.request_rules]
            rules += [RESOURCE_RULES[name] for name in grant.resource_rules]
            cells.append(f"**{grant.role}**" + (f": {'; '.join(rules)}" if rules else ""))
        lines.append(f"| `{rpc}` | {'<br>'.join(cells)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # `make docs`: rewrite the table in the document named on the command line
    import sys
    from pathlib import Path

    target = Path(sys.argv[1])
    target.write_text(with_table(target.read_text(encoding="utf-8")), encoding="utf-8")
