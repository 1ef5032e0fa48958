"""The stay's 病案首页 facts (procedures, sex, age, newborn facts, discharge status) travel with the claim: stored at
the treating agency, carried to the clearing house and the insured agency, printed with the DRG group by
`settlement show`; bad ones are refused naming the field and change nothing (docs/stay-facts.md)."""

from __future__ import annotations

import uuid

import grpc
from clearinghouse.v1 import clearing_house_pb2 as ch
from clearinghouse.v1 import insured_agency_pb2 as ia
from clearinghouse.v1 import treating_agency_pb2 as ta

from clearing.drg import group
from clearing.medical_record import drg_case
from services.common import convert
from services.drg.reference import load_tables
from tests.integration.conftest import SCHEMES, TIERS, Member, clearing_admin

TREATING, INSURED = "440100", "610924"
H_GUANGZHOU = "H44010000001"
ADMITTED_ON, DISCHARGED_ON = "2026-03-02", "2026-03-06"
PARTIES = (f"treating_{TREATING}", "clearinghouse", f"insured_{INSURED}")


async def open_stay(kit, member, **admit) -> str:  # noqa: ANN001
    line = kit.bill_line("1", kit.plain_codes(TREATING)[0], "2", 150000, "2026-03-03")
    return await kit.open_encounter(H_GUANGZHOU, member, [line], ADMITTED_ON, **admit)


async def test_the_facts_reach_every_party_and_settlement_show_prints_the_group(kit, stack_file):
    member = await kit.new_member(INSURED)
    encounter_id = await open_stay(kit, member, diagnoses=("K80.101", "I10.x00x002"))
    settled = (await kit.treating(TREATING).Settle(ta.SettleRequest(
        request_id=kit.rid(), encounter_id=encounter_id, discharged_on=DISCHARGED_ON,
        procedures=["51.2300", "54.5100"], discharge_status="1"))).settlement
    stay = settled.claim.stay
    birth_year = int(member.id_number[6:10])
    assert list(stay.procedures) == ["51.2300", "54.5100"] and stay.discharge_status == "1"
    assert stay.sex == ("M" if int(member.id_number[16]) % 2 else "F")  # from the ID number
    assert stay.age_years in (2026 - birth_year - 1, 2026 - birth_year) and not stay.HasField("age_days")

    settlement_id = uuid.UUID(settled.settlement_id)
    treating = await (await kit.db(f"treating_{TREATING}")).fetchrow(
        "SELECT e.sex, e.age_years, s.procedures, s.discharge_status FROM settlements s JOIN encounters e "
        "USING (encounter_id) WHERE s.settlement_id = $1", settlement_id)
    assert (treating["sex"], treating["age_years"]) == (stay.sex, stay.age_years)
    assert (treating["procedures"], treating["discharge_status"]) == (["51.2300", "54.5100"], "1")
    claim = await (await kit.db("clearinghouse")).fetchrow(
        "SELECT principal_diagnosis, procedures, request FROM claims WHERE settlement_id = $1", settlement_id)
    assert (claim["principal_diagnosis"], claim["procedures"]) == ("K80.101", ["51.2300", "54.5100"])
    routed = ch.SettleClaimRequest.FromString(bytes(claim["request"])).claim.stay
    assert routed.sex == stay.sex and routed.age_years == stay.age_years and routed.discharge_status == "1"
    request = await (await kit.db(f"insured_{INSURED}")).fetchval(
        "SELECT request FROM settlements WHERE settlement_id = $1", settlement_id)
    insured_stay = ia.AdjudicateRequest.FromString(bytes(request)).claim.stay
    assert list(insured_stay.procedures) == ["51.2300", "54.5100"] and insured_stay.sex == stay.sex

    code, out, err = await clearing_admin("settlement", "show", settled.settlement_id, "--config", str(stack_file))
    assert code == 0, err
    assert "procedures 51.2300, 54.5100" in out and "discharge status 1" in out
    # 腹腔镜胆囊切除 for cholelithiasis: the hepatobiliary surgical ADRG HC2 (胆囊切除手术), not split.
    assert "DRG HC29 胆囊切除手术" in out and "CHS-DRG 1.1; MDCH, ADRG HC2" in out


async def test_a_stay_without_facts_still_settles_with_sex_and_age_from_the_id_number(kit):
    member = await kit.new_member(INSURED)
    settled = await kit.discharge(H_GUANGZHOU, member, [kit.bill_line("1", kit.plain_codes(TREATING)[0], "1", 5000,
                                                                      "2026-03-03")], ADMITTED_ON, DISCHARGED_ON)
    stay = settled.claim.stay
    assert not stay.procedures and stay.discharge_status == "" and stay.sex in ("M", "F") and stay.HasField("age_years")
    # A (test or legacy) ID number born over 150 years ago is admitted as always: the stay has no age then.
    old = await register(kit, f"{INSURED}18500101{uuid.uuid4().int % 100:02d}11")
    settled = await kit.discharge(H_GUANGZHOU, old, [kit.bill_line("1", kit.plain_codes(TREATING)[0], "1", 5000,
                                                                   "2026-03-03")], ADMITTED_ON, DISCHARGED_ON)
    assert settled.claim.stay.sex == "M" and not settled.claim.stay.HasField("age_years")


