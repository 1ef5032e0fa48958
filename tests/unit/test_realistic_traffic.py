"""Realistic HIS traffic for smart audit (issue 12 item 4): bills that fit the patient with a seeded small share
of violations, and a run's plan that keeps each member's stays apart but for the odd overlap."""

import collections
import csv
import functools
import io
import random
from datetime import date, timedelta

from clearing.bill import make_bill, make_line
from clearing.catalogue import COLUMNS, parse_catalogue_csv
from clearing.smart_audit.model import MemberFacts
from clearing.smart_audit.rules import line_findings
from services.common.regions import load_regions
from services.common.smart_audit import load_audit_libraries
from services.datagen.bills import CatalogueIndex, generate_bill, stay_nights
from services.datagen.catalogue import generate_catalogue_rows
from services.his.plan import plan_discharge, plan_run

REGION = "440100"  # its rule library writes every default out: all nine rules enabled


@functools.cache
def catalogue_and_index():  # noqa: ANN201
    rows = generate_catalogue_rows(REGION, 2026)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return parse_catalogue_csv(buffer.getvalue(), REGION), CatalogueIndex(rows)


def audited(seed: int, patient: MemberFacts) -> tuple[dict, set[str]]:
    catalogue, index = catalogue_and_index()
    bill = generate_bill(seed, index, REGION, "H44010000001", 3, date(2026, 3, 1), patient=patient)
    lines = tuple(make_line(number, item["line_id"], item["code"], item["qty"], item["unit_price_fen"],
                            item["amount_fen"], item["service_date"]) for number, item in enumerate(bill["lines"]))
    stay = make_bill(REGION, "H44010000001", 3, bill["admitted_on"], bill["discharged_on"], False, bill["diagnoses"],
                     lines)
    libraries = load_audit_libraries(REGION)
    return bill, {item.rule_id.value for item in line_findings(stay, catalogue, libraries.knowledge,
                                                                 libraries.rules, patient)}


def test_a_patients_bill_is_billed_per_day_and_breaks_a_rule_only_where_a_violation_was_injected():
    rng = random.Random(5)
    injected, found = collections.Counter(), collections.Counter()
    for seed in range(150):
        patient = MemberFacts(rng.choice("MF"), date(1930, 1, 1) + timedelta(days=rng.randrange(30_000)))
        bill, rules = audited(seed, patient)
        injected.update(bill["violations"])
        found.update(rules)
        assert ("AUD-SEX" in rules) <= ("wrong_sex" in bill["violations"])
        assert ("AUD-AGE" in rules) <= ("wrong_age" in bill["violations"])
        assert ("AUD-BEDDAYS" in rules) == ("extra_bed_day" in bill["violations"])
        assert all(line["qty"] == "1" for line in bill["lines"][:3])  # bed, nursing, ward round: one a day
    assert sum(injected.values()) > 0, "the seeded share of violations is there"
    assert sum(found.values()) < 150 * 0.25, f"a small share of bills is flagged, not nearly all: {found}"


def test_a_bill_without_a_patient_is_drawn_as_before():
    _, index = catalogue_and_index()
    bill = generate_bill(3, index, REGION, "H44010000001", 3, date(2026, 3, 1))
    assert "violations" not in bill
    nights = (date.fromisoformat(bill["discharged_on"]) - date(2026, 3, 1)).days
    assert nights == stay_nights(3, REGION, "H44010000001", date(2026, 3, 1))


def overlaps(plans, nights) -> int:  # noqa: ANN001
    stays, count = collections.defaultdict(list), 0
    for plan in plans:
        out = plan.admitted_on + timedelta(days=nights(plan))
        key = (plan.insured_region, plan.member_index)
        count += any(plan.admitted_on < other_out and other_in < out for other_in, other_out in stays[key])
        stays[key].append((plan.admitted_on, out))
    return count


def test_a_runs_plan_keeps_members_stays_apart_but_for_the_odd_overlap():
    regions = load_regions()
    month = date(2026, 3, 1)
    plans = plan_run(7, 600, regions, 200, month)
    assert plans == plan_run(7, 600, regions, 200, month)  # deterministic
    for index in (0, 299, 599):  # only the member differs from the discharge's own draws
        drawn = plan_discharge(7, index, regions, 200, month)
        assert (plans[index].treating_region, plans[index].hospital_code, plans[index].admitted_on,
                plans[index].bill_seed) == (drawn.treating_region, drawn.hospital_code, drawn.admitted_on,
                                            drawn.bill_seed)
    def nights(plan):  # noqa: ANN001, ANN202
        return stay_nights(plan.bill_seed, plan.treating_region, plan.hospital_code, plan.admitted_on)
    drawn = [plan_discharge(7, index, regions, 200, month) for index in range(600)]
    assert 0 < overlaps(plans, nights) <= 600 * 3 // 100 < overlaps(drawn, nights)
