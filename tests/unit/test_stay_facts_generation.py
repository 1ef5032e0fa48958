"""Generated stays carry realistic, consistent 病案首页 facts (services/datagen/stay_facts.py): full 医保版 2.0 codes
that group to a real CHS-DRG 1.1 group, operations that fit the diagnosis, the patient's sex and age, newborn
facts, mostly 医嘱离院 — drawn without touching the bill's own draws, so the lines and the money stay as seeded."""

from __future__ import annotations

import collections
import functools
from datetime import date, timedelta

import pytest

import services.datagen.bills as bills
from clearing.drg import group
from clearing.medical_record import MedicalRecord, drg_case, record_from_dict
from clearing.smart_audit.model import MemberFacts
from clearing.smart_audit.report import member_facts_from_id_number
from services.datagen.bills import CatalogueIndex, generate_bill
from services.datagen.catalogue import generate_catalogue_rows
from services.datagen.population import generate_members
from services.datagen.stay_facts import INTERVENTION_PROCEDURES, PROCEDURES_BY_CATEGORY, pools, surgical
from services.drg.reference import load_tables

REGION, HOSPITAL, ADMITTED = "440100", "H44010000001", date(2026, 3, 1)


@functools.cache
def index() -> CatalogueIndex:
    return CatalogueIndex(generate_catalogue_rows(REGION, 2026))


def grouped(bill: dict):  # noqa: ANN201
    nights = (date.fromisoformat(bill["discharged_on"]) - date.fromisoformat(bill["admitted_on"])).days
    case = drg_case(tuple(bill["diagnoses"]), record_from_dict(bill), nights)
    assert case is not None
    return group(case, load_tables())


def test_a_months_stays_group_to_real_drgs_with_operations_that_fit():
    """Measured on 600 members of a generated population: every stay groups (not 0000), every operated stay but
    one or two in a surgical ADRG. The bar is 99 % and 97 %."""
    members = generate_members("430100", 600, 2026)
    results, operated, surgical_groups, statuses = [], 0, 0, collections.Counter()
    for seed, member in enumerate(members):
        patient = member_facts_from_id_number(member["id_number"])
        bill = generate_bill(seed, index(), REGION, HOSPITAL, 3, ADMITTED, patient=patient)
        result = grouped(bill)
        results.append(result)
        statuses[bill["discharge_status"]] += 1
        assert bill["sex"] == patient.sex
        principal = bill["diagnoses"][0]
        assert principal not in (pools().male_only if patient.sex == "F" else pools().female_only)
        if bill["procedures"]:
            operated += 1
            surgical_groups += surgical(result.adrg)
            main = bill["procedures"][0]
            fitting = (*PROCEDURES_BY_CATEGORY.get(principal[:3], ()), *INTERVENTION_PROCEDURES)
            assert main.startswith(fitting), (principal, bill["procedures"])
    share = sum(result.grouped for result in results) / len(results)
    assert share >= 0.99, [result.reason for result in results if not result.grouped]
    assert operated > 100 and surgical_groups >= 0.97 * operated
    assert len({result.drg for result in results}) > 60  # a spread of groups, not a handful
    assert statuses["1"] > 0.85 * len(results) and len(statuses) >= 4  # mostly 医嘱离院, some others


@pytest.mark.parametrize("days_old", [0, 9, 28, 200, 364])
def test_an_infant_gets_a_newborn_principal_diagnosis_age_in_days_and_a_birth_weight(days_old):
    patient = MemberFacts("F", ADMITTED - timedelta(days=days_old))
    for seed in range(8):
        bill = generate_bill(seed, index(), REGION, HOSPITAL, 3, ADMITTED, patient=patient)
        assert (bill["age_years"], bill["age_days"]) == (0, days_old)
        assert 1000 <= bill["birth_weight_g"] <= 4200 and bill["procedures"] == []
        assert bill["diagnoses"][0] in pools().newborn
        result = grouped(bill)
        assert result.mdc == "MDCP", result.reason
        # Newborn ADRGs need age_days ≤ 28; an older infant is PV1 (婴儿).
        assert (result.adrg == "PV1") == (days_old > 28), result.reason


def test_an_adult_has_no_newborn_facts_and_a_bill_without_a_patient_draws_sex_and_age():
    adult = MemberFacts("M", date(1950, 6, 1))
    bill = generate_bill(4, index(), REGION, HOSPITAL, 3, ADMITTED, patient=adult)
    assert (bill["sex"], bill["age_years"], bill["age_days"], bill["birth_weight_g"]) == ("M", 75, None, None)
    plain = generate_bill(4, index(), REGION, HOSPITAL, 3, ADMITTED)
    assert plain["sex"] in ("M", "F") and 18 <= plain["age_years"] <= 90
    assert generate_bill(4, index(), REGION, HOSPITAL, 3, ADMITTED) == plain  # seeded


@pytest.mark.parametrize("with_patient", [False, True])
def test_the_facts_draw_nothing_from_the_bills_generator(monkeypatch, with_patient):
    """With the facts stubbed out (the drawn categories kept), every line, quantity and price is the same: the
    facts have a generator of their own, and each full code extends the category the lines were picked for."""
    patient = MemberFacts("F", date(1970, 1, 1)) if with_patient else None
    real = [generate_bill(seed, index(), REGION, HOSPITAL, 2, ADMITTED, patient=patient) for seed in range(40)]
    monkeypatch.setattr(bills, "stay_facts", lambda rng, written, operation, who, nights: (list(written), MedicalRecord()))
    stubbed = [generate_bill(seed, index(), REGION, HOSPITAL, 2, ADMITTED, patient=patient) for seed in range(40)]
    for full, drawn in zip(real, stubbed, strict=True):
        assert full["lines"] == drawn["lines"] and full["emergency"] == drawn["emergency"]
        assert [code[:3] for code in full["diagnoses"]] == [code[:3] for code in drawn["diagnoses"]]
        # `C34.1` → `C34.1…` (or, when the tables have no such code, another `C34.…`).
        assert all(code.startswith((written, written[:3] + "."))
                   for code, written in zip(full["diagnoses"], drawn["diagnoses"], strict=True))
