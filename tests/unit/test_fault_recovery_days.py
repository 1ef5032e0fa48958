"""Which days the fault harness reconciles (services/faults/recovery.py): every day a settlement of the run can
have been made on — from the HIS's first Settle through the day it recovers on — and the day the HIS matches
each of its requests on."""

from __future__ import annotations

import uuid
from datetime import date

from services.faults.journal import Entry, Journal
from services.faults.recovery import settlement_days


def sent(requested_on: str, settlement_day: str = "") -> Entry:
    return Entry(request_id=str(uuid.uuid4()), index=0, treating_region="440100", insured_region="430100",
                 hospital_code="H44010000001", member_id="M1", encounter_id=str(uuid.uuid4()),
                 discharged_on="2026-05-03", requested_on=requested_on, settlement_day=settlement_day)


def test_every_day_from_the_first_settle_through_today_whatever_the_discharge_days():
    journal = Journal()
    for item in (sent("2026-11-29", "2026-11-29"), sent("2026-11-29"), sent("2026-11-30", "2026-11-30")):
        journal.add(item)
    journal.add(Entry(request_id=str(uuid.uuid4()), index=1, treating_region="440100", insured_region="430100",
                      hospital_code="H44010000001", member_id="M1", encounter_id=""))  # no Settle was sent
    assert settlement_days(journal, date(2026, 12, 1)) == ["2026-11-29", "2026-11-30", "2026-12-01"], \
        "a Settle resent after midnight is made on a later day than it was first sent"
    assert settlement_days(Journal(), date(2026, 12, 1)) == []


def test_the_his_matches_a_request_on_the_day_its_answer_named_else_the_day_it_sent_it():
    assert sent("2026-11-29", "2026-11-30").day == "2026-11-30"
    assert sent("2026-11-29").day == "2026-11-29"
