"""The pieces of the year-end summary (年度清算): the year field, the open months, adding months up."""

from __future__ import annotations

import pytest
from clearinghouse.v1 import clearing_house_pb2 as ch

from clearing.dates import check_year
from clearing.errors import InvalidField
from services.clearinghouse import statements


@pytest.mark.parametrize("text", ["2000", "2026", "2100"])
def test_a_year_is_four_ascii_digits_in_range(text: str) -> None:
    assert check_year(text, "year") == text


@pytest.mark.parametrize("text", ["", "26", "02026", "2026-01", "1999", "2101", "２０２６", "20 6", None])
def test_anything_else_names_the_field(text: object) -> None:
    with pytest.raises(InvalidField) as caught:
        check_year(text, "year")
    assert caught.value.field == "year"


def test_open_months_are_the_unclosed_ones_with_obligations_and_the_current_month() -> None:
    closed = {"2026-01", "2026-02", "2026-03"}
    with_obligations = {"2026-01", "2026-02", "2026-03", "2026-05"}  # a later month with obligations is open too
    assert statements.open_months("2026", closed, with_obligations, "2026-04") == ["2026-04", "2026-05"]


def test_an_earlier_month_without_obligations_is_neither_closed_nor_open() -> None:
    assert statements.open_months("2026", {"2026-03"}, {"2026-03"}, "2026-04") == ["2026-04"]
    assert statements.open_months("2025", set(), set(), "2026-04") == []


def test_every_unclosed_month_with_obligations_of_a_past_year_is_open() -> None:
    assert statements.open_months("2025", {"2025-11"}, {"2025-11", "2025-12"}, "2026-04") == ["2025-12"]


def summary(month: str, owed_by: int, owed_to: int) -> ch.StatementSummary:
    return ch.StatementSummary(region="440100", month=month, entries_as_insured=1, entries_as_treating=2,
                               owed_by_fen=owed_by, owed_to_fen=owed_to, net_fen=owed_to - owed_by,
                               hifp_fen=owed_by - 10, hifmi_fen=10, maf_fen=0, psn_pay_fen=7)


def test_the_year_adds_the_months_up_figure_by_figure() -> None:
    totals = statements.add_up([summary("2026-01", 100, 300), summary("2026-02", 500, 50)])
    assert totals == ch.StatementTotals(closed_months=2, entries_as_insured=2, entries_as_treating=4, owed_by_fen=600,
                                        owed_to_fen=350, net_fen=-250, hifp_fen=580, hifmi_fen=20, maf_fen=0,
                                        psn_pay_fen=14)
    recomputed = {key: getattr(totals, key) for key in statements.TOTAL_KEYS}
    statements.check_totals(totals, recomputed)
    with pytest.raises(AssertionError, match="owed_by_fen"):
        statements.check_totals(totals, {**recomputed, "owed_by_fen": 601})


def test_a_month_summary_must_agree_with_the_closing_position() -> None:
    closing = ch.MonthClosing(month="2026-03", positions=[ch.NetPosition(region="440100", net_fen=200),
                                                          ch.NetPosition(region="430100", net_fen=-200)],
                              direct_transfers=[ch.Transfer(payer="430100", payee="440100", amount_fen=200)],
                              hub_transfers=[ch.Transfer(payer="430100", payee="clearinghouse", amount_fen=200),
                                             ch.Transfer(payer="clearinghouse", payee="440100", amount_fen=200)])
    totals = {key: 0 for key in statements.TOTAL_KEYS} | {"owed_to_fen": 200}
    made = statements.month_summary("440100", closing, totals)
    assert (made.month, made.net_fen) == ("2026-03", 200)
    assert list(made.transfers) == [ch.Transfer(payer="clearinghouse", payee="440100", amount_fen=200)], \
        "the statement shows the transfer that is paid: the hub's"
    with pytest.raises(AssertionError, match="disagree"):
        statements.month_summary("440100", closing, totals | {"owed_to_fen": 199})
