"""The hospitals' DRG payment, services side (issue 13): the treating agency lists its settled stays with their
grouping facts and an opaque member key (ListSettledStays), `clearing-admin drg weights --from-history` groups
them and prints the weights table, and the agency computes and posts the month's payment as ledger transfers
(CloseHospitalPaymentMonth). A module stack of its own, so the region's history is exactly these few stays; the
module's clock lives in March 2026 and moves on to close its months."""

from __future__ import annotations

import asyncio
import csv
import json
import uuid
from pathlib import Path

import asyncpg
import grpc
import pytest
from clearinghouse.v1 import treating_agency_pb2 as ta

from clearing.money import round_half_up_div
from services.common.regions import load_payment_params
from tests.integration.conftest import clearing_admin, write_stack_file

TREATING, INSURED = "440100", "610924"
H1, H2 = "H44010000001", "H44010000003"  # levels 3 and 2
YEAR, MONTH = "2026", "2026-03"  # the stays count in payout month March 2026 (the module's clock)


async def settle(kit, hospital: str, member, amount_fen: int, diagnoses: tuple[str, ...],  # noqa: ANN001
                 procedures: tuple[str, ...] = ()) -> str:
    line = kit.bill_line("1", kit.plain_codes(TREATING)[0], "1", amount_fen, "2026-03-03")
    encounter_id = await kit.open_encounter(hospital, member, [line], "2026-03-02", diagnoses=diagnoses)
    settled = await kit.treating(TREATING).Settle(ta.SettleRequest(
        request_id=kit.rid(), encounter_id=encounter_id, discharged_on="2026-03-06", procedures=list(procedures),
        discharge_status="1"))
    return settled.settlement.settlement_id


