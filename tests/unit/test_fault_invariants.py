"""The fault harness's invariants (services/faults/invariants.py) that compare the HIS's journal with
the parties' rows, on hand-built rows: each breach a crash could cause is named with its ids.
(The SQL-backed checks — ledger, accumulators — run against real databases in tests/e2e.)"""

from __future__ import annotations

import uuid

from services.faults.invariants import (
    PartyRows, deductions_booked, no_pending, nothing_paid_unseen, parties_agree, refused_not_paid, succeeded_recorded,
    unknowns_resolved,
)
from services.faults.journal import Entry, Intent, Journal, Outcome, Split

SPLIT = Split(total_fen=100_000, fund_pay_fen=70_000, psn_pay_fen=30_000, hifp_fen=60_000, hifmi_fen=10_000,
              maf_fen=0)
AMOUNTS = {"total_fen": 100_000, "fund_pay_fen": 70_000, "psn_pay_fen": 30_000, "hifp_fen": 60_000,
           "hifmi_fen": 10_000, "maf_fen": 0}


def entry(outcome: Outcome, treating: str = "440100", insured: str = "430100") -> Entry:
    seen = outcome in (Outcome.SUCCEEDED, Outcome.CANCELLED)
    return Entry(request_id=str(uuid.uuid4()), index=0, treating_region=treating, insured_region=insured,
                 hospital_code=f"H{treating}00001", member_id="M43010000000001", encounter_id=str(uuid.uuid4()),
                 outcome=outcome, settlement_id=str(uuid.uuid4()), split=SPLIT if seen else None)


def record(rows: PartyRows, item: Entry, status: str, *, insured: bool = True, clearing: bool = True,
           ledger_net: int | None = None) -> None:
    """The parties' rows of `item` in `status`, as a correct run leaves them."""
    treating_row = {"settlement_id": item.settlement_id, "request_id": item.request_id, "encounter_id":
                    item.encounter_id, "status": status, "local": item.local, "region": item.treating_region,
                    **{key: AMOUNTS[key] for key in ("total_fen", "fund_pay_fen", "psn_pay_fen")}}
    rows.treating[item.request_id] = treating_row
    rows.treating_by_encounter.setdefault(item.encounter_id, []).append(treating_row)
    if insured:
        rows.insured[item.settlement_id] = {"member_id": item.member_id, "status": status, "region": item.insured_region,
                                            **AMOUNTS}
    if clearing and not item.local:
        rows.claims[item.settlement_id] = {"status": status, **AMOUNTS}
        cancels = int(status == "cancelled")
        rows.ledger[item.settlement_id] = {"settlements": 1, "cancels": cancels, "posted_fen": 70_000,
                                           "net_fen": 70_000 * (1 - cancels) if ledger_net is None else ledger_net}


def journal_of(*items: Entry) -> Journal:
    journal = Journal()
    for item in items:
        journal.add(item)
    return journal


def test_a_clean_run_passes_every_check():
    settled, cancelled, local = entry(Outcome.SUCCEEDED), entry(Outcome.CANCELLED), entry(Outcome.SUCCEEDED, "430100")
    failed = entry(Outcome.FAILED)
    rows = PartyRows()
    record(rows, settled, "settled")
    record(rows, cancelled, "cancelled")
    record(rows, local, "settled")
    record(rows, failed, "failed", insured=False, clearing=False)
    journal = journal_of(settled, cancelled, local, failed)
    checks = [succeeded_recorded(journal, rows), refused_not_paid(journal, rows), nothing_paid_unseen(journal, rows),
              parties_agree(rows), no_pending(rows), unknowns_resolved(journal)]
    assert [(check.name, check.failed) for check in checks if not check.ok] == []
    assert checks[0].checked == 3 and checks[1].checked == 2


def test_a_settlement_lost_at_the_insured_agency_is_named():
    lost = entry(Outcome.SUCCEEDED)
    rows = PartyRows()
    record(rows, lost, "settled", insured=False)
    check = succeeded_recorded(journal_of(lost), rows)
    assert check.failed == 1 and lost.request_id in check.failures[0] and "insured agency" in check.failures[0]


def test_a_split_that_differs_from_what_the_his_saw_is_named():
    differs = entry(Outcome.SUCCEEDED)
    rows = PartyRows()
    record(rows, differs, "settled")
    rows.claims[differs.settlement_id]["hifp_fen"] += 1
    assert "clearing house" in succeeded_recorded(journal_of(differs), rows).failures[0]


