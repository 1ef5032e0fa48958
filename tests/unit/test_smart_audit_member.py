"""Sex and birth date from the ID number (身份证号) for smart audit at the treating agency."""

import random
from datetime import date

import pytest
from hypothesis import given, strategies as st

from clearing.errors import InvalidField
from clearing.smart_audit.report import member_facts_from_id_number
from services.datagen.identity import make_id_number


def test_a_hand_worked_number():
    facts = member_facts_from_id_number("43010219800229123X")  # 17th digit 3: odd, a man; born 1980-02-29
    assert (facts.sex, facts.birth_date) == ("M", date(1980, 2, 29))
    assert member_facts_from_id_number("430102200012310022").sex == "F"  # 17th digit 2: even, a woman


@pytest.mark.parametrize("number", ["43010219801301123X", "430102198002301234", "43010200000101123X",
                                    "4301021980010112", "43010219800101123", "4301021980010a123X"])
def test_a_number_without_a_real_birth_date_is_refused_naming_the_field(number):
    with pytest.raises(InvalidField) as raised:
        member_facts_from_id_number(number, "patient.id_number")
    assert raised.value.field == "patient.id_number"


@given(st.dates(date(1900, 1, 1), date(2026, 12, 31)), st.booleans(), st.integers(0, 2**32))
def test_the_datagen_number_gives_back_its_sex_and_birth_date(born, male, seed):
    number = make_id_number(random.Random(seed), "430102", born, male)
    facts = member_facts_from_id_number(number)
    assert facts.birth_date == born
    assert facts.sex == ("M" if male else "F")