async def test_settled_stays_feed_the_weights_table(own_kit, timeline, tmp_path: Path) -> None:
    kit = own_kit
    timeline.at("2026-03-10")
    cross = [await kit.new_member(INSURED) for _ in range(3)]
    local = [await kit.new_member(TREATING) for _ in range(3)]
    # Six 腹腔镜胆囊切除 stays for cholelithiasis (HC29, ≥ 5 cases: its own weight), cross-region and local, at two
    # hospitals; one appendicitis stay of another ADRG (1 case, its ADRG has 1 too: no weight); one stay with the
    # demo diagnosis "J18.9", in no table of the grouper: "0000". A cancelled stay is not history.
    costs = [800_000, 900_000, 1_000_000, 1_100_000, 1_200_000, 1_300_000]
    for index, cost in enumerate(costs):
        await settle(kit, H1 if index % 2 else H2, (cross + local)[index], cost, ("K80.101",), ("51.2300",))
    await settle(kit, H1, cross[0], 600_000, ("K35.800x001",), ("47.0100",))
    await settle(kit, H2, local[0], 300_000, ("J18.9",))
    cancelled = await settle(kit, H1, local[1], 5_000_000, ("K80.101",), ("51.2300",))
    await kit.treating(TREATING).Cancel(ta.CancelRequest(request_id=kit.rid(), settlement_id=cancelled))

    answer = await kit.treating(TREATING).ListSettledStays(ta.ListSettledStaysRequest(period=YEAR))
    stays = list(answer.stays)
    assert len(stays) == 8 and cancelled not in {stay.settlement_id for stay in stays}
    month = (await kit.treating(TREATING).ListSettledStays(ta.ListSettledStaysRequest(period=stays[0].payout_month)))
    assert [stay.settlement_id for stay in month.stays] == [stay.settlement_id for stay in stays]
    by_cost = {stay.total_fen: stay for stay in stays}
    assert by_cost[800_000].insured_region == INSURED and not by_cost[800_000].local and by_cost[1_100_000].local
    assert list(by_cost[800_000].stay.procedures) == ["51.2300"] and by_cost[800_000].stay.hospital_code == H2
    # The member key links a member's stays and shows neither the ID number nor the member id.
    assert by_cost[800_000].member_key == by_cost[600_000].member_key != by_cost[900_000].member_key
    for member in cross + local:
        assert all(member.id_number not in str(stay) and member.member_id not in str(stay) for stay in stays)
    assert (await kit.treating(TREATING).ListSettledStays(ta.ListSettledStaysRequest(period="2001"))).stays == []

    config = str(write_stack_file(kit.stack, tmp_path / "stack.json"))
    code, out, err = await clearing_admin("drg", "weights", TREATING, "--from-history", "--year", YEAR,
                                          "--config", config, "--json", "--csv", str(tmp_path / "w.csv"))
    assert code == 0, err
    result = json.loads(out)
    # RW = (S_g / n_g) / (S / N) to 4 decimals from the exact sums; base points = RW × 100.
    total = sum(costs) + 600_000 + 300_000
    rw_e4 = round_half_up_div(sum(costs) * 8 * 10_000, 6 * total)
    assert result["grouping"] == {"stays": 8, "grouped": 7, "grouped_share_bp": 8750,
                                  "ungroupable_by_reason": {"unknown_code": 1}}
    assert (result["all_cases"], result["all_cost_fen"]) == (8, total)
    assert result["weights"] == [{"drg": "HC29", "name_zh": result["weights"][0]["name_zh"],
                                  "rw": f"{rw_e4 // 10_000}.{rw_e4 % 10_000:04d}",
                                  "base_points": f"{rw_e4 * 100 // 10_000}.{rw_e4 * 100 % 10_000:04d}"[:-2],
                                  "cases": 6, "average_cost_fen": 1_050_000, "source": "drg"}]
    assert "胆囊切除" in result["weights"][0]["name_zh"]
    with (tmp_path / "w.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["drg"], row["rw"], row["cases"]) for row in rows] == [("HC29", result["weights"][0]["rw"], "6")]

    code, out, err = await clearing_admin("drg", "weights", TREATING, "--from-history", "--config", config)
    assert code == 0, err
    assert "HC29" in out and "8 stays, 7 grouped (87.50 %); 0000: unknown_code 1" in out

    # The month, by hand with 440100's parameters (services/regions/payment/440100.toml): point value v (90 yuan),
    # advance 85 %, 调剂金 5 %, 差异系数 level 3 1.05 and level 2 0.95, the "fund_and_patients" budget form (the
    # advance is on points × value less what the DRG stays' patients paid). Every HC29 stay is normal (4 days;
    # cost 0.76–1.24 × the average 10,500 yuan): B × k points. The appendicitis stay is 单病种 (8,000 yuan, the
    # fund pays it less what its patient paid), the J18.9 one by item (its fund pay); H44010000004 is paid its
    # 总额预付 month: 6,000,000 × 90 % ÷ 12 yuan.
    month = stays[0].payout_month
    assert month == MONTH
    code, out, err = await clearing_admin("payment", "month", TREATING, month, "--config", config, "--json")
    assert code == 2 and "month" in err and "not closed" in err, err  # the payout month must be closed first
    timeline.at("2026-04-02")
    await kit.treating(TREATING).ClosePayoutMonth(ta.ClosePayoutMonthRequest(request_id=kit.rid(), month=MONTH))
    code, out, err = await clearing_admin("payment", "month", TREATING, month, "--config", config, "--json",
                                          "--csv", str(tmp_path / "m.csv"))
    assert code == 0, err
    paid = json.loads(out)
    base_e4 = rw_e4 * 100
    v = load_payment_params(TREATING).provisional_point_value_fen
    h1_points, h2_points = 3 * round_half_up_div(base_e4 * 10_500, 10_000), 3 * round_half_up_div(base_e4 * 9_500, 10_000)

    def patients(*cost_list: int) -> int:  # what those stays' patients paid at discharge
        return sum(by_cost[cost].total_fen - by_cost[cost].fund_pay_fen for cost in cost_list)

    def advance(points_e4: int, patients_fen: int) -> tuple[int, int]:
        whole = max(0, points_e4 * v - patients_fen * 10_000) * 8_500 // (10_000 * 10_000)  # down to the fen
        return whole, round_half_up_div(whole * 500, 10_000)

    rows = {row["hospital"]: row for row in paid["hospitals"]}
    assert set(rows) == {H1, H2, "H44010000004"}
    ps1, ps2 = patients(*costs[1::2]), patients(*costs[0::2])
    assert ps1 > 0 and ps2 > 0
    (a1, k1), (a2, k2) = advance(h1_points, ps1), advance(h2_points, ps2)
    fixed_fund = 800_000 - patients(600_000)
    assert (rows[H1]["cases"], rows[H1]["drg_cases"], rows[H1]["methods"]) == (4, 3, {"drg": 3, "fixed_price": 1})
    assert (rows[H1]["advance_fen"], rows[H1]["hold_back_fen"], rows[H1]["fixed_price_fen"]) == (a1, k1, fixed_fund)
    assert (rows[H1]["patients_fen"], rows[H1]["paid_fen"]) == (ps1, a1 - k1 + fixed_fund)
    assert (rows[H2]["methods"], rows[H2]["by_item_fen"]) == ({"by_item": 1, "drg": 3}, by_cost[300_000].fund_pay_fen)
    assert rows[H2]["paid_fen"] == a2 - k2 + by_cost[300_000].fund_pay_fen
    assert rows["H44010000004"]["global_budget_fen"] == rows["H44010000004"]["paid_fen"] == 45_000_000
    assert paid["total"]["paid_fen"] == sum(row["paid_fen"] for row in rows.values())
    # Cross-region DRG stays: members of 610924, the HC29 stays 0, 1, 2 (H2, H1, H2); the appendicitis stay of
    # cross[0] is 单病种, outside the balance. Gain = their fund pay − (points × v − their patients' share).
    cross_points = 2 * round_half_up_div(base_e4 * 9_500, 10_000) + round_half_up_div(base_e4 * 10_500, 10_000)
    fund = sum(by_cost[cost].fund_pay_fen for cost in costs[:3])
    cross_patients = patients(*costs[:3])
    cross_fen = round_half_up_div(cross_points * v, 10_000)
    assert paid["cross_region"] == {"cases": 3, "points": f"{cross_points // 10_000}.{cross_points % 10_000:04d}",
                                    "drg_payment_fen": cross_fen - cross_patients, "fund_pay_fen": fund,
                                    "patients_fen": cross_patients, "gain_fen": fund - cross_fen + cross_patients}
    assert paid["posted"] is False
    with (tmp_path / "m.csv").open(encoding="utf-8") as handle:
        assert [row["hospital"] for row in csv.DictReader(handle)] == sorted(rows)
    code, out, err = await clearing_admin("payment", "month", TREATING, month, "--config", config)
    assert code == 0, err
    assert "cross-region DRG stays: 3" in out and "the DRG budget" in out


async def ledger_of(db, month: str) -> dict[str, dict[str, int]]:  # noqa: ANN001
    """The payment transfers of `month`: hospital → {account: amount}; and every one balances."""
    rows = await db.fetch("SELECT t.tx_id, t.hospital_code, p.account, p.amount_fen FROM ledger_transactions t "
                          "JOIN ledger_postings p USING (tx_id) WHERE t.kind = 'payment' AND t.payment_period = $1",
                          month)
    result: dict[str, dict[str, int]] = {}
    for row in rows:
        result.setdefault(row["hospital_code"], {})[row["account"]] = row["amount_fen"]
    for legs in result.values():
        assert sum(legs.values()) == 0 and len(legs) >= 2
    return result


async def test_a_posted_month_settles_the_receivables(own_kit) -> None:
    """Posting March (after the first test closed its payout month): one balanced transfer per hospital, the
    month's receivables settled, the DRG budget bearing the rest; idempotent; never changed after."""
    kit = own_kit
    treating, db = kit.treating(TREATING), await kit.db(f"treating_{TREATING}")
    request = ta.CloseHospitalPaymentMonthRequest(month=MONTH, validate_only=True)
    preview = await treating.CloseHospitalPaymentMonth(request)
    assert not preview.posted and not preview.HasField("posted_at")
    assert await db.fetchval("SELECT count(*) FROM payment_closings") == 0  # validate_only writes nothing …
    assert await db.fetchval("SELECT count(*) FROM drg_weight_tables") == 0  # … and freezes nothing
    assert await ledger_of(db, MONTH) == {}

    # Two operators post the month at the same moment: one posts, the other waits and answers the stored result.
    posted, twin = await asyncio.gather(*(treating.CloseHospitalPaymentMonth(
        ta.CloseHospitalPaymentMonthRequest(month=MONTH)) for _ in range(2)))
    assert posted.posted and posted.weights_year == YEAR and kit.same_bytes(twin, posted)
    assert await db.fetchval("SELECT count(*) FROM payment_closings WHERE period = $1", MONTH) == 1
    assert await db.fetchval("SELECT count(*) FROM ledger_transactions WHERE kind = 'payment' AND payment_period = $1",
                             MONTH) == await db.fetchval(
        "SELECT count(DISTINCT hospital_code) FROM ledger_transactions WHERE kind = 'payment' AND payment_period = $1",
        MONTH) > 0, "one transfer per hospital"
    preview.posted = True
    preview.posted_at.CopyFrom(posted.posted_at)
    assert posted == preview  # a preview and a post compute the same thing
    hospitals = {item.hospital_code: item for item in posted.hospitals}
    transfers = await ledger_of(db, MONTH)
    # The month's receivable movements (settlements, cancels) per hospital, and the payout list's net R.
    moved = {row["hospital"]: row["fen"] for row in await db.fetch(
        "SELECT split_part(p.account, '/', 2) AS hospital, sum(p.amount_fen)::bigint AS fen FROM ledger_postings p "
        "JOIN ledger_transactions t USING (tx_id) WHERE t.payout_month = $1 AND p.account LIKE 'hospital/%/receivable' "
        "GROUP BY 1", MONTH)}
    assert {code: item.receivable_fen for code, item in hospitals.items() if item.receivable_fen} == moved
    budget = f"drg/{TREATING}/budget"
    for code, item in hospitals.items():
        legs = transfers[code]
        assert legs.get(f"hospital/{code}/receivable", 0) == -item.receivable_fen
        assert legs.get(f"hospital/{code}/held_back", 0) == item.hold_back_fen
        assert legs.get(f"hospital/{code}/paid", 0) == item.paid_fen
        assert legs.get(budget, 0) == -(item.paid_fen + item.hold_back_fen - item.receivable_fen)
        # after posting, the hospital's receivable of the payout month is 0
        assert moved.get(code, 0) + legs.get(f"hospital/{code}/receivable", 0) == 0
    assert hospitals["H44010000004"].global_budget_fen == 45_000_000  # no receivable: the budget pays it all
    balance = await db.fetchval("SELECT balance_fen FROM ledger_balances WHERE account = $1", budget)
    assert balance == sum(item.receivable_fen - item.paid_fen - item.hold_back_fen for item in posted.hospitals)
    assert await db.fetchval("SELECT weights_year FROM drg_weight_tables WHERE payment_year = $1", YEAR) == YEAR
    # The payout list still agrees with the ledger (the receivables before the payments that settled them).
    assert (await treating.ListPayouts(ta.ListPayoutsRequest(month=MONTH))).closed

    again = await treating.CloseHospitalPaymentMonth(ta.CloseHospitalPaymentMonthRequest(month=MONTH, weights_year=YEAR))
    assert kit.same_bytes(again, posted) and await ledger_of(db, MONTH) == transfers  # the stored answer
    stay_id = (await treating.ListSettledStays(ta.ListSettledStaysRequest(period=MONTH))).stays[0].settlement_id
    for changed, field in ((ta.CloseHospitalPaymentMonthRequest(month=MONTH, special_review_case_ids=[stay_id]),
                            "special_review_case_ids"),
                           (ta.CloseHospitalPaymentMonthRequest(month=MONTH, weights_year="2025"), "weights_year")):
        for validate_only in (False, True):
            changed.validate_only = validate_only
            error = await kit.refusal(treating.CloseHospitalPaymentMonth(changed))
            kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject=field)
    # The database keeps the posted month as it is, whoever writes.
    for statement in ("UPDATE payment_closings SET closed_at = now()", "DELETE FROM payment_closings",
                      "TRUNCATE payment_closings", "UPDATE drg_weight_tables SET weights_year = '2025'"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await db.execute(statement)
    with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError):  # a second payment of a posted period
        async with db.transaction():
            await db.execute("INSERT INTO ledger_transactions (kind, payment_period, hospital_code) "
                             "VALUES ('payment', $1, $2)", MONTH, H1)
    with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError):  # an unposted one without its closing
        async with db.transaction():
            await db.execute("INSERT INTO ledger_transactions (kind, payment_period, hospital_code) "
                             "VALUES ('payment', '2026-04', $1)", H1)
    with pytest.raises(asyncpg.CheckViolationError):  # only a payment has a payment period
        async with db.transaction():
            await db.execute("INSERT INTO ledger_transactions (settlement_id, kind, payout_month, payment_period) "
                             "VALUES ($1, 'dispute', '2026-04', '2026-04')", uuid.UUID(stay_id))


