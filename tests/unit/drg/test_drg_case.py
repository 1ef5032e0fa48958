"""C.json validation (clearing/drg/case.py): every bad field is refused with its name; good input round-trips."""

from __future__ import annotations

import pytest
from drg_cases import case_dict

from clearing.drg import case_from_dict, case_json
from clearing.errors import InvalidField


def test_a_valid_case_round_trips() -> None:
    data = case_dict("P07.200", ["P22.000"], ["96.0401"], sex="F", age_years=0, age_days=3, birth_weight_g=1200,
                     discharge_status="5")
    parsed = case_from_dict(data)
    assert parsed.main_procedure == "96.0401"
    assert case_json(parsed) == data


@pytest.mark.parametrize(("change", "field"), [
    ({"principal_diagnosis": ""}, "principal_diagnosis"),
    ({"principal_diagnosis": "i21.001"}, "principal_diagnosis"),  # the category letter is upper case
    ({"principal_diagnosis": None}, "principal_diagnosis"),
    ({"other_diagnoses": "E11.900"}, "other_diagnoses"),
    ({"other_diagnoses": ["E11.900", 7]}, "other_diagnoses[1]"),
    ({"other_diagnoses": ["E11.900"] * 32}, "other_diagnoses"),
    ({"procedures": ["36.06 01"]}, "procedures[0]"),
    ({"procedures": ["3606"]}, "procedures[0]"),
    ({"sex": "male"}, "sex"),
    ({"sex": 1}, "sex"),
    ({"age_years": -1}, "age_years"),
    ({"age_years": 67.5}, "age_years"),
    ({"age_years": True}, "age_years"),
    ({"age_years": "67"}, "age_years"),
    ({"age_days": 3}, "age_days"),  # only for age_years 0
    ({"age_years": 0, "age_days": 366}, "age_days"),
    ({"birth_weight_g": 0}, "birth_weight_g"),
    ({"birth_weight_g": 12000}, "birth_weight_g"),
    ({"los_days": None}, "los_days"),
    ({"discharge_status": 1}, "discharge_status"),
    ({"discharge_status": "6"}, "discharge_status"),
    ({"weight": 3}, "weight"),  # unknown field
])
def test_bad_input_names_the_field(change: dict, field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        case_from_dict({**case_dict("J80.x00"), **change})
    assert caught.value.field == field


def test_a_missing_field_is_named() -> None:
    data = case_dict("J80.x00")
    del data["los_days"]
    with pytest.raises(InvalidField) as caught:
        case_from_dict(data)
    assert (caught.value.field, caught.value.reason) == ("los_days", "missing")


def test_not_an_object() -> None:
    with pytest.raises(InvalidField, match="must be a JSON object"):
        case_from_dict(["J80.x00"])
