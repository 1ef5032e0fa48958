"""Seeded outpatient special-disease patients and their visits (门诊慢特病, SPEC §13), for the HIS simulator and the
demo (no I/O).

* **Patients**: `special_patients` picks, deterministically per region and seed, about SPECIAL_SHARE_PCT % of a
  region's generated members and gives each one disease (hypertension and diabetes most often, then dialysis,
  outpatient cancer therapy and transplant) with a diagnosis inside the disease's national ICD prefixes. The stack's
  enrolment records their recognitions (2503) as the operator; the simulator knows them from the same draw.
* **Where**: most live away from home (异地长期居住, the case the issue opens with) and are treated at one hospital
  of another region every time; the rest at a hospital of their own region.
* **When**: dialysis three times a week (Monday, Wednesday, Friday, or Tuesday, Thursday, Saturday); a monthly
  prescription for hypertension, diabetes and transplant (one visit a month); chemotherapy cycles every 21 days.
* **What**: items of the treating region's catalogue, found by name: the disease's drugs (e.g. 二甲双胍, 胰岛素 for
  diabetes; 地平, 沙坦 for hypertension; 他克莫司, 环孢素 after a transplant; 促红素 for dialysis) and, for dialysis and
  chemotherapy, the session itself (血液透析, 化疗), among the rows whose `icd:` restriction the disease's national
  prefixes meet (the catalogue generator restricts the disease drugs to them). Quantities and prices are
  illustrative: a price cap if the row has one, else a typical price for the kind of item.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from clearing.money import line_amount_fen
from clearing.outpatient.icd import national_icd
from clearing.policy import Disease
from services.datagen.restrictions import restriction_satisfied

SPECIAL_SHARE_PCT = 6
AWAY_SHARE_PCT = 70
DISEASE_WEIGHTS = ((Disease.HYPERTENSION, 34), (Disease.DIABETES, 30), (Disease.DIALYSIS, 16),
                   (Disease.CANCER_THERAPY, 12), (Disease.TRANSPLANT, 8))
DIAGNOSES = {  # an ICD-10 (医保版) code inside each disease's national prefixes (clearing/outpatient/icd.py)
    Disease.HYPERTENSION: ("I10.x00", "I11.900", "I12.900"),
    Disease.DIABETES: ("E11.900", "E10.900", "E14.900"),
    Disease.DIALYSIS: ("N18.500", "Z99.200", "Z49.100"),
    Disease.CANCER_THERAPY: ("C34.100", "C50.900", "C16.900", "C18.900", "Z51.100"),
    Disease.TRANSPLANT: ("Z94.000", "Z94.400", "T86.100"),
}
CHEMO_CYCLE_DAYS = 21
DIALYSIS_WEEKDAYS = ((0, 2, 4), (1, 3, 5))  # Mon/Wed/Fri or Tue/Thu/Sat
# (name keywords, kind, how many rows to bill at most, quantity range): the disease's items, by catalogue name.
ITEMS: dict[Disease, tuple[tuple[tuple[str, ...], str, int, tuple[int, int]], ...]] = {
    Disease.HYPERTENSION: ((("地平", "沙坦", "普利", "洛尔"), "drug", 2, (2, 4)),),
    Disease.DIABETES: ((("二甲双胍", "格列", "阿卡波糖", "胰岛素", "列汀"), "drug", 2, (2, 4)),),
    Disease.DIALYSIS: ((("血液透析",), "service", 1, (1, 1)), (("促红素", "蔗糖铁", "司维拉姆"), "drug", 1, (1, 2))),
    Disease.CANCER_THERAPY: ((("化疗", "放疗", "肿瘤"), "service", 1, (1, 1)),
                             (("顺铂", "卡铂", "紫杉", "培美曲塞", "吉西他滨", "奥沙利铂", "伊立替康"), "drug", 2, (1, 3))),
    Disease.TRANSPLANT: ((("他克莫司", "环孢素", "吗替麦考酚", "西罗莫司"), "drug", 2, (2, 4)),),
}
TYPICAL_PRICE_FEN = {"drug": (1500, 30000), "service": (20000, 60000), "consumable": (500, 5000)}


@dataclass(frozen=True, slots=True)
class SpecialPatient:
    """A member with a recognised outpatient special disease, and where they are treated."""

    insured_region: str
    member_index: int
    disease: Disease
    diagnosis: str
    treating_region: str
    hospital_index: int  # into the treating region's hospitals: the same hospital every visit
    seed: int


def is_special(region: str, member_index: int, seed: int) -> Disease | None:
    """The member's recognised disease, or None (most members have none)."""
    rng = random.Random(f"special:{seed}:{region}:{member_index}")
    if rng.randrange(100) >= SPECIAL_SHARE_PCT:
        return None
    return rng.choices([item for item, _ in DISEASE_WEIGHTS], weights=[weight for _, weight in DISEASE_WEIGHTS])[0]