async def test_the_year_end_claws_back_and_releases_the_hold_backs(own_kit, timeline, tmp_path: Path) -> None:
    """After March: a year-to-date preview; then the module lives into January 2027, closes the year's other
    (empty) payout months, posts their payment months and clears the year."""
    kit = own_kit
    treating, db = kit.treating(TREATING), await kit.db(f"treating_{TREATING}")
    preview = await treating.CloseHospitalPaymentYear(ta.CloseHospitalPaymentYearRequest(year=YEAR, validate_only=True))
    # one month posted: against the fund budget × 1 ÷ 12 (440100's illustrative 10,000,000 yuan)
    budget_fen = load_payment_params(TREATING).year_budget_fen
    assert (preview.year_to_date, preview.months_posted, preview.fund_budget_fen, preview.posted) == (
        True, 1, budget_fen // 12, False)
    error = await kit.refusal(treating.CloseHospitalPaymentYear(ta.CloseHospitalPaymentYearRequest(year=YEAR)))
    kit.assert_refused(error, grpc.StatusCode.FAILED_PRECONDITION, subject="year")
    assert await ledger_of(db, YEAR) == {}

    timeline.at("2027-01-05")
    for number in range(1, 13):
        month = f"{YEAR}-{number:02d}"
        if month != MONTH:
            await treating.ClosePayoutMonth(ta.ClosePayoutMonthRequest(request_id=kit.rid(), month=month,
                                                                       allow_empty=True))
            empty = await treating.CloseHospitalPaymentMonth(ta.CloseHospitalPaymentMonthRequest(month=month))
            assert [(item.hospital_code, item.paid_fen) for item in empty.hospitals] == [("H44010000004", 45_000_000)]
    march = await treating.CloseHospitalPaymentMonth(ta.CloseHospitalPaymentMonthRequest(month=MONTH))
    year, twin = await asyncio.gather(*(treating.CloseHospitalPaymentYear(ta.CloseHospitalPaymentYearRequest(year=YEAR))
                                        for _ in range(2)))  # posted once, the other answers the stored result
    assert kit.same_bytes(twin, year)
    assert (year.posted, year.year_to_date, year.months_posted, year.fund_budget_fen) == (True, False, 12, budget_fen)
    rows = {item.hospital_code: item for item in year.hospitals}
    # 总额预付, no stays: annual 6,000,000 yuan (90 % a month: 450,000) against a cost of 0 keeps 60 % → 3,600,000;
    # it was advanced 12 × 450,000 = 5,400,000: a clawback (追回) of 1,800,000 yuan.
    budgeted = rows.pop("H44010000004")
    assert (budgeted.global_budget, budgeted.payment_fen, budgeted.final_fen, budgeted.advances_paid_fen,
            budgeted.settlement_fen) == (True, 600_000_000, 360_000_000, 540_000_000, -180_000_000)
    # DRG: the gross budget shared by points; Σ (payment − patients' share) is the fund budget to the fen.
    assert sum(item.payment_fen - item.patients_fen for item in rows.values()) == budget_fen
    assert year.gross_budget_fen == budget_fen + sum(item.patients_fen for item in rows.values())
    numerator, denominator = map(int, year.point_value_exact.split("/"))
    assert numerator * sum(item.points_e4 for item in rows.values()) == year.gross_budget_fen * 10_000 * denominator
    advanced = {item.hospital_code: item for item in march.hospitals}
    for code, item in rows.items():
        assert item.advances_paid_fen == advanced[code].advance_fen - advanced[code].hold_back_fen
        assert (item.held_back_fen, item.patients_fen) == (advanced[code].hold_back_fen, advanced[code].patients_fen)
        assert item.settlement_fen == item.final_fen - item.patients_fen - item.advances_paid_fen
    # The year's transfers: the hold-backs released, the settlement paid (or clawed back), the budget the rest.
    transfers = await ledger_of(db, YEAR)
    budget = f"drg/{TREATING}/budget"
    for item in year.hospitals:
        legs = transfers[item.hospital_code]
        assert legs.get(f"hospital/{item.hospital_code}/held_back", 0) == -item.held_back_fen
        assert legs.get(f"hospital/{item.hospital_code}/paid", 0) == item.settlement_fen
        assert legs.get(budget, 0) == -(item.settlement_fen - item.held_back_fen)
    assert transfers["H44010000004"] == {"hospital/H44010000004/paid": -180_000_000, budget: 180_000_000}
    held = await db.fetch("SELECT account, balance_fen FROM ledger_balances WHERE account LIKE 'hospital/%/held_back'")
    assert held and all(row["balance_fen"] == 0 for row in held)  # every 调剂金 released
    again = await treating.CloseHospitalPaymentYear(ta.CloseHospitalPaymentYearRequest(year=YEAR))
    assert kit.same_bytes(again, year) and await ledger_of(db, YEAR) == transfers
    config = str(write_stack_file(kit.stack, tmp_path / "stack.json"))
    code, out, err = await clearing_admin("payment", "year", TREATING, YEAR, "--config", config, "--json",
                                          "--chart", str(tmp_path / "y.png"), "--csv", str(tmp_path / "y.csv"))
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["posted"], shown["year_to_date"], shown["point_value"]["exact_fen"]) == (
        True, False, year.point_value_exact)
    assert [(row["hospital"], row["settlement_fen"]) for row in shown["hospitals"]] == [
        (item.hospital_code, item.settlement_fen) for item in year.hospitals]
    assert (tmp_path / "y.png").stat().st_size > 0
    with (tmp_path / "y.csv").open(encoding="utf-8") as handle:
        assert [row["hospital"] for row in csv.DictReader(handle)] == [item.hospital_code for item in year.hospitals]


async def test_bad_input_is_exit_2_naming_the_field(own_kit, tmp_path: Path) -> None:
    config = str(write_stack_file(own_kit.stack, tmp_path / "stack.json"))
    # The refusals that need the treating agency; the argument checks are tests/unit/test_cli_payment_arguments.py.
    for arguments, named in ((("drg", "weights", "999999", "--from-history"), "region"),
                             (("payment", "month", "440100", "2001-01", "--weights-year", "2001"),
                              "month: payout month 2001-01 is not closed")):
        code, out, err = await clearing_admin(*arguments, "--config", config)
        assert code == 2 and out == "" and err.startswith("error: ") and named in err, (arguments, err)
    error = await own_kit.refusal(own_kit.treating(TREATING).ListSettledStays(ta.ListSettledStaysRequest(
        period="2026-3")))
    own_kit.assert_refused(error, grpc.StatusCode.INVALID_ARGUMENT, field="period")
