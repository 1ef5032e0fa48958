"""Finding valid data in a running stack (issue 15 item 3): an insured agency lists its members to operators, one
page at a time, as an operator may see them (member number whole, ID number masked, no name); a treating agency
finds catalogue rows by local code or by name for operators and its hospitals. Both are reads."""

from __future__ import annotations

import re

import grpc
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import insured_agency_pb2_grpc
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import treating_agency_pb2_grpc, types_pb2

from services.datagen.population import generate_members
from services.security.identity import hospital

INSURED = "610924"
TREATING = "440100"
MASKED = re.compile(r"^[0-9]{4}\*{10}[0-9]{3}[0-9X]$")


async def all_pages(kit, limit: int) -> list[ia.ListMembersResponse]:
    pages, token = [], ""
    for _ in range(1000):  # bounded: the session's members and a few hundred registered by tests
        page = await kit.insured(INSURED).ListMembers(ia.ListMembersRequest(limit=limit, page_token=token))
        pages.append(page)
        token = page.next_page_token
        if not token:
            return pages
    raise AssertionError("ListMembers never ended")


async def test_pages_list_every_member_once_in_order_masked_and_without_a_name(kit):
    registered = await kit.new_member(INSURED, filing="referral", filing_region=TREATING)
    pages = await all_pages(kit, limit=7)
    listed = [item for page in pages for item in page.members]
    ids = [item.member.member_id for item in listed]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), "by member number, each once"
    assert all(len(page.members) == 7 for page in pages[:-1]) and len(pages[-1].members) <= 7
    count = await (await kit.db(f"insured_{INSURED}")).fetchval("SELECT count(*) FROM members")
    assert len(listed) >= count - 5  # members registered by other tests meanwhile may come after the last page
    generated = {member["member_id"]: member for member in generate_members(INSURED, 30, kit.seed)}
    for item in listed:
        assert MASKED.match(item.member.id_number), item.member.id_number
        assert item.member.name == ""
        known = generated.get(item.member.member_id)
        if known is not None:  # the enrolled members: their facts, and never their ID number or name
            assert item.member.id_number[:4] == known["id_number"][:4] and \
                item.member.id_number[-4:] == known["id_number"][-4:]
            assert known["id_number"] not in str(item) and known["name"] not in str(item)
            assert item.member.retired == known["retired"]
    assert set(generated) <= set(ids)
    mine = next(item for item in listed if item.member.member_id == registered.member_id)
    assert [(filing.category, filing.treating_region, filing.valid_from) for filing in mine.filings] == [
        (types_pb2.FILING_STATUS_REFERRAL, TREATING, "2026-01-01")]
    assert registered.id_number not in str(mine)


async def test_a_page_starts_after_its_token_and_refuses_a_bad_limit(kit):
    first = await kit.insured(INSURED).ListMembers(ia.ListMembersRequest(limit=3))
    assert len(first.members) == 3 and first.next_page_token == first.members[-1].member.member_id
    second = await kit.insured(INSURED).ListMembers(ia.ListMembersRequest(limit=3, page_token=first.next_page_token))
    assert second.members[0].member.member_id > first.members[-1].member.member_id
    default = await kit.insured(INSURED).ListMembers(ia.ListMembersRequest())
    assert 3 < len(default.members) <= 100
    for limit in (-1, 1001):
        error = await kit.refusal(kit.insured(INSURED).ListMembers(ia.ListMembersRequest(limit=limit)))
        kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, "limit")
    error = await kit.refusal(kit.insured(INSURED).ListMembers(ia.ListMembersRequest(page_token="x" * 65)))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, "page_token")


async def test_a_hospital_cannot_list_members(kit):
    stub = kit.stack.stub_as(hospital("H44010000001"),
                             insured_agency_pb2_grpc.InsuredAgencyServiceStub, kit.stack.address(INSURED))
    error = await kit.refusal(stub.ListMembers(ia.ListMembersRequest(), timeout=10))
    kit.assert_refused(error, grpc.StatusCode.PERMISSION_DENIED)