def recognised(region: str, member_index: int, seed: int) -> tuple[Disease, str] | None:
    """The member's recognised disease and the diagnosis it rests on (what enrolment records, 2503), or None."""
    disease = is_special(region, member_index, seed)
    if disease is None:
        return None
    return disease, random.Random(f"special-diagnosis:{seed}:{region}:{member_index}").choice(DIAGNOSES[disease])


def special_patients(region: str, members_per_region: int, seed: int, regions: list[str]) -> list[SpecialPatient]:
    """The region's members with a recognised disease, in member order, each with their treating hospital."""
    patients = []
    for index in range(members_per_region):
        found = recognised(region, index, seed)
        if found is None:
            continue
        rng = random.Random(f"special-where:{seed}:{region}:{index}")
        others = [code for code in sorted(regions) if code != region]
        treating = rng.choice(others) if others and rng.randrange(100) < AWAY_SHARE_PCT else region
        patients.append(SpecialPatient(region, index, found[0], found[1], treating, rng.randrange(1 << 16),
                                       rng.randrange(1 << 31)))
    return patients


def visit_days(patient: SpecialPatient, month_start: date, until: date) -> list[date]:
    """The patient's visit days in the month of `month_start`, none after `until`."""
    rng = random.Random(f"visit-days:{patient.seed}:{month_start.isoformat()}")
    end = (month_start.replace(day=28) + timedelta(days=4)).replace(day=1)
    days = [month_start + timedelta(days=offset) for offset in range((end - month_start).days)]
    if patient.disease is Disease.DIALYSIS:
        weekdays = DIALYSIS_WEEKDAYS[patient.seed % 2]
        chosen = [day for day in days if day.weekday() in weekdays]
    elif patient.disease is Disease.CANCER_THERAPY:
        # The cycles run on from the patient's first (a fixed day of the year), CHEMO_CYCLE_DAYS apart.
        first = date(month_start.year, 1, 1) + timedelta(days=patient.seed % CHEMO_CYCLE_DAYS)
        chosen = [day for day in days if (day - first).days % CHEMO_CYCLE_DAYS == 0]
    else:
        chosen = [days[rng.randrange(min(len(days), 26))]]  # the monthly prescription (a weekday or so)
    return [day for day in chosen if day <= until]


def visit_lines(patient: SpecialPatient, day: date, catalogue_rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The visit's lines, in the §13.3 bill shape, from rows of the treating region's catalogue valid on `day`."""
    rng = random.Random(f"visit-lines:{patient.seed}:{day.isoformat()}")
    lines: list[dict[str, Any]] = []
    for keywords, kind, most, (low, high) in ITEMS[patient.disease]:
        found = sorted({row["local_code"]: row for row in catalogue_rows
                        if row["kind"] == kind and any(word in row["name"] for word in keywords)
                        and restriction_satisfied(row["restriction"], national_icd(patient.disease))
                        and row["valid_from"] <= day.isoformat() and (not row["valid_to"]
                                                                      or day.isoformat() <= row["valid_to"])}.items())
        # The patient's own regimen: the same items every visit (the first draw is by patient, not by day).
        regimen = random.Random(f"regimen:{patient.seed}:{kind}")
        for _, row in regimen.sample(found, min(most, len(found))):
            cap = row["price_cap_fen"]
            lowest, highest = TYPICAL_PRICE_FEN[kind]
            unit_price_fen = int(cap) if cap else regimen.randrange(lowest, highest)
            qty = str(rng.randint(low, high))
            lines.append({"line_id": str(len(lines) + 1), "code": row["local_code"], "qty": qty,
                          "unit_price_fen": unit_price_fen, "amount_fen": line_amount_fen(int(qty) * 10_000, unit_price_fen),
                          "service_date": day.isoformat()})
    return lines
