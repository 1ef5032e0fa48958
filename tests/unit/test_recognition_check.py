"""RecordSpecialDisease's check of a recognition against the region's policy (services/insured/servicer.py
`check_recognisable`): the diagnosis lies within the disease's ICD prefixes, and a disease without a policy section
is refused naming `outpatient_special.<disease>`."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from clearing.errors import InvalidField, PreconditionFailed
from clearing.policy import Disease, PolicyBook
from services.common.regions import load_policy_book
from services.insured.servicer import check_recognisable

BOOK = load_policy_book("430100")


@pytest.mark.parametrize(("disease", "diagnosis"), [
    (Disease.DIALYSIS, "N18.500"), (Disease.DIALYSIS, "z99.2"), (Disease.DIABETES, "E11.900"),
    (Disease.CANCER_THERAPY, "C34.1"), (Disease.CANCER_THERAPY, "Z51.1"), (Disease.TRANSPLANT, "T86.1"),
    (Disease.HYPERTENSION, "I10"),
])
def test_a_diagnosis_within_the_disease_is_accepted(disease, diagnosis):
    check_recognisable(BOOK, disease, diagnosis, date(2026, 3, 1))


@pytest.mark.parametrize(("disease", "diagnosis"), [
    (Disease.DIALYSIS, "E11.900"), (Disease.DIALYSIS, "N18.4"), (Disease.DIABETES, "E15"),
    (Disease.HYPERTENSION, "I14"), (Disease.CANCER_THERAPY, "D05.1"), (Disease.TRANSPLANT, "Z95"),
])
def test_a_diagnosis_outside_the_disease_is_refused_naming_it(disease, diagnosis):
    with pytest.raises(InvalidField) as raised:
        check_recognisable(BOOK, disease, diagnosis, date(2026, 3, 1))
    assert raised.value.field == "recognition.diagnosis"


def test_a_disease_the_policy_has_no_section_for_is_refused_naming_the_section():
    policy = BOOK.versions[-1]
    sections = {key: value for key, value in policy.outpatient_special.items() if key is not Disease.TRANSPLANT}
    book = PolicyBook("430100", (dataclasses.replace(policy, outpatient_special=sections),))
    with pytest.raises(PreconditionFailed) as raised:
        check_recognisable(book, Disease.TRANSPLANT, "Z94.0", date(2026, 3, 1))
    assert raised.value.subject == "outpatient_special.transplant"
    check_recognisable(book, Disease.DIALYSIS, "N18.500", date(2026, 3, 1))
