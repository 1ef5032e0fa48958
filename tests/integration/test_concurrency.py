"""Concurrent discharges (SPEC §8): two discharges of one member at the same moment, in two
treating regions, never both consume the same remaining cap or deductible; many discharges of
one insured region at once all succeed with consistent accumulators and ledger.

Members are registered fresh by each test; the "near the cap" state is built by a first stay
whose numbers are worked out by hand from 610924_2026.toml.
"""

from __future__ import annotations

import asyncio
import uuid

from clearinghouse.v1 import treating_agency_pb2 as ta
from clearinghouse.v1 import types_pb2

from services.datagen.bills import generate_bill

H_GUANGZHOU = "H44010000001"  # level 3
H_PANJIN = "H21110000001"  # level 3
H_HEGANG = "H23040000001"  # level 3


async def settle_at_once(kit, encounters: list[tuple[str, str, str]]) -> list:  # noqa: ANN001
    """Settle (2304) several open encounters with one asyncio.gather; returns answers or exceptions."""
    calls = [kit.treating(region).Settle(ta.SettleRequest(request_id=kit.rid(), encounter_id=encounter_id,
                                                          discharged_on=discharged_on))
             for region, encounter_id, discharged_on in encounters]
    return await asyncio.gather(*calls, return_exceptions=True)


def assert_serialised(kit, start: types_pb2.Accumulators, settlements: list[types_pb2.Settlement]) -> dict:  # noqa: ANN001
    """The stays were adjudicated one after the other: each starts where another ended, from `start`;
    returns the sum of their deltas."""
    remaining = {tuple(kit.ytd_dict(s.adjudication.ytd_before).values()): s for s in settlements}
    assert len(remaining) == len(settlements), "no two stays started from the same accumulators"
    position = kit.ytd_dict(start)
    total = dict.fromkeys(position, 0)
    for _ in settlements:
        settlement = remaining.pop(tuple(position.values()), None)
        assert settlement is not None, f"no stay starts from {position}: they were not serialised"
        delta = kit.ytd_delta(settlement.adjudication.ytd_before, settlement.adjudication.ytd_after)
        total = {key: total[key] + delta[key] for key in total}
        position = kit.ytd_dict(settlement.adjudication.ytd_after)
    return total


async def test_two_regions_discharge_one_member_near_the_cap_at_the_same_moment(kit):
    # 610924 employee (610924_2026.toml): annual cap 300,000.00; level 3: deductible 800.00, 80 %;
    # filed resident: no cut. A first stay of 363,300.00 → eligible 362,500.00 → hifp 290,000.00,
    # leaving 10,000.00 of the cap.
    member = await kit.new_member("610924", scheme="employee", filing="resident")
    first = await kit.discharge(H_GUANGZHOU, member,
                                [kit.bill_line("1", kit.plain_codes("440100")[0], "1", 36330000, "2026-02-02")],
                                "2026-02-02", "2026-02-10")
    assert first.adjudication.split.hifp_fen == 29000000
    start = await kit.accumulators(member)
    cap_left_fen = 30000000 - start.hifp_fen
    assert cap_left_fen == 1000000

    # Two stays of 20,000.00 each at level-3 hospitals of two other regions: each alone would
    # take (20,000.00 − 800.00) × 80 % = 15,360.00 from the basic fund, more than is left.
    guangzhou = await kit.open_encounter(H_GUANGZHOU, member, [
        kit.bill_line("1", kit.plain_codes("440100")[1], "1", 2000000, "2026-03-02")], "2026-03-02")
    panjin = await kit.open_encounter(H_PANJIN, member, [
        kit.bill_line("1", kit.plain_codes("211100")[0], "1", 2000000, "2026-03-02")], "2026-03-02")
    answers = await settle_at_once(kit, [("440100", guangzhou, "2026-03-06"), ("211100", panjin, "2026-03-06")])
    assert not [a for a in answers if isinstance(a, BaseException)], answers
    settlements = [answer.settlement for answer in answers]

    for settlement in settlements:
        bands = [step for step in settlement.adjudication.explanation if step.step == "basic_band"]
        assert [step.amount_fen for step in bands] == [1536000], "uncapped, each stay exceeds what is left"
    hifp = [settlement.adjudication.split.hifp_fen for settlement in settlements]
    assert sum(hifp) == cap_left_fen, f"together {hifp} must use exactly the 10,000.00 left, never more"
    assert sorted(hifp) == [0, cap_left_fen]

    total_delta = assert_serialised(kit, start, settlements)
    final = await kit.accumulators(member)
    assert kit.ytd_dict(final) == {key: kit.ytd_dict(start)[key] + total_delta[key] for key in total_delta}
    assert final.hifp_fen == 30000000 and final.admissions == 3


