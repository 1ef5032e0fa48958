"""Statements (SPEC §7) as proto answers: a region's month summary, checked against the month's close,
and the year-end summary (年度清算) that adds the closed months up.

Pure conversion; the servicer loads the totals (store.statement_totals) and the stored closings.
"""

from __future__ import annotations

from collections.abc import Mapping

from clearinghouse.v1 import clearing_house_pb2 as pb
from clearinghouse.v1 import types_pb2

# The figures a statement summary adds up from its entries (store.statement_totals).
TOTAL_KEYS = ("entries_as_insured", "entries_as_treating", "owed_by_fen", "owed_to_fen", "hifp_fen", "hifmi_fen",
              "maf_fen", "psn_pay_fen", "adjustments_as_insured", "adjustments_as_treating", "adjusted_by_fen",
              "adjusted_to_fen")


# Of those, the outpatient special-disease visits' (med_type 14): store.statement_totals' `visit_…` figures.
VISIT_KEYS = ("entries_as_insured", "entries_as_treating", "owed_by_fen", "owed_to_fen")


def visit_figures(totals: Mapping[str, int]) -> pb.ClearingTypeFigures | None:
    """The visits' share of a statement; None when the region had no visit (a stays-only statement stays as it
    was before visits existed, field for field)."""
    if not any(totals.get(f"visit_{key}", 0) for key in VISIT_KEYS):  # figures of before visits: none
        return None
    return pb.ClearingTypeFigures(med_type=types_pb2.MED_TYPE_OUTPATIENT_SPECIAL,
                                  **{key: totals[f"visit_{key}"] for key in VISIT_KEYS})


def month_summary(region: str, closing: pb.MonthClosing, totals: Mapping[str, int],
                  clearing: pb.TransferStatus | None = None) -> pb.StatementSummary:
    """The region's summary of a closed month, from its entries' totals; the net position must be the
    one the close computed from the aggregates. `clearing` is the region's transfer status (None when the
    region had no part in the month)."""
    net_fen = totals["owed_to_fen"] - totals["owed_by_fen"]
    positions = {item.region: item.net_fen for item in closing.positions}
    # The statement is built from the settlements, the close from the aggregates: they must agree.
    assert net_fen == positions.get(region, 0), "statement and closing disagree"
    summary = pb.StatementSummary(
        region=region, month=closing.month, net_fen=net_fen,
        transfers=[item for item in closing.hub_transfers if region in (item.payer, item.payee)],
        outpatient_special=visit_figures(totals), **{key: totals[key] for key in TOTAL_KEYS})
    if clearing is not None:
        assert clearing.region == region and clearing.net_fen == net_fen
        summary.clearing.CopyFrom(clearing)
    return summary


def add_up(summaries: list[pb.StatementSummary]) -> pb.StatementTotals:
    """The months' summaries summed, figure by figure."""
    totals = pb.StatementTotals(closed_months=len(summaries))
    for summary in summaries:
        for key in (*TOTAL_KEYS, "net_fen"):
            setattr(totals, key, getattr(totals, key) + getattr(summary, key))
        if not summary.HasField("outpatient_special"):
            continue
        totals.outpatient_special.med_type = types_pb2.MED_TYPE_OUTPATIENT_SPECIAL
        for key in VISIT_KEYS:
            setattr(totals.outpatient_special, key,
                    getattr(totals.outpatient_special, key) + getattr(summary.outpatient_special, key))
    return totals


def check_totals(totals: pb.StatementTotals, recomputed: Mapping[str, int]) -> None:
    """Σ of the months equals the totals recomputed over all of them at once (one query, not per month)."""
    for key in TOTAL_KEYS:
        assert getattr(totals, key) == recomputed[key], f"months and year disagree on {key}"
    visits = visit_figures(recomputed)
    assert (totals.outpatient_special if totals.HasField("outpatient_special") else None) == visits, \
        "months and year disagree on the visits"
    assert totals.net_fen == recomputed["owed_to_fen"] - recomputed["owed_by_fen"], "months and year disagree on net"


def months_of(year: str) -> list[str]:
    return [f"{year}-{number:02d}" for number in range(1, 13)]


def open_months(year: str, closed: set[str], with_obligations: set[str], current_month: str) -> list[str]:
    """The months of `year` still to close: not closed, and either with obligations so far or the current
    month. An earlier month without obligations never gets any (postings clear in their commit month or
    later) and needs no close, so it is not listed."""
    return [month for month in months_of(year)
            if month not in closed and (month in with_obligations or month == current_month)]