def test_a_second_live_settlement_of_one_encounter_is_named():
    twice = entry(Outcome.SUCCEEDED)
    rows = PartyRows()
    record(rows, twice, "settled")
    rows.treating_by_encounter[twice.encounter_id].append({"status": "settled"})
    assert "2 settlements" in succeeded_recorded(journal_of(twice), rows).failures[0]


def test_a_settlement_the_his_saw_fail_but_paid_downstream_is_named():
    failed = entry(Outcome.FAILED)
    rows = PartyRows()
    record(rows, failed, "failed", insured=False)
    rows.insured[failed.settlement_id] = {"status": "settled"}
    rows.ledger[failed.settlement_id]["net_fen"] = 70_000
    check = refused_not_paid(journal_of(failed), rows)
    assert check.failed == 1
    assert "insured agency" in check.failures[0] and "ledger net 70000" in check.failures[0]


def test_a_cancel_that_left_the_ledger_unreversed_is_named():
    cancelled = entry(Outcome.CANCELLED)
    rows = PartyRows()
    record(rows, cancelled, "cancelled", ledger_net=70_000)
    assert refused_not_paid(journal_of(cancelled), rows).failed == 1
    assert succeeded_recorded(journal_of(cancelled), rows).failed == 1


def test_money_paid_for_a_settlement_the_his_never_held_is_named():
    rows = PartyRows()
    orphan = entry(Outcome.UNKNOWN)
    record(rows, orphan, "settled")
    check = nothing_paid_unseen(Journal(), rows)
    assert check.checked == 3 and check.failed == 3  # treating agency, insured agency, clearing house


def test_pending_rows_and_unresolved_requests_are_named():
    stuck = entry(Outcome.UNKNOWN)
    stuck.unknown_answers = 2
    rows = PartyRows()
    record(rows, stuck, "pending", insured=False)
    assert no_pending(rows).failed == 2
    check = unknowns_resolved(journal_of(stuck))
    assert check.checked == 1 and stuck.request_id in check.failures[0]


def test_a_settlement_recorded_at_some_parties_only_is_named():
    half = entry(Outcome.SUCCEEDED)
    refused = entry(Outcome.FAILED)
    rows = PartyRows()
    record(rows, half, "settled")
    rows.claims[half.settlement_id]["status"] = "cancelled"
    record(rows, refused, "failed", clearing=False)
    rows.insured[refused.settlement_id]["status"] = "settled"  # refused at the treating agency, yet adjudicated
    check = parties_agree(rows)
    assert check.checked == 2 and check.failed == 2
    assert any(half.settlement_id in failure and "clearing house" in failure for failure in check.failures)
    assert any(refused.settlement_id in failure and "insured agency" in failure for failure in check.failures)


def test_a_request_the_his_walked_away_from_is_left_to_reconciliation_but_must_be_whole():
    walked = entry(Outcome.UNKNOWN)
    walked.intent = Intent.ABANDON
    walked.unknown_answers = 1
    rows = PartyRows()
    record(rows, walked, "settled")  # it went through: the hospital learns so from reconciliation
    journal = journal_of(walked)
    assert journal.unresolved() == [] and journal.abandoned() == [walked]
    assert nothing_paid_unseen(journal, rows).ok
    assert unknowns_resolved(journal).ok
    assert parties_agree(rows).ok
    rows.treating[walked.request_id]["status"] = "pending"
    assert not no_pending(rows).ok


def test_a_dispute_adjustment_the_treating_agency_never_booked_or_booked_otherwise_is_named():
    rows = PartyRows(adjustments={"d1": ("440100", 500), "d2": ("440100", 700)},
                     deductions={"d1": ("440100", 500), "d2": ("440100", 600)},
                     deduction_ledger={"440100": (1100, 1100), "430100": (0, 5)})
    check = deductions_booked(rows)
    assert not check.ok and check.checked == 2
    assert any("d2" in failure for failure in check.failures)
    assert any("430100" in failure for failure in check.failures)
    rows.deductions["d2"] = ("440100", 700)
    rows.deduction_ledger = {"440100": (1200, 1200)}
    assert deductions_booked(rows).ok