async def test_a_bad_procedure_or_discharge_status_is_refused_naming_it_and_nothing_is_recorded(kit):
    member = await kit.new_member(INSURED)
    encounter_id = await open_stay(kit, member)
    before = await kit.counts(*PARTIES)
    for fields, named in (({"procedures": ["cholecystectomy"]}, "procedures[0]"),
                          ({"procedures": ["51.2300", "5123"]}, "procedures[1]"),
                          ({"procedures": ["51.2300", "51.2300"]}, "procedures"),
                          ({"procedures": [f"51.{n:04d}" for n in range(33)]}, "procedures"),
                          ({"discharge_status": "6"}, "discharge_status")):
        for call in (kit.treating(TREATING).PreSettle(ta.PreSettleRequest(
                         encounter_id=encounter_id, discharged_on=DISCHARGED_ON, **fields)),
                     kit.treating(TREATING).Settle(ta.SettleRequest(
                         request_id=kit.rid(), encounter_id=encounter_id, discharged_on=DISCHARGED_ON, **fields))):
            kit.assert_refused(await kit.refusal(call), grpc.StatusCode.INVALID_ARGUMENT, field=named)
    assert await kit.counts(*PARTIES) == before

    # A claim with a bad fact is refused by the clearing house and the insured agency too, whoever sends it.
    quoted = await kit.treating(TREATING).PreSettle(ta.PreSettleRequest(encounter_id=encounter_id,
                                                                        discharged_on=DISCHARGED_ON))
    claim = quoted.settlement.claim
    claim.settlement_id = kit.rid()
    claim.stay.procedures.append("51.23.00")
    error = await kit.refusal(kit.clearing().SettleClaim(ch.SettleClaimRequest(request_id=claim.settlement_id,
                                                                               claim=claim)))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="claim.stay.procedures[0]")
    del claim.stay.procedures[:]
    claim.stay.birth_weight_g = 3200  # the stay's patient is an adult
    error = await kit.refusal(kit.insured(INSURED).Adjudicate(ia.AdjudicateRequest(request_id=claim.settlement_id,
                                                                                   claim=claim)))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="claim.stay.birth_weight_g")
    assert await kit.counts(*PARTIES) == before


async def test_a_newborn_carries_age_in_days_and_birth_weight_and_an_adult_cannot(kit):
    adult = await kit.new_member(INSURED)
    before = await kit.counts(*PARTIES)
    request = kit.admit_request(H_GUANGZHOU, adult, ADMITTED_ON)
    request.birth_weight_g = 3200
    error = await kit.refusal(kit.treating(TREATING).Admit(request))
    kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="birth_weight_g")
    assert await kit.counts(*PARTIES) == before

    # A girl born on 20 February 2026 (the 17th character even); 10 days old on the admission day.
    baby = await register(kit, f"{INSURED}20260220{uuid.uuid4().int % 100:02d}20")
    request = kit.admit_request(H_GUANGZHOU, baby, ADMITTED_ON, diagnoses=("P59.901",))
    request.birth_weight_g = 0
    kit.assert_refused(await kit.refusal(kit.treating(TREATING).Admit(request)), grpc.StatusCode.INVALID_ARGUMENT,
                       field="birth_weight_g")
    request.birth_weight_g = 3150
    admitted = await kit.treating(TREATING).Admit(request)
    line = kit.bill_line("1", kit.plain_codes(TREATING)[0], "1", 5000, "2026-03-03")
    await kit.treating(TREATING).UploadCharges(ta.UploadChargesRequest(request_id=kit.rid(),
                                                                       encounter_id=admitted.encounter_id, lines=[line]))
    quoted = await kit.treating(TREATING).PreSettle(ta.PreSettleRequest(
        encounter_id=admitted.encounter_id, discharged_on=DISCHARGED_ON, discharge_status="1"))
    stay = quoted.settlement.claim.stay
    assert (stay.sex, stay.age_years, stay.age_days, stay.birth_weight_g) == ("F", 0, 10, 3150)
    # 新生儿黄疸 of a 10-day-old of 3150 g: the newborn MDC, ADRG PU1 (足月儿, needs age_days ≤ 28).
    result = group(drg_case(tuple(stay.diagnoses), convert.stay_record(stay), 4), load_tables())
    assert (result.mdc, result.adrg) == ("MDCP", "PU1"), result.reason


async def register(kit, id_number: str) -> Member:  # noqa: ANN001
    member = Member(INSURED, f"T{INSURED}{uuid.uuid4().hex[:12].upper()}", id_number, "测试新生儿", "resident", False,
                    False, None, "unfiled")
    await kit.insured(INSURED).RegisterMember(ia.RegisterMemberRequest(
        request_id=kit.rid(), member=ia.Member(member_id=member.member_id, id_number=id_number, name=member.name,
                                               scheme=SCHEMES["resident"], retired=False, poverty=False,
                                               assistance=TIERS[None])))
    return member
