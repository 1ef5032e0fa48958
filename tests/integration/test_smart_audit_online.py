"""Smart audit (智能审核) online at the treating agency (SPEC §12.2, issue 12 item 4): 事前 (PreSettle, AuditBill)
and 事中 (Settle). The line rules run with the region's rule library (430100 blocks AUD-SEX and AUD-AGE; every
other rule warns) and give the same findings as the offline `clearing-admin audit` on the same inputs."""

from __future__ import annotations

import functools
import uuid

import grpc
import pytest
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

from clearing.bill import bill_from_dict
from clearing.smart_audit.report import audit_json, member_facts_from_id_number
from clearing.smart_audit.rules import audit_stay
from conftest import bill_line, catalogue, hospital, plain_codes, rid, versions_by_code
from services.common.smart_audit import audit_from_status, load_audit_libraries

OWN_STACK_AUDIT_RULES = "shipped"  # the rule libraries as shipped (430100 blocks AUD-SEX), versions as shipped

REGION = "430100"  # its rule library blocks AUD-SEX and AUD-AGE
INSURED_ELSEWHERE = "440100"
ADMITTED_ON, DISCHARGED_ON = "2026-03-01", "2026-03-05"


@pytest.fixture
def kit(own_kit):  # noqa: ANN001, ANN201
    return own_kit


@functools.cache
def codes_with(region: str, **facts: object) -> tuple[str, ...]:
    """Local codes (one row, valid all 2026, grade A, unrestricted) whose knowledge-base facts match `facts`."""
    knowledge = load_audit_libraries(region).knowledge
    found = []
    for code, versions in sorted(versions_by_code(region).items()):
        row = versions[0]
        if len(versions) != 1 or row["grade"] != "A" or row["restriction"].strip() or row["price_cap_fen"] \
                or row["valid_from"] > "2026-01-01" or row["valid_to"] or not row["national_code"]:
            continue
        item = knowledge.facts(row["national_code"])
        if item is not None and all(getattr(item, key) == value for key, value in facts.items()) \
                and (item.min_hospital_level or 0) <= 2 and item.max_age is None:
            found.append(code)
    return tuple(found)


def other_sex(id_number: str) -> str:
    return "F" if member_facts_from_id_number(id_number).sex == "M" else "M"


def line(line_id: str, code: str, qty: str, unit_price_fen: int, day: str) -> types_pb2.BillLine:
    return bill_line(line_id, code, qty, unit_price_fen, day)


async def scene(kit, insured_region: str):  # noqa: ANN001, ANN201
    """A member, an encounter at a level-3 hospital of REGION with: a plain line, an item for the other sex
    (AUD-SEX: block here) and a once-a-day laboratory test billed twice on one day (AUD-DAYQTY: warn)."""
    member = await kit.new_member(insured_region)
    wrong_sex = codes_with(REGION, sex=other_sex(member.id_number), max_qty_per_day_e4=None)[0]
    once_a_day = codes_with(REGION, sex=None, max_qty_per_day_e4=10_000, exclusive_group="")[0]
    lines = [line("1", plain_codes(REGION)[0], "1", 2_000, "2026-03-01"),
             line("2", wrong_sex, "1", 3_000, "2026-03-02"),
             line("3", once_a_day, "1", 1_500, "2026-03-02"),
             line("4", once_a_day, "1", 1_500, "2026-03-02")]
    encounter = await kit.open_encounter(hospital(REGION, 3), member, lines, ADMITTED_ON)
    return member, encounter, lines


def offline_findings(member, lines) -> dict:  # noqa: ANN001
    """What `clearing-admin audit` says of the same stay (the contract the online stages follow)."""
    bill = bill_from_dict({
        "region": REGION, "hospital": {"code": hospital(REGION, 3), "level": 3}, "admitted_on": ADMITTED_ON,
        "discharged_on": DISCHARGED_ON, "emergency": False, "diagnoses": ["J18.9"],
        "lines": [{"line_id": item.line_id, "code": item.code, "qty": item.qty, "unit_price_fen": item.unit_price_fen,
                   "amount_fen": item.amount_fen, "service_date": item.service_date} for item in lines]})
    libraries = load_audit_libraries(REGION)
    return audit_json(audit_stay(bill, catalogue(REGION), libraries.knowledge, libraries.rules,
                                 member_facts_from_id_number(member.id_number)))


def as_json(audit: types_pb2.SmartAudit) -> dict:
    return {"findings": [{"rule_id": item.rule_id, "rule_name": item.rule_name, "result": item.result,
                          "action": item.action, "amount_fen": item.amount_fen,
                          "violating_line_ids": list(item.violating_line_ids),
                          "involved_line_ids": list(item.involved_line_ids), "evidence": item.evidence}
                         for item in audit.findings],
            "definite_amount_fen": audit.definite_amount_fen}