async def test_a_code_finds_every_row_of_the_item_and_a_day_the_one_in_force(kit):
    versions = kit.versions_by_code(TREATING)
    code = next(code for code, rows in sorted(versions.items()) if len(rows) > 1)
    found = await kit.treating(TREATING).SearchCatalogue(ta.SearchCatalogueRequest(code=code))
    assert found.version >= 1 and not found.truncated
    assert [(item.local_code, item.valid_from, item.valid_to, item.grade, item.name) for item in found.items] == [
        (row["local_code"], row["valid_from"], row["valid_to"], row["grade"], row["name"])
        for row in sorted(versions[code], key=lambda row: row["valid_from"])]
    day = versions[code][0]["valid_from"]
    on_day = await kit.treating(TREATING).SearchCatalogue(ta.SearchCatalogueRequest(code=code, on_date=day))
    assert [item.valid_from for item in on_day.items] == [
        row["valid_from"] for row in versions[code]
        if row["valid_from"] <= day and (not row["valid_to"] or day <= row["valid_to"])]
    unknown = await kit.treating(TREATING).SearchCatalogue(ta.SearchCatalogueRequest(code="NO-SUCH-CODE"))
    assert list(unknown.items) == []


async def test_a_text_finds_names_and_code_prefixes_up_to_the_limit(kit):
    rows = kit.catalogue_rows(TREATING)
    word = rows[0]["name"][:2]
    expected = sorted((row["local_code"], row["valid_from"]) for row in rows
                      if word.casefold() in row["name"].casefold() or row["local_code"].startswith(word)
                      or (row["national_code"] and row["national_code"].startswith(word)))
    found = await kit.treating(TREATING).SearchCatalogue(ta.SearchCatalogueRequest(text=word, limit=1000))
    assert [(item.local_code, item.valid_from) for item in found.items] == expected[:1000]
    few = await kit.treating(TREATING).SearchCatalogue(ta.SearchCatalogueRequest(text=word, limit=1))
    assert len(few.items) == 1 and few.truncated == (len(expected) > 1)
    cap = next(row for row in rows if row["price_cap_fen"])
    capped = await kit.treating(TREATING).SearchCatalogue(ta.SearchCatalogueRequest(code=cap["local_code"]))
    item = next(item for item in capped.items if item.valid_from == cap["valid_from"])
    assert item.HasField("price_cap_fen") and item.price_cap_fen == int(cap["price_cap_fen"])
    plain = await kit.treating(TREATING).SearchCatalogue(ta.SearchCatalogueRequest(
        code=kit.plain_codes(TREATING)[0]))
    assert not plain.items[0].HasField("price_cap_fen")


async def test_bad_searches_are_refused_naming_the_field(kit):
    cases = ((ta.SearchCatalogueRequest(), "code"), (ta.SearchCatalogueRequest(code="A", text="B"), "text"),
             (ta.SearchCatalogueRequest(code="x" * 65), "code"), (ta.SearchCatalogueRequest(text="a\x00"), "text"),
             (ta.SearchCatalogueRequest(code="A", on_date="2026-02-30"), "on_date"),
             (ta.SearchCatalogueRequest(code="A", limit=1001), "limit"))
    for request, field in cases:
        error = await kit.refusal(kit.treating(TREATING).SearchCatalogue(request))
        kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field)


async def test_the_regions_hospitals_may_search_and_others_may_not(kit):
    code = kit.plain_codes(TREATING)[0]
    own = kit.stack.stub_as(hospital("H44010000001"), treating_agency_pb2_grpc.TreatingAgencyServiceStub,
                            kit.stack.address(TREATING))
    assert (await own.SearchCatalogue(ta.SearchCatalogueRequest(code=code), timeout=10)).items
    other = kit.stack.stub_as(hospital(kit.hospital("430100")), treating_agency_pb2_grpc.TreatingAgencyServiceStub,
                              kit.stack.address(TREATING))
    error = await kit.refusal(other.SearchCatalogue(ta.SearchCatalogueRequest(code=code), timeout=10))
    kit.assert_refused(error, grpc.StatusCode.PERMISSION_DENIED)
