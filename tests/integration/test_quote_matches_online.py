"""The offline quote (SPEC §5.3) gives exactly the online settlement's numbers.

For generated bills (fixed seeds) of fresh members over several region pairs under the TREATING
rule, and same-region stays, `clearing.quote.quote` is run with no server: the treating region's
generated catalogue (rows → CSV text → `parse_catalogue_csv`), the insured region's policy in
force on the discharge day, the member as registered (scheme, retired, poverty, assistance,
filing) and the accumulators read with GetMember before the stay. The online Settle must report
the same split, per-line amounts and reasons, explanation and `ytd_after`. Some members have two
stays so the second starts from non-zero accumulators.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

from clearing.bill import bill_from_dict
from clearing.member import Member, Ytd
from clearing.policy import AssistanceTier, FilingStatus, Scheme
from clearing.quote import SPLIT_KEYS, adjudication_json, quote
from services.common.regions import load_policy_book
from services.datagen.bills import generate_bill

REASONS = {types_pb2.LINE_REASON_UNSPECIFIED: None, types_pb2.LINE_REASON_GRADE_C: "GRADE_C",
           types_pb2.LINE_REASON_UNMAPPED: "UNMAPPED", types_pb2.LINE_REASON_RESTRICTED: "RESTRICTED",
           types_pb2.LINE_REASON_OVER_CAP: "OVER_CAP", types_pb2.LINE_REASON_NOT_VALID_ON_DATE: "NOT_VALID_ON_DATE"}
GRADES = {types_pb2.GRADE_UNSPECIFIED: None, types_pb2.GRADE_A: "A", types_pb2.GRADE_B: "B", types_pb2.GRADE_C: "C"}

# (treating region, insured region, member profile, bill seeds). No pair here has an agreement
# (agreements.toml lists 430100–440100, 460100–530100 and 211100–230400), so all use the
# treating rule; same-region pairs are settled locally.
PROFILES = {
    "employee-retired-resident": dict(scheme="employee", retired=True, filing="resident"),
    "employee-unfiled": dict(scheme="employee"),
    "resident-poverty-dibao-unfiled": dict(scheme="resident", poverty=True, assistance="dibao"),
    "resident-tekun-temporary": dict(scheme="resident", poverty=True, assistance="tekun", filing="temporary"),
    "resident-dishouru-referral": dict(scheme="resident", assistance="dishouru", filing="referral"),
    "employee-referral": dict(scheme="employee", filing="referral"),
}
CASES = [
    ("440100", "610924", "employee-retired-resident", (11, 12)),
    ("610924", "440100", "resident-poverty-dibao-unfiled", (21,)),
    ("211100", "530100", "employee-unfiled", (31,)),
    ("230400", "460100", "resident-tekun-temporary", (41, 42)),
    ("530100", "211100", "resident-dishouru-referral", (51,)),
    ("460100", "230400", "employee-referral", (61,)),
    ("430100", "530100", "resident-poverty-dibao-unfiled", (71,)),
    ("440100", "440100", "employee-unfiled", (81, 82)),
    ("430100", "430100", "resident-tekun-temporary", (91,)),
    ("610924", "610924", "resident-dishouru-referral", (101,)),
    ("211100", "610924", "employee-unfiled", (111,)),
]


def offline_member(member) -> Member:  # noqa: ANN001 - the conftest's Member
    return Member(region=member.region, member_id=member.member_id, scheme=Scheme(member.scheme),
                  retired=member.retired, poverty=member.poverty,
                  assistance=AssistanceTier(member.assistance) if member.assistance else None,
                  filing=FilingStatus(member.filing))


def offline_ytd(message: types_pb2.Accumulators) -> Ytd:
    return Ytd(message.deductible_fen, message.eligible_fen, message.hifp_fen, message.burden_fen,
               message.hifmi_fen, message.assist_base_fen, message.maf_fen, message.admissions)


def online_lines(adjudication: types_pb2.Adjudication) -> list[dict]:
    return [{"line_id": item.line.line_id, "code": item.line.code, "catalogue_code": item.catalogue_code,
             "national_code": item.national_code, "grade": GRADES[item.grade],
             "fulamt_ownpay_fen": item.fulamt_ownpay_fen, "overlmt_selfpay_fen": item.overlmt_selfpay_fen,
             "preselfpay_fen": item.preselfpay_fen, "inscp_fen": item.inscp_fen, "reason": REASONS[item.reason]}
            for item in adjudication.lines]


def offline_lines(expected: dict) -> list[dict]:
    keys = ("line_id", "code", "catalogue_code", "national_code", "grade", "fulamt_ownpay_fen",
            "overlmt_selfpay_fen", "preselfpay_fen", "inscp_fen", "reason")
    return [{key: line[key] for key in keys} for line in expected["lines"]]


def online_explanation(adjudication: types_pb2.Adjudication) -> list[tuple]:
    return [(step.step, step.amount_fen, dict(step.facts)) for step in adjudication.explanation]


def offline_explanation(expected: dict) -> list[tuple]:
    return [(step["step"], step["amount_fen"], {key: str(value) for key, value in step["facts"].items()})
            for step in expected["explanation"]]


def stays(treating_region: str, seeds: tuple[int, ...], kit) -> list[dict]:  # noqa: ANN001
    """Generated bills, one after the other, at hospitals of the treating region."""
    bills = []
    admitted_on = date(2026, 2, 2) + timedelta(days=seeds[0] % 60)
    for index, seed in enumerate(seeds):
        code, level = kit.hospitals(treating_region)[seed % len(kit.hospitals(treating_region))]
        bill = generate_bill(seed, kit.catalogue_rows(treating_region), treating_region, code, level, admitted_on)
        bills.append(bill)
        admitted_on = date.fromisoformat(bill["discharged_on"]) + timedelta(days=3 + index)
    return bills


def expected_quote(bill: dict, member, ytd: types_pb2.Accumulators, kit) -> dict:  # noqa: ANN001
    """`clearing-admin quote` with the same inputs, in-process: no server, no database."""
    policy = load_policy_book(member.region).on(date.fromisoformat(bill["discharged_on"]))
    result = quote(bill_from_dict(bill), kit.catalogue(bill["region"]), offline_member(member), policy,
                   offline_ytd(ytd))
    return adjudication_json(result)


def assert_same_numbers(adjudication: types_pb2.Adjudication, expected: dict) -> None:
    assert {key: getattr(adjudication.split, key) for key in SPLIT_KEYS} == \
        {key: expected[key] for key in SPLIT_KEYS}
    assert online_lines(adjudication) == offline_lines(expected)
    assert {key: getattr(adjudication.ytd_after, key) for key in expected["ytd_after"]} == expected["ytd_after"]
    assert online_explanation(adjudication) == offline_explanation(expected)


@pytest.mark.parametrize(("treating_region", "insured_region", "profile", "seeds"), CASES,
                         ids=[f"{t}-treats-{i}-{p}" for t, i, p, _ in CASES])
async def test_offline_quote_equals_online_settlement(kit, treating_region, insured_region, profile, seeds):
    member = await kit.new_member(insured_region, **PROFILES[profile])
    for bill in stays(treating_region, seeds, kit):
        ytd_before = await kit.accumulators(member)
        expected = expected_quote(bill, member, ytd_before, kit)

        encounter_id = await kit.open_encounter(
            bill["hospital"]["code"], member, kit.lines_from_bill(bill), bill["admitted_on"],
            emergency=bill["emergency"], diagnoses=tuple(bill["diagnoses"]))
        settled = await kit.treating(treating_region).Settle(ta.SettleRequest(
            request_id=kit.rid(), encounter_id=encounter_id, discharged_on=bill["discharged_on"]))
        settlement = settled.settlement

        assert settlement.local is (treating_region == insured_region)
        assert settlement.catalogue_rule == types_pb2.CATALOGUE_RULE_TREATING
        assert kit.ytd_dict(settlement.adjudication.ytd_before) == kit.ytd_dict(ytd_before)
        assert_same_numbers(settlement.adjudication, expected)
        assert kit.ytd_dict(await kit.accumulators(member)) == expected["ytd_after"]


# Regression: PreSettle ran SELECT … FOR UPDATE inside its read-only transaction and answered
# INTERNAL for every encounter.
@pytest.mark.parametrize(("treating_region", "insured_region", "profile", "seed"), [
    ("440100", "610924", "employee-retired-resident", 201),
    ("530100", "530100", "resident-poverty-dibao-unfiled", 202),
], ids=["cross-region", "same-region"])
async def test_presettle_equals_the_following_settle_and_moves_nothing(
        kit, treating_region, insured_region, profile, seed):
    member = await kit.new_member(insured_region, **PROFILES[profile])
    (bill,) = stays(treating_region, (seed,), kit)
    ytd_before = await kit.accumulators(member)
    encounter_id = await kit.open_encounter(
        bill["hospital"]["code"], member, kit.lines_from_bill(bill), bill["admitted_on"],
        emergency=bill["emergency"], diagnoses=tuple(bill["diagnoses"]))
    parties = (f"treating_{treating_region}", "clearinghouse", f"insured_{insured_region}")
    counts_before = await kit.counts(*parties)

    quoted = await kit.treating(treating_region).PreSettle(ta.PreSettleRequest(
        encounter_id=encounter_id, discharged_on=bill["discharged_on"]))

    assert quoted.settlement.status == types_pb2.SETTLEMENT_STATUS_PENDING
    assert await kit.counts(*parties) == counts_before, "a quote records nothing"
    assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(ytd_before), "a quote moves nothing"
    settled = await kit.treating(treating_region).Settle(ta.SettleRequest(
        request_id=kit.rid(), encounter_id=encounter_id, discharged_on=bill["discharged_on"]))
    assert settled.settlement.adjudication == quoted.settlement.adjudication
    assert list(settled.settlement.claim.lines) == list(quoted.settlement.claim.lines)
    assert_same_numbers(quoted.settlement.adjudication, expected_quote(bill, member, ytd_before, kit))
    assert uuid.UUID(quoted.settlement.settlement_id) != uuid.UUID(settled.settlement.settlement_id)