async def test_presettle_and_auditbill_give_the_offline_findings(kit):
    member, encounter, lines = await scene(kit, REGION)
    expected = offline_findings(member, lines)
    assert [item["rule_id"] for item in expected["findings"]] == ["AUD-SEX", "AUD-DAYQTY"]
    assert expected["findings"][0]["violating_line_ids"] == ["2"] and expected["findings"][0]["action"] == "block"
    assert expected["findings"][1]["amount_fen"] == 1_500 and expected["findings"][1]["violating_line_ids"] == ["4"]
    quoted = await kit.treating(REGION).PreSettle(ta.PreSettleRequest(encounter_id=encounter,
                                                                      discharged_on=DISCHARGED_ON))
    assert as_json(quoted.smart_audit) == expected
    libraries = load_audit_libraries(REGION)
    assert quoted.smart_audit.knowledge_version == libraries.knowledge.version
    assert quoted.smart_audit.rules_version == libraries.rules.version
    advised = await kit.treating(REGION).AuditBill(ta.AuditBillRequest(encounter_id=encounter,
                                                                       discharged_on=DISCHARGED_ON))
    assert as_json(advised.smart_audit) == expected and advised.line_count == 4
    today = await kit.treating(REGION).AuditBill(ta.AuditBillRequest(encounter_id=encounter))  # before discharge
    assert [item.rule_id for item in today.smart_audit.findings][:2] == ["AUD-SEX", "AUD-DAYQTY"]


async def blocked(kit, encounter: str, request_id: str) -> grpc.aio.AioRpcError:  # noqa: ANN001
    error = await kit.refusal(kit.treating(REGION).Settle(ta.SettleRequest(
        request_id=request_id, encounter_id=encounter, discharged_on=DISCHARGED_ON)))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION, error
    return error


async def test_a_block_finding_refuses_settle_until_the_lines_are_voided(kit):
    for insured_region in (REGION, INSURED_ELSEWHERE):  # a local stay and a cross-region one
        member, encounter, lines = await scene(kit, insured_region)
        before = await kit.counts("treating_" + REGION, "insured_" + insured_region, "clearinghouse")
        request_id = rid()
        error = await blocked(kit, encounter, request_id)
        detail = audit_from_status(kit.status_of(error))
        assert detail is not None and not detail.truncated
        assert [item.rule_id for item in detail.findings] == ["AUD-SEX", "AUD-DAYQTY"]  # the blocking ones first
        assert list(detail.findings[0].violating_line_ids) == ["2"]
        assert "AUD-SEX" in error.details()
        assert await kit.counts("treating_" + REGION, "insured_" + insured_region, "clearinghouse") == before, \
            "nothing written"
        again = await blocked(kit, encounter, request_id)  # a retry: the same answer
        assert kit.status_of(again) == kit.status_of(error)
        # 退费: the HIS voids the violating line and settles (with the same request id: nothing was recorded).
        await kit.treating(REGION).VoidCharges(ta.VoidChargesRequest(
            request_id=rid(), encounter_id=encounter, line_ids=list(detail.findings[0].violating_line_ids),
            reason="智能审核: 限性别"))
        settled = await kit.treating(REGION).Settle(ta.SettleRequest(
            request_id=request_id, encounter_id=encounter, discharged_on=DISCHARGED_ON))
        audit = settled.settlement.smart_audit
        assert [item.rule_id for item in audit.findings] == ["AUD-DAYQTY"]  # the warn findings, recorded
        assert audit.findings[0].action == "warn" and audit.definite_amount_fen == 1_500
        assert settled.settlement.adjudication.split.total_fen == 2_000 + 1_500 * 2  # money unchanged by a warn
        retried = await kit.treating(REGION).Settle(ta.SettleRequest(
            request_id=request_id, encounter_id=encounter, discharged_on=DISCHARGED_ON))
        assert kit.same_bytes(retried, settled)
        shown = await kit.treating(REGION).GetSettlement(ta.GetSettlementRequest(
            settlement_id=settled.settlement.settlement_id))
        assert shown.settlement.smart_audit == audit
        row = await (await kit.db("treating_" + REGION)).fetchrow(
            "SELECT knowledge_version, rules_version, smart_audit FROM settlements WHERE settlement_id = $1",
            uuid.UUID(settled.settlement.settlement_id))
        libraries = load_audit_libraries(REGION)
        assert (row["knowledge_version"], row["rules_version"]) == (libraries.knowledge.version,
                                                                    libraries.rules.version)
        assert types_pb2.SmartAudit.FromString(bytes(row["smart_audit"])) == audit


async def test_an_admission_with_an_id_number_born_after_it_is_refused(kit):
    member = await kit.new_member(REGION)
    error = await kit.refusal(kit.admit(hospital(REGION, 3), member, "1950-01-01"))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, "patient.id_number")
