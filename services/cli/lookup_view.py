"""`clearing-admin members list` and `catalog show`: finding valid data in the running stack — a member number to
admit a patient under, a local code to bill (docs/his-integration.md). Both are reads, as the operator.

What an operator sees of a member is what the insured agency answers (InsuredAgencyService.ListMembers): the member
number, the ID number masked, no name — the agency keeps none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import insured_agency_pb2_grpc, treating_agency_pb2 as ta, treating_agency_pb2_grpc, types_pb2
from google.protobuf import json_format
from rich.console import Console

from clearing.money import format_yuan
from services.cli import online, output

JSON_OPTIONS = {"preserving_proto_field_name": True, "always_print_fields_with_no_presence": True}
SCHEME_WORDS = {"SCHEME_EMPLOYEE": "employee", "SCHEME_RESIDENT": "resident"}
FILING_WORDS = {"FILING_STATUS_RESIDENT": "resident", "FILING_STATUS_REFERRAL": "referral",
                "FILING_STATUS_TEMPORARY": "temporary"}


def wide(console: Console) -> Console:
    """Piped (a script, a test, `| less`): whole ids and names on one line, not rich's 80 columns."""
    if not console.is_terminal:
        console.width = max(console.width, 160)
    return console


def list_members(config_path: Path, region: str, limit: int, after: str) -> ia.ListMembersResponse:
    """One page of the region's members at its insured agency."""
    config = online.load_config(config_path)
    address = online.region_address(config, region, "REGION")  # an unknown region is refused, not an empty list
    request = ia.ListMembersRequest(limit=limit, page_token=after)
    return online.call(config, address, lambda channel: insured_agency_pb2_grpc.InsuredAgencyServiceStub(
        channel).ListMembers(request, timeout=online.CALL_TIMEOUT_S))


def members_json(answer: ia.ListMembersResponse) -> dict[str, Any]:
    return json_format.MessageToDict(answer, **JSON_OPTIONS)


def filing_text(filing: ia.Filing) -> str:
    where = filing.treating_region or "any region"
    until = filing.valid_to or "open"
    return f"{FILING_WORDS.get(types_pb2.FilingStatus.Name(filing.category), '?')} for {where}, {filing.valid_from}–{until}"


def show_members(console: Console, region: str, answer: ia.ListMembersResponse) -> None:
    listing = output.table(f"Members of {region} (参保人): ID numbers masked, no names — the agency keeps none",
                           "member id", "ID number", "scheme", "retired", "poverty", "assistance", "filings (备案)")
    for column in listing.columns[:2]:
        column.no_wrap = True  # a member id cut in two cannot be copied
    for item in answer.members:
        member = item.member
        tier = types_pb2.AssistanceTier.Name(member.assistance).removeprefix("ASSISTANCE_TIER_").lower()
        listing.add_row(member.member_id, member.id_number,
                        SCHEME_WORDS.get(types_pb2.Scheme.Name(member.scheme), "?"), "yes" if member.retired else "",
                        "yes" if member.poverty else "", "" if tier == "none" else tier,
                        "; ".join(filing_text(filing) for filing in item.filings) or "unfiled")
    wide(console).print(listing)
    shown = online.plural(len(answer.members), "member")
    if answer.next_page_token:
        console.print(f"{shown}; more: --after {answer.next_page_token}", soft_wrap=True)
    else:
        console.print(f"{shown}; no more")


def search_catalogue(config_path: Path, region: str, code: str | None, text: str | None, on: str,
                     limit: int) -> ta.SearchCatalogueResponse:
    """The rows of the region's catalogue in force with a local code, or matching a text."""
    from clearing.errors import InvalidField

    if (code is None) == (text is None):
        raise InvalidField("--code", "give either --code CODE or --search TEXT")
    config = online.load_config(config_path)
    address = online.region_address(config, region, "REGION")
    request = ta.SearchCatalogueRequest(code=code or "", text=text or "", on_date=on, limit=limit)
    return online.call(config, address, lambda channel: treating_agency_pb2_grpc.TreatingAgencyServiceStub(
        channel).SearchCatalogue(request, timeout=online.CALL_TIMEOUT_S))


def catalogue_json(answer: ta.SearchCatalogueResponse) -> dict[str, Any]:
    return json_format.MessageToDict(answer, **JSON_OPTIONS)


def show_catalogue(console: Console, region: str, answer: ta.SearchCatalogueResponse) -> None:
    listing = output.table(f"Catalogue of {region} (就医地目录), version {answer.version}", "local code", "national code",
                           "kind", "name", "grade", "self-pay", "price cap ¥", "restriction", "valid",
                           numeric=("self-pay", "price cap ¥"))
    for column in listing.columns[:2]:
        column.no_wrap = True  # a code cut in two cannot be copied
    for item in answer.items:
        cap = format_yuan(item.price_cap_fen) if item.HasField("price_cap_fen") else ""
        listing.add_row(item.local_code, item.national_code or "(local only)", item.kind, item.name, item.grade,
                        f"{item.selfpay_bp // 100}.{item.selfpay_bp % 100:02d} %" if item.selfpay_bp else "", cap, item.restriction,
                        f"{item.valid_from} – {item.valid_to or 'open'}")
    wide(console).print(listing)
    shown = online.plural(len(answer.items), "row")
    console.print(f"{shown}; more matched: narrow the search or raise --limit" if answer.truncated else shown)
