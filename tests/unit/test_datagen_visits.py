"""The seeded outpatient special-disease patients and visits (services/datagen/visits.py): deterministic, the
diagnosis inside the disease's prefixes, dialysis three times a week, a monthly prescription, chemotherapy every 21
days, and lines of the treating catalogue whose `icd:` restrictions the disease's prefixes meet."""

from __future__ import annotations

from datetime import date, timedelta

from clearing.catalogue import parse_catalogue_csv
from clearing.classify import Reason, classify_bill
from clearing.outpatient.icd import national_icd
from clearing.outpatient.visit import visit_from_dict
from clearing.policy import Disease
from services.common.regions import load_regions
from services.datagen.catalogue import generate_catalogue_rows
from services.datagen.visits import SpecialPatient, recognised, special_patients, visit_days, visit_lines
from services.stack.enrol import catalogue_csv_text

REGIONS = sorted(load_regions())
OCTOBER = date(2026, 10, 1)


def patient(disease: Disease, seed: int = 5) -> SpecialPatient:
    return SpecialPatient("430100", 0, disease, "X", "440100", 0, seed)


def test_patients_are_deterministic_a_few_percent_and_recognised_within_their_disease():
    first = special_patients("430100", 400, 11, REGIONS)
    assert first == special_patients("430100", 400, 11, REGIONS)
    assert 8 <= len(first) <= 45  # about 6 % of 400
    for item in first:
        assert recognised("430100", item.member_index, 11) == (item.disease, item.diagnosis)
        code = item.diagnosis.upper().replace(".", "")
        assert any(code.startswith(prefix) for prefix in national_icd(item.disease))
    assert any(item.treating_region != "430100" for item in first)  # most live away from home
    assert len({item.disease for item in first}) >= 4


def test_dialysis_three_times_a_week_monthly_prescriptions_and_chemo_cycles():
    days = visit_days(patient(Disease.DIALYSIS), OCTOBER, date(2026, 10, 31))
    assert len({day.weekday() for day in days}) == 3 and 12 <= len(days) <= 14
    assert all((later - earlier).days in (2, 3) for earlier, later in zip(days, days[1:]))
    for disease in (Disease.DIABETES, Disease.HYPERTENSION, Disease.TRANSPLANT):
        assert len(visit_days(patient(disease), OCTOBER, date(2026, 10, 31))) == 1
    chemo = [day for month in range(1, 13)
             for day in visit_days(patient(Disease.CANCER_THERAPY), date(2026, month, 1), date(2026, 12, 31))]
    assert {(later - earlier).days for earlier, later in zip(chemo, chemo[1:])} == {21}
    assert visit_days(patient(Disease.DIALYSIS), OCTOBER, date(2026, 10, 9)) == [day for day in days
                                                                              if day <= date(2026, 10, 9)]


def test_lines_come_from_the_treating_catalogue_and_its_icd_restrictions_are_met():
    catalogue = parse_catalogue_csv(catalogue_csv_text("440100", 5), "440100")
    rows = generate_catalogue_rows("440100", 5)
    for disease in Disease:
        day = OCTOBER + timedelta(days=int(disease is Disease.DIALYSIS))
        lines = visit_lines(patient(disease), day, rows)
        assert lines, disease
        assert lines == visit_lines(patient(disease), day, rows)  # deterministic
        visit = visit_from_dict({"kind": "outpatient_special", "disease": disease.value, "region": "440100",
                                 "hospital": {"code": "H44010000001", "level": 3}, "visit_on": day.isoformat(),
                                 "lines": lines})
        classified = classify_bill(visit.for_classification(national_icd(disease)), catalogue)
        assert not [item for item in classified if item.reason is Reason.RESTRICTED], disease
