"""The stay's 病案首页 facts (clearing/medical_record.py): validation naming the field, ages from the birth date, the
grouper's case, and the money never depending on them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.bill import bill_from_dict
from clearing.catalogue import parse_catalogue_csv
from clearing.drg import group
from clearing.errors import InvalidField
from clearing.medical_record import MedicalRecord, ages_at, drg_case, record_from_dict
from clearing.member import member_from_dict
from clearing.policy import parse_policy
from clearing.quote import quote
from services.drg.reference import load_tables
from tests.unit.test_cli_offline import BILL, MEMBER, POLICY, catalog_text


def refused(data: dict, field: str) -> str:
    with pytest.raises(InvalidField) as caught:
        record_from_dict(data)
    assert caught.value.field == field, caught.value
    return caught.value.reason


def test_nothing_given_is_a_record_of_nothing():
    assert record_from_dict({}) == MedicalRecord()
    assert record_from_dict({"procedures": [], "discharge_status": "", "sex": None}) == MedicalRecord()


def test_a_full_record_is_kept_as_given():
    record = record_from_dict({"procedures": ["51.2300", "00.5500x008"], "sex": "F", "age_years": 0, "age_days": 3,
                               "birth_weight_g": 2450, "discharge_status": "2"})
    assert record == MedicalRecord(("51.2300", "00.5500x008"), "F", 0, 3, 2450, "2")
    assert record_from_dict(record.as_dict()) == record


@pytest.mark.parametrize(("data", "field", "reason"), [
    ({"procedures": "51.2300"}, "procedures", "list"),
    ({"procedures": ["51.2300", "cholecystectomy"]}, "procedures[1]", "ICD-9-CM3"),
    ({"procedures": ["5123"]}, "procedures[0]", "ICD-9-CM3"),
    ({"procedures": ["51.23.00"]}, "procedures[0]", "ICD-9-CM3"),
    ({"procedures": [51.23]}, "procedures[0]", "ICD-9-CM3"),
    ({"procedures": ["51.2300", "51.2300"]}, "procedures", "twice"),
    ({"procedures": [f"51.{n:04d}" for n in range(33)]}, "procedures", "at most 32"),
    ({"sex": "X"}, "sex", "M or F"),
    ({"sex": "m"}, "sex", "M or F"),
    ({"age_years": -1}, "age_years", "between 0 and 150"),
    ({"age_years": True}, "age_years", "whole number"),
    ({"age_years": 2.0}, "age_years", "whole number"),
    ({"age_years": 0, "age_days": 366}, "age_days", "between 0 and 365"),
    ({"age_days": 10}, "age_years", "with age_days"),
    ({"age_years": 1, "age_days": 10}, "age_days", "under one year"),
    ({"age_years": 30, "birth_weight_g": 3000}, "birth_weight_g", "under one year"),
    ({"age_years": 0, "birth_weight_g": 0}, "birth_weight_g", "between 1 and 9999"),
    ({"discharge_status": "6"}, "discharge_status", "离院方式"),
    ({"discharge_status": 1}, "discharge_status", "离院方式"),
])
def test_a_bad_fact_is_refused_naming_its_field(data, field, reason):
    assert reason in refused(data, field)


@pytest.mark.parametrize(("born", "admitted", "ages"), [
    (date(2026, 2, 20), date(2026, 3, 2), (0, 10)),  # February 2026 has 28 days
    (date(2026, 3, 2), date(2026, 3, 2), (0, 0)),  # admitted the day of birth
    (date(2025, 3, 2), date(2026, 3, 1), (0, 364)),
    (date(2025, 3, 2), date(2026, 3, 2), (1, None)),  # the first birthday counts on the day
    (date(1960, 7, 15), date(2026, 7, 14), (65, None)),
    (date(1960, 7, 15), date(2026, 7, 15), (66, None)),
    (date(2000, 2, 29), date(2026, 2, 28), (25, None)),  # a 29 February birthday falls on 1 March
    (date(2000, 2, 29), date(2026, 3, 1), (26, None)),
])
def test_ages_on_the_admission_day(born, admitted, ages):
    assert ages_at(born, admitted) == ages


def anniversary(born: date, years: int) -> date:
    """The `years`-th birthday; a 29 February birthday is kept on 1 March in other years."""
    try:
        return born.replace(year=born.year + years)
    except ValueError:
        return date(born.year + years, 3, 1)


@given(st.dates(date(1900, 1, 1), date(2026, 12, 31)), st.integers(0, 60_000))
def test_ages_agree_with_the_birthdays(born, days):
    admitted = born + timedelta(days=days)
    years, age_days = ages_at(born, admitted)
    assert anniversary(born, years) <= admitted < anniversary(born, years + 1)
    assert age_days == (days if years == 0 else None)


def test_the_grouper_case_needs_sex_and_age_and_full_codes():
    record = MedicalRecord(procedures=("51.2300",), sex="F", age_years=52, discharge_status="1")
    case = drg_case(("K80.101", "I10.x00x002"), record, 4)
    assert case is not None and case.main_procedure == "51.2300" and case.other_diagnoses == ("I10.x00x002",)
    result = group(case, load_tables())
    assert (result.mdc, result.adrg, result.drg) == ("MDCH", "HC2", "HC29")  # 胆囊切除手术
    assert drg_case(("K80.101",), MedicalRecord(procedures=("51.2300",)), 4) is None  # no sex, no age
    assert drg_case(("c34.1",), record, 4) is None  # a lower-case demo code is not 医保版
    # Without a discharge status the grouper gets 医嘱离院; the grouping never reads it.
    assert drg_case(("K80.101",), MedicalRecord(sex="M", age_years=40), 4).discharge_status.value == "1"


def test_a_bill_takes_the_facts_and_the_old_shape_still_parses():
    assert bill_from_dict(BILL).record == MedicalRecord()
    bill = bill_from_dict({**BILL, "procedures": ["32.4100"], "sex": "M", "age_years": 61, "discharge_status": "1"})
    assert bill.record == MedicalRecord(("32.4100",), "M", 61, None, None, "1")


RECORDS = st.builds(
    lambda procedures, sex, age, status: {"procedures": procedures, "sex": sex, **age, "discharge_status": status},
    st.lists(st.from_regex(r"[0-9]{2}\.[0-9]{4}(x[0-9]{3})?", fullmatch=True), max_size=7, unique=True),
    st.sampled_from([None, "M", "F"]),
    st.one_of(st.just({}), st.builds(lambda years: {"age_years": years}, st.integers(1, 150)),
              st.builds(lambda days, weight: {"age_years": 0, "age_days": days, "birth_weight_g": weight},
                        st.integers(0, 365), st.one_of(st.none(), st.integers(1, 9999)))),
    st.sampled_from([None, "1", "2", "3", "4", "5", "9"]))


@settings(max_examples=60, deadline=None)
@given(RECORDS)
def test_the_money_never_depends_on_the_facts(facts):
    catalogue = parse_catalogue_csv(catalog_text(), region="440100")
    member, ytd = member_from_dict(MEMBER)
    policy = parse_policy(POLICY)
    plain = quote(bill_from_dict(BILL), catalogue, member, policy, ytd)
    with_facts = quote(bill_from_dict({**BILL, **facts}), catalogue, member, policy, ytd)
    assert with_facts == plain
