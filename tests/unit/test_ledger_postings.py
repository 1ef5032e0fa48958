"""Ledger postings (SPEC §6): `clearing/ledger.py`, worked by hand."""

from __future__ import annotations

import pytest

from clearing.ledger import Posting, check_payouts_match_ledger, mirror, payout_postings, settlement_postings


def test_a_cross_region_stay_owes_the_hospital_against_the_insured_regions_payable() -> None:
    assert payout_postings("H44010000001", "440100", "430100", 12_345) == (
        Posting("hospital/H44010000001/receivable", 12_345), Posting("insured/430100/payable/440100", -12_345))


def test_the_agencys_counter_leg_is_the_clearing_houses_account_of_the_same_obligation() -> None:
    at_agency = {item.account: item.amount_fen for item in payout_postings("H44010000001", "440100", "430100", 900)}
    at_clearing_house = {item.account: item.amount_fen for item in settlement_postings("440100", "430100", 900)}
    assert at_agency["insured/430100/payable/440100"] == at_clearing_house["insured/430100/payable/440100"]


def test_a_local_stay_owes_the_hospital_against_the_regions_own_fund() -> None:
    assert payout_postings("H44010000001", "440100", "440100", 500) == (
        Posting("hospital/H44010000001/receivable", 500), Posting("fund/440100/payable", -500))


def test_nothing_is_posted_when_the_funds_pay_nothing() -> None:
    assert payout_postings("H44010000001", "440100", "430100", 0) == ()


def test_the_clearing_house_posts_nothing_either_when_the_funds_pay_nothing() -> None:
    assert settlement_postings("440100", "430100", 0) == ()
    assert mirror(settlement_postings("440100", "430100", 0)) == ()  # nor for its cancel or reversal


def test_a_cancel_posts_the_mirror() -> None:
    assert mirror(payout_postings("H44010000001", "440100", "440100", 500)) == (
        Posting("hospital/H44010000001/receivable", -500), Posting("fund/440100/payable", 500))


@pytest.mark.parametrize(("hospital", "fund_pay_fen"), [("H43010000001", 100), ("H44010000001", -1)])
def test_a_hospital_of_another_region_or_a_negative_amount_is_a_programming_error(hospital: str,
                                                                                   fund_pay_fen: int) -> None:
    with pytest.raises(AssertionError):
        payout_postings(hospital, "440100", "430100", fund_pay_fen)


def test_payouts_and_receivables_agree_when_only_zeros_differ() -> None:
    check_payouts_match_ledger({"H1": 100, "H2": 0}, {"H1": 100, "H3": 0}, "2026-03")


@pytest.mark.parametrize("ledger", [{"H1": 99}, {"H1": 100, "H2": 1}, {}])
def test_payouts_and_receivables_that_disagree_are_refused(ledger: dict[str, int]) -> None:
    with pytest.raises(AssertionError, match="disagree over 2026-03"):
        check_payouts_match_ledger({"H1": 100}, ledger, "2026-03")


# ---------------------------------------------------------------------------------------------
# A region's monthly clearing (清算), issue 9 item 2
# ---------------------------------------------------------------------------------------------

# 430100 owes 440100 1,000.00 and 610924 200.00; 440100 owes 430100 300.00.
CELLS = (("430100", "440100", 100_000), ("430100", "610924", 20_000), ("440100", "430100", 30_000))


def test_a_net_debtor_closes_its_payables_and_receivables_and_gets_its_prepayment_back() -> None:
    from clearing.ledger import HUB_TRANSFERS, clearing_postings

    # 430100: owes 1,200.00, is owed 300.00 → net −900.00, paid in to the clearing house.
    assert clearing_postings("430100", CELLS) == (
        Posting("insured/430100/payable/440100", 100_000), Posting("insured/430100/payable/610924", 20_000),
        Posting("treating/430100/receivable/440100", -30_000),
        Posting("insured/430100/prepayment", 120_000), Posting("insured/430100/prepayment_drawn", -120_000),
        Posting(HUB_TRANSFERS, -90_000))


def test_a_net_creditor_is_paid_out_by_the_clearing_house() -> None:
    from clearing.ledger import HUB_TRANSFERS, clearing_postings

    # 440100: owed 1,000.00 by 430100, owes 300.00 to it → net +700.00.
    assert clearing_postings("440100", CELLS) == (
        Posting("insured/440100/payable/430100", 30_000), Posting("treating/440100/receivable/430100", -100_000),
        Posting("insured/440100/prepayment", 30_000), Posting("insured/440100/prepayment_drawn", -30_000),
        Posting(HUB_TRANSFERS, 70_000))
    # 610924 only treats: owed 200.00, nothing drawn on its own prepayment.
    assert clearing_postings("610924", CELLS) == (
        Posting("treating/610924/receivable/430100", -20_000), Posting(HUB_TRANSFERS, 20_000))


def test_a_month_whose_reversals_outweigh_its_settlements_draws_the_prepayment_down_again() -> None:
    from clearing.ledger import HUB_TRANSFERS, clearing_postings

    # A cancel in this month of an earlier month's stay: 430100's cell with 440100 is −50.00.
    cells = (("430100", "440100", -5_000),)
    assert clearing_postings("430100", cells) == (
        Posting("insured/430100/payable/440100", -5_000),
        Posting("insured/430100/prepayment", -5_000), Posting("insured/430100/prepayment_drawn", 5_000),
        Posting(HUB_TRANSFERS, 5_000))


def test_a_region_the_month_left_nothing_on_posts_nothing() -> None:
    from clearing.ledger import clearing_postings

    assert clearing_postings("530100", CELLS) == ()
    assert clearing_postings("430100", (("430100", "440100", 0),)) == ()