async def test_concurrent_stays_never_pass_the_annual_deductible_cap(kit):
    # 460100 resident (460100_2026.toml): deductible 600.00 per stay at level 3, at most 1,500.00 a
    # year. Three stays at once at level-3 hospitals of three regions: 600 + 600 + 300.
    member = await kit.new_member("460100", scheme="resident", filing="resident")
    encounters = []
    for hospital_code in (H_GUANGZHOU, H_PANJIN, H_HEGANG):
        region = hospital_code[1:7]
        encounter_id = await kit.open_encounter(hospital_code, member, [
            kit.bill_line("1", kit.plain_codes(region)[5], "1", 500000, "2026-04-01")], "2026-04-01")
        encounters.append((region, encounter_id, "2026-04-03"))
    start = await kit.accumulators(member)
    assert kit.ytd_dict(start) == dict.fromkeys(kit.ytd_dict(start), 0)

    answers = await settle_at_once(kit, encounters)
    assert not [a for a in answers if isinstance(a, BaseException)], answers
    settlements = [answer.settlement for answer in answers]
    assert sorted(s.adjudication.split.deductible_fen for s in settlements) == [30000, 60000, 60000]
    total_delta = assert_serialised(kit, start, settlements)
    final = await kit.accumulators(member)
    assert kit.ytd_dict(final) == total_delta
    assert final.deductible_fen == 150000 and final.admissions == 3


async def test_thirty_concurrent_discharges_of_one_insured_region_all_settle_consistently(kit):
    insured_region = "430100"
    # Local stays, the insured rule (440100) and the treating rule (the others), several hospitals.
    treating_regions = ("430100", "440100", "460100", "610924", "211100", "530100")
    profiles = (dict(scheme="employee", filing="resident"), dict(scheme="resident", poverty=True, assistance="dibao"),
                dict(scheme="employee", retired=True), dict(scheme="resident", filing="temporary"))
    members = await asyncio.gather(*(kit.new_member(insured_region, **profiles[index % len(profiles)])
                                     for index in range(30)))
    plans = []
    for index, member in enumerate(members):
        region = treating_regions[index % len(treating_regions)]
        hospital_code, level = kit.hospitals(region)[index % len(kit.hospitals(region))]
        bill = generate_bill(700 + index, kit.catalogue_rows(region), region, hospital_code, level, "2026-05-04")
        plans.append((member, region, bill))
    encounter_ids = await asyncio.gather(*(
        kit.open_encounter(bill["hospital"]["code"], member, kit.lines_from_bill(bill), bill["admitted_on"],
                           emergency=bill["emergency"], diagnoses=tuple(bill["diagnoses"]))
        for member, _, bill in plans))
    parties = ("clearinghouse", f"insured_{insured_region}")
    before = await kit.counts(*parties)

    answers = await asyncio.wait_for(settle_at_once(kit, [
        (region, encounter_id, bill["discharged_on"])
        for (_, region, bill), encounter_id in zip(plans, encounter_ids)]), timeout=60)

    failures = [answer for answer in answers if isinstance(answer, BaseException)]
    assert not failures, failures
    settlements = [answer.settlement for answer in answers]
    assert all(s.status == types_pb2.SETTLEMENT_STATUS_SETTLED for s in settlements)
    cross = [s for s in settlements if not s.local]
    assert len(cross) == 25 and len(settlements) - len(cross) == 5

    after = await kit.counts(*parties)
    assert after[("insured_430100", "settlements")] - before[("insured_430100", "settlements")] == 30
    assert after[("clearinghouse", "claims")] - before[("clearinghouse", "claims")] == 25
    assert after[("clearinghouse", "ledger_transactions")] - before[("clearinghouse", "ledger_transactions")] == 25

    clearing = await kit.db("clearinghouse")
    insured = await kit.db(f"insured_{insured_region}")
    for (member, _, bill), settlement in zip(plans, settlements):
        split = settlement.adjudication.split
        assert split.total_fen == sum(line["amount_fen"] for line in bill["lines"])
        assert split.fund_pay_fen + split.psn_pay_fen == split.total_fen
        assert kit.ytd_dict(settlement.adjudication.ytd_before) == dict.fromkeys(kit.ytd_dict(start_of()), 0)
        assert kit.ytd_dict(await kit.accumulators(member)) == kit.ytd_dict(settlement.adjudication.ytd_after)
        sid = uuid.UUID(settlement.settlement_id)
        recorded = await insured.fetchrow("SELECT status, fund_pay_fen FROM settlements WHERE settlement_id = $1", sid)
        assert tuple(recorded) == ("settled", split.fund_pay_fen)
        if settlement.local:
            assert await kit.ledger(settlement.settlement_id) == {}
            continue
        claim = await clearing.fetchrow("SELECT status, total_fen, fund_pay_fen, psn_pay_fen FROM claims "
                                        "WHERE settlement_id = $1", sid)
        assert tuple(claim) == ("settled", split.total_fen, split.fund_pay_fen, split.psn_pay_fen)
        postings = await kit.ledger(settlement.settlement_id)
        assert list(postings) == ["settlement"]
        # The obligation and the draw on the prepayment: two legs each way.
        assert sorted(postings["settlement"].values()) == [-split.fund_pay_fen] * 2 + [split.fund_pay_fen] * 2


def start_of() -> types_pb2.Accumulators:
    """A fresh member's accumulators: all zero."""
    return types_pb2.Accumulators()
