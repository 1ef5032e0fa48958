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
