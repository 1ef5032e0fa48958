"""Demo-data generators (services/datagen) and region files (services/regions): SPEC §4.1, §5.1, §5.3.

The generators are seeded and pure, so these tests check determinism, the shape the SPEC
fixes, and the properties the other parties rely on (translation can be one-to-many or
unmapped, validity ranges never overlap, bill amounts add up).
"""

from __future__ import annotations

import collections
import random
import re
import statistics
import tomllib
from datetime import date
from functools import cache
from pathlib import Path

import pytest

from clearing.money import line_amount_fen, parse_qty_e4
from clearing.outpatient.icd import national_icd
from clearing.policy import Disease, parse_policy
from services.datagen import reference
from services.datagen.__main__ import main as datagen_main
from services.datagen.bills import LINES_MAX, LINES_MIN, CatalogueIndex, generate_bill, restriction_satisfied
from services.datagen.catalogue import (
    CATALOGUE_COLUMNS,
    disease_of_drug,
    generate_catalogue_rows,
    read_catalogue_csv,
    reference_price_fen,
    write_catalogue_csv,
)
from services.datagen.identity import id_check_char, is_valid_id_number
from services.datagen.national import ESSENTIAL, KINDS, national_item, national_items
from services.datagen.population import YTD_KEYS, generate_members
from services.datagen.regions import REGIONS_DIR, demo_region_codes, load_regions
from services.datagen.restrictions import icd_prefixes_for, icd_prefixes_of
from services.drg.reference import load_tables

SEED = 2026
DEMO_REGIONS = ("440100", "430100", "460100", "530100", "211100", "230400", "610924")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@cache
def catalogue(region: str, seed: int = SEED) -> tuple[dict[str, str], ...]:
    return tuple(generate_catalogue_rows(region, seed))


@cache
def catalogue_index(region: str) -> CatalogueIndex:
    return CatalogueIndex(catalogue(region))


def _versions_by_code(rows: tuple[dict[str, str], ...]) -> dict[str, list[dict[str, str]]]:
    by_code: dict[str, list[dict[str, str]]] = collections.defaultdict(list)
    for row in rows:
        by_code[row["local_code"]].append(row)
    return by_code


# --- catalogues ------------------------------------------------------------------------------


def test_catalogue_is_deterministic_for_region_and_seed():
    assert generate_catalogue_rows("610924", SEED) == list(catalogue("610924"))


def test_catalogue_differs_by_seed_and_by_region():
    assert generate_catalogue_rows("610924", SEED + 1) != list(catalogue("610924"))
    codes_a = {r["local_code"] for r in catalogue("440100")}
    codes_b = {r["local_code"] for r in catalogue("430100")}
    assert not codes_a & codes_b  # local codes carry the region


@pytest.mark.parametrize("region", DEMO_REGIONS)
def test_catalogue_rows_have_valid_values(region):
    rows = catalogue(region)
    assert 3000 <= len(rows) <= 10000
    categories = [c.code for c in reference.icd10_categories()]
    for row in rows:
        assert tuple(row) == CATALOGUE_COLUMNS
        assert row["local_code"].startswith(region)
        assert row["kind"] in KINDS
        assert row["relation"] in ("equivalent", "narrower", "wider")
        assert row["grade"] in ("A", "B", "C")
        assert row["name"]
        selfpay_bp = int(row["selfpay_bp"])
        if row["grade"] == "B":
            assert 500 <= selfpay_bp <= 3000
        else:
            assert selfpay_bp == 0
        assert row["price_cap_fen"] == "" or int(row["price_cap_fen"]) > 0
        assert ISO_DATE.match(row["valid_from"])
        assert row["valid_to"] == "" or ISO_DATE.match(row["valid_to"])
        for prefix in icd_prefixes_of(row["restriction"]):
            # a chapter letter or a category (C, C34), or a subcategory without its dot (Z510: Z51.0)
            assert any(c.startswith(prefix) or prefix.startswith(c) for c in categories), (row["local_code"], prefix)
        if row["national_code"]:
            item = national_item(row["national_code"])
            assert item is not None and item.kind == row["kind"]


@pytest.mark.parametrize("region", DEMO_REGIONS)
def test_validity_ranges_of_a_local_code_do_not_overlap(region):
    for code, versions in _versions_by_code(catalogue(region)).items():
        ranges = sorted((date.fromisoformat(r["valid_from"]), r["valid_to"]) for r in versions)
        for (_, earlier_to), (later_from, _) in zip(ranges, ranges[1:], strict=False):
            assert earlier_to, f"{code}: an open row is followed by another"
            assert date.fromisoformat(earlier_to) < later_from, code
        for row in ranges:
            assert row[1] == "" or row[0] <= date.fromisoformat(row[1])
        # one local code keeps one national code, relation and kind in every version (SPEC §4.3)
        assert len({(r["national_code"], r["relation"], r["kind"]) for r in versions}) == 1, code


def test_catalogue_has_every_kind_of_variation():
    rows = catalogue("440100")
    by_code = _versions_by_code(rows)
    assert sum(1 for versions in by_code.values() if len(versions) == 2) >= 50  # price or terms changed
    assert any(r["valid_to"].startswith("2025") for r in rows)  # expired items
    assert any(r["valid_from"] > "2025-06-30" and not r["valid_to"] for r in rows)  # late starters
    local_only = [r for r in rows if not r["national_code"]]
    assert local_only and any("院内制剂" in r["name"] for r in local_only)
    assert any("icd:" in r["restriction"] for r in rows)
    assert any(r["restriction"] and "icd:" not in r["restriction"] for r in rows)
    assert sum(1 for r in rows if r["price_cap_fen"]) > len(rows) // 10
    relations = collections.Counter(r["relation"] for r in rows)
    assert relations["equivalent"] > 0.9 * len(rows) and relations["narrower"] > 0 and relations["wider"] > 0
    grades = collections.Counter((r["kind"], r["grade"]) for r in rows)
    assert grades[("drug", "A")] and grades[("drug", "B")] and grades[("service", "C")]


def test_same_national_code_across_regions_and_some_absent():
    national_sets = {
        region: {r["national_code"] for r in catalogue(region) if r["national_code"]} for region in DEMO_REGIONS
    }
    shared = set.intersection(*national_sets.values())
    assert ESSENTIAL <= shared
    assert "XA02BC-W0015" in set.union(*national_sets.values())  # 奥美拉唑, No. 15 of 西药部分
    assert len(shared) > 3000
    # translation between two regions can be unmapped: each misses codes the other lists
    assert national_sets["440100"] - national_sets["430100"]
    assert national_sets["430100"] - national_sets["440100"]


def test_a_national_code_can_map_to_several_local_codes():
    local_codes = collections.defaultdict(set)
    for row in catalogue("530100"):
        if row["national_code"]:
            local_codes[row["national_code"]].add((row["local_code"], row["relation"]))
    several = {n: codes for n, codes in local_codes.items() if len(codes) > 1}
    assert len(several) >= 20
    assert all(any(rel == "narrower" for _, rel in codes) for codes in several.values())
    assert any(not any(rel == "equivalent" for _, rel in codes) for codes in several.values())  # lowest-code rule


def test_national_drug_codes_are_unique_and_link_repeats():
    codes = [item.national_code for item in national_items("drug")]
    assert len(codes) == len(set(codes)) == 3826
    oral, injection = national_item("XA02BC-W0015"), national_item("XA02BC-W0015-1")
    assert oral is not None and injection is not None
    assert oral.name.startswith("奥美拉唑") and injection.name.startswith("奥美拉唑")
    assert (oral.national_grade, injection.national_grade) == ("甲", "乙")
    assert all(len(item.national_code) == 15 for item in national_items("service"))
    assert all(item.national_code.startswith("C") for item in national_items("consumable"))


def test_reference_price_is_deterministic_and_plausible():
    for item in national_items("service")[:300]:
        price_fen = reference_price_fen(item.national_code, "service")
        assert price_fen == reference_price_fen(item.national_code, "service")
        assert 270 <= price_fen <= 330_000
    for item in national_items("consumable"):
        assert 900 <= reference_price_fen(item.national_code, "consumable") <= 2_200_000
    standard = next(i for i in national_items("drug") if i.payment_standard_fen)
    assert reference_price_fen(standard.national_code, "drug") == standard.payment_standard_fen


def test_some_caps_are_below_the_reference_price():
    below = 0
    for row in catalogue("440100"):
        if row["price_cap_fen"] and row["national_code"] and row["kind"] != "drug":
            below += int(row["price_cap_fen"]) < reference_price_fen(row["national_code"], row["kind"])
    assert below > 20


def test_catalogue_csv_round_trips(tmp_path: Path):
    rows = list(catalogue("211100"))
    path = tmp_path / "211100.csv"
    assert write_catalogue_csv(rows, path) == len(rows)
    assert path.read_text(encoding="utf-8").splitlines()[0] == ",".join(CATALOGUE_COLUMNS)
    assert read_catalogue_csv(path) == rows


def test_restriction_keywords_map_to_icd_prefixes():
    assert icd_prefixes_for("限EGFR突变阳性的非小细胞肺癌患者。") == ("C34",)
    assert icd_prefixes_for("限2型糖尿病患者。") == ("E10", "E11", "E14")
    assert icd_prefixes_for("限肺动脉高压。") == ("I27",)
    assert icd_prefixes_for("限晚期肿瘤患者。") == ("C",)
    assert icd_prefixes_for("限二线用药。") == ()
    assert restriction_satisfied("限…肺癌 icd:C34,C78", ["c34.1"])
    assert not restriction_satisfied("限…肺癌 icd:C34", ["I10"])
    assert restriction_satisfied("限二线用药。", ["I10"])


@pytest.mark.parametrize("region", ["440100", "610924"])
def test_the_special_diseases_drugs_are_restricted_to_their_diseases_prefixes(region):
    """Issue 14: every region restricts the five diseases' drugs (those the HIS simulator bills for a visit) to the
    disease's national prefixes, so a visit's drugs meet its recognised disease and a stay without it does not."""
    assert disease_of_drug("氨氯地平（口服常释剂型）") is Disease.HYPERTENSION
    assert disease_of_drug("美托洛尔（注射剂）") is None  # an emergency / arrhythmia drug, not the prescription
    assert disease_of_drug("他克莫司（软膏剂）") is None  # eczema
    assert disease_of_drug("阿莫西林（口服常释剂型）") is None
    seen = set()
    for row in generate_catalogue_rows(region, 2026):
        disease = disease_of_drug(row["name"]) if row["kind"] == "drug" else None
        if disease is None or icd_prefixes_for(national_item(row["national_code"]).restriction
                                               if row["national_code"] else ""):
            continue  # not a disease drug, or one with an NRDL restriction of its own
        seen.add(disease)
        assert icd_prefixes_of(row["restriction"]) == national_icd(disease), row
        assert restriction_satisfied(row["restriction"], ["I10.x00" if disease is Disease.HYPERTENSION else "E11.900"]) \
            is (disease in (Disease.HYPERTENSION, Disease.DIABETES))
    assert seen >= {Disease.HYPERTENSION, Disease.DIABETES, Disease.TRANSPLANT}


def test_cli_writes_one_catalogue_per_region(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert datagen_main(["catalogues", "--seed", str(SEED), "--out", str(tmp_path), "--region", "610924"]) == 0
    assert read_catalogue_csv(tmp_path / "610924.csv") == list(catalogue("610924"))
    assert "610924.csv" in capsys.readouterr().out


# --- members ---------------------------------------------------------------------------------


def test_id_check_character_follows_gb11643():
    assert id_check_char("11010519491231002") == "X"  # the standard's worked example
    assert is_valid_id_number("11010519491231002X")
    assert not is_valid_id_number("110105194912310021")
    assert not is_valid_id_number("11010519490231002X")  # no 31 February


def test_members_are_deterministic_and_well_formed():
    members = generate_members("430100", 2000, 7)
    assert members == generate_members("430100", 2000, 7)
    assert members != generate_members("430100", 2000, 8)
    counties = {d.code for d in reference.divisions() if d.parent_code == "430100"}
    assert len({m["member_id"] for m in members}) == len({m["id_number"] for m in members}) == 2000
    for member in members:
        assert member["region"] == "430100"
        assert member["scheme"] in ("employee", "resident")
        assert member["assistance"] in (None, "tekun", "dibao", "dishouru")
        assert member["filing"] in ("resident", "referral", "temporary", "unfiled")
        assert member["ytd"] == dict.fromkeys(YTD_KEYS, 0)
        assert is_valid_id_number(member["id_number"]) and member["id_number"][:6] in counties
        assert 1930 <= int(member["id_number"][6:10]) <= 2026
        assert 2 <= len(member["name"]) <= 3
        assert not (member["retired"] and member["scheme"] == "resident")


def test_member_shares_are_realistic():
    members = generate_members("211100", 4000, 1)
    share = collections.Counter()
    for member in members:
        share["employee"] += member["scheme"] == "employee"
        share["retired"] += member["retired"]
        share["poverty"] += member["poverty"]
        share["assistance"] += member["assistance"] is not None
        share["filed"] += member["filing"] != "unfiled"
    assert 0.4 < share["employee"] / 4000 < 0.6
    assert 0.15 < share["retired"] / 4000 < 0.25
    assert 0.02 < share["poverty"] / 4000 < 0.08
    assert 0.01 < share["assistance"] / 4000 < 0.05
    assert share["filed"] / 4000 > 0.75


def test_county_region_members_use_its_own_code():
    assert {m["id_number"][:6] for m in generate_members("610924", 50, 1)} == {"610924"}


# --- bills -----------------------------------------------------------------------------------


def _bills(region: str, count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    hospitals = next(r for r in load_regions() if r.code == region).hospitals
    bills = []
    for number in range(count):
        hospital = hospitals[number % len(hospitals)]
        admitted_on = date(2026, 1 + number % 12, 1 + number % 28)
        bills.append(generate_bill(rng, catalogue_index(region), region, hospital.code, hospital.level, admitted_on))
    return bills


def test_bill_is_deterministic_for_a_seed():
    rows = list(catalogue("460100"))
    first = generate_bill(11, rows, "460100", "H46010000001", 3, "2026-03-01")
    assert first == generate_bill(11, catalogue_index("460100"), "460100", "H46010000001", 3, "2026-03-01")
    assert first != generate_bill(12, rows, "460100", "H46010000001", 3, "2026-03-01")


def test_bill_size_scales_the_line_counts_and_the_default_is_unchanged():
    index = catalogue_index("440100")
    usual = [generate_bill(seed, index, "440100", "H44010000001", 3, "2026-03-02") for seed in range(60)]
    assert usual == [generate_bill(seed, index, "440100", "H44010000001", 3, "2026-03-02", size_pct=100)
                     for seed in range(60)]
    longer = [generate_bill(seed, index, "440100", "H44010000001", 3, "2026-03-02", size_pct=190)
              for seed in range(60)]
    assert statistics.mean(len(bill["lines"]) for bill in usual) < 36  # about 32
    assert 45 < statistics.mean(len(bill["lines"]) for bill in longer) < 56  # about 50 (services/bench_core.py)
    assert all(len(bill["lines"]) <= LINES_MAX * 190 // 100 for bill in longer)
    with pytest.raises(ValueError, match="size_pct"):
        generate_bill(1, index, "440100", "H44010000001", 3, "2026-03-02", size_pct=99)


@pytest.mark.parametrize("region", ["440100", "610924"])
def test_bill_lines_add_up_and_stay_within_the_stay(region):
    codes = {r["local_code"] for r in catalogue(region)}
    for bill in _bills(region, 120, 3):
        assert set(bill) == {"region", "hospital", "admitted_on", "discharged_on", "emergency", "diagnoses", "lines",
                             "procedures", "sex", "age_years", "age_days", "birth_weight_g", "discharge_status"}
        admitted_on, discharged_on = date.fromisoformat(bill["admitted_on"]), date.fromisoformat(bill["discharged_on"])
        assert 3 <= (discharged_on - admitted_on).days <= 15
        # Full 医保版 2.0 codes of the CHS-DRG tables (services/datagen/stay_facts.py), not bare categories.
        assert bill["diagnoses"] and all(d in load_tables().diagnosis_codes for d in bill["diagnoses"])
        assert LINES_MIN <= len(bill["lines"]) <= LINES_MAX
        assert [line["line_id"] for line in bill["lines"]] == [str(i) for i in range(1, len(bill["lines"]) + 1)]
        for line in bill["lines"]:
            assert line["code"] in codes
            qty_e4 = parse_qty_e4(line["qty"], "qty")
            assert line["unit_price_fen"] > 0
            assert line["amount_fen"] == line_amount_fen(qty_e4, line["unit_price_fen"])
            assert admitted_on <= date.fromisoformat(line["service_date"]) <= discharged_on


def test_bills_look_like_real_stays():
    bills = _bills("530100", 300, 5)
    index = catalogue_index("530100")
    totals = [sum(line["amount_fen"] for line in bill["lines"]) for bill in bills]
    assert 600_000 < statistics.mean(totals) < 1_500_000  # about 10,000 yuan on average
    assert max(totals) > 3 * statistics.median(totals)  # a long tail
    assert any("." in line["qty"] for bill in bills for line in bill["lines"])
    reasons = collections.Counter()
    for bill in bills:
        for line in bill["lines"]:
            row = index.row_on(line["code"], date.fromisoformat(line["service_date"]))
            if row is None:
                reasons["not_valid"] += 1
            elif not row["national_code"]:
                reasons["unmapped"] += 1
            elif row["grade"] == "C":
                reasons["grade_c"] += 1
            elif not restriction_satisfied(row["restriction"], bill["diagnoses"]):
                reasons["restricted"] += 1
            else:
                reasons["ok"] += 1
    assert reasons["ok"] > 0.97 * sum(reasons.values())  # valid on the date most of the time
    assert reasons["not_valid"] and reasons["unmapped"] and reasons["grade_c"] and reasons["restricted"]
    over_cap = sum(
        1
        for bill in bills
        for line in bill["lines"]
        if (row := index.row_on(line["code"], date.fromisoformat(line["service_date"])))
        and row["price_cap_fen"]
        and line["unit_price_fen"] > int(row["price_cap_fen"])
    )
    assert over_cap > 0


# --- regions, agreements, policies -----------------------------------------------------------


def test_regions_file_lists_the_demo_regions():
    regions = load_regions()
    assert demo_region_codes() == DEMO_REGIONS
    names = {d.code: d.name for d in reference.divisions()}
    for region in regions:
        assert region.name == names[region.code]
        assert region.province_code in names
        assert 3 <= len(region.hospitals) <= 5
        assert all(re.match(rf"^H{region.code}\d{{5}}$", h.code) and h.level in (1, 2, 3) for h in region.hospitals)


def test_agreements_file_is_well_formed():
    document = tomllib.loads((REGIONS_DIR / "agreements.toml").read_text(encoding="utf-8"))
    assert set(document) == {"defaults", "agreements"}
    assert document["defaults"] == {"catalogue_rule": "treating", "unmapped": "selfpay"}
    pairs = set()
    for agreement in document["agreements"]:
        assert set(agreement) <= {"regions", "catalogue_rule", "unmapped", "note"}
        a, b = agreement["regions"]
        assert a < b and a in DEMO_REGIONS and b in DEMO_REGIONS and (a, b) not in pairs
        pairs.add((a, b))
        assert agreement.get("catalogue_rule", "treating") in ("treating", "insured")
        assert agreement.get("unmapped", "selfpay") in ("selfpay", "reject")
    rules = [a.get("catalogue_rule") for a in document["agreements"]]
    assert "insured" in rules and any(a.get("unmapped") == "reject" for a in document["agreements"])


POLICY_TOP_KEYS = {"region", "name", "effective_from", "schemes", "filing", "poverty", "assistance",
                   "outpatient_special"}
SPECIAL_DISEASES = {"hypertension", "diabetes", "cancer_therapy", "dialysis", "transplant"}
SCHEME_KEYS = {"annual_cap_fen", "annual_deductible_cap_fen", "retired_bonus_bp", "deductible_fen", "bands", "critical"}
LEVELS = {"1", "2", "3"}


def _check_non_negative_int(value: object, where: str) -> None:
    assert isinstance(value, int) and not isinstance(value, bool) and value >= 0, where


def _check_scheme(scheme: dict, where: str) -> None:
    assert set(scheme) <= SCHEME_KEYS and {"deductible_fen", "bands"} <= set(scheme), where
    for key in ("annual_cap_fen", "annual_deductible_cap_fen", "retired_bonus_bp"):
        _check_non_negative_int(scheme[key], f"{where}.{key}")
    assert set(scheme["deductible_fen"]) == LEVELS
    for level in LEVELS:
        _check_non_negative_int(scheme["deductible_fen"][level], f"{where}.deductible_fen")
    bands = scheme["bands"]
    assert bands and "upto_fen" not in bands[-1]
    uptos = [band["upto_fen"] for band in bands[:-1]]
    assert uptos == sorted(set(uptos)) and all(u > 0 for u in uptos), where
    for band in bands:
        assert set(band) <= {"upto_fen", "ratio_bp"} and set(band["ratio_bp"]) == LEVELS
        assert all(0 <= band["ratio_bp"][lv] <= 10000 for lv in LEVELS)
    critical = scheme.get("critical")
    if critical is not None:
        assert set(critical) == {"threshold_fen", "annual_cap_fen", "bands"}
        _check_non_negative_int(critical["threshold_fen"], f"{where}.critical.threshold_fen")
        critical_bands = critical["bands"]
        assert "upto_fen" not in critical_bands[-1]
        c_uptos = [band["upto_fen"] for band in critical_bands[:-1]]
        assert c_uptos == sorted(set(c_uptos))
        assert all(set(band) <= {"upto_fen", "ratio_bp"} and 0 <= band["ratio_bp"] <= 10000 for band in critical_bands)


@pytest.mark.parametrize("region", DEMO_REGIONS)
def test_policy_file_has_the_spec_shape(region):
    path = REGIONS_DIR / "policies" / f"{region}_2026.toml"
    policy = tomllib.loads(path.read_text(encoding="utf-8"))
    assert set(policy) == POLICY_TOP_KEYS
    assert policy["region"] == region and policy["effective_from"] == "2026-01-01"
    assert policy["name"] == next(r.name for r in load_regions() if r.code == region)
    assert set(policy["schemes"]) == {"employee", "resident"}
    for name, scheme in policy["schemes"].items():
        _check_scheme(scheme, f"schemes.{name}")
    assert policy["schemes"]["resident"]["retired_bonus_bp"] == 0
    assert set(policy["filing"]) == {"resident", "referral", "temporary", "unfiled"}
    assert policy["poverty"] == {"ratio_bonus_bp": 1000, "critical_threshold_bp": 5000}
    assert set(policy["assistance"]) == {"tekun", "dibao", "dishouru"}
    for tier in policy["assistance"].values():
        assert set(tier) == {"deductible_fen", "ratio_bp", "annual_cap_fen"}
        assert all(isinstance(v, int) and v >= 0 for v in tier.values())
    # SPEC §13.1: every demo region covers the five diseases (issue 14), the parser checks each section's keys
    assert set(policy["outpatient_special"]) == SPECIAL_DISEASES
    parsed = parse_policy(path.read_text(encoding="utf-8"))
    special = {disease.value: section for disease, section in parsed.outpatient_special.items()}
    assert special["dialysis"].monthly_limit_fen  # dialysis is paid by a monthly 定额
    for disease in ("hypertension", "diabetes"):  # the national floor for 两病 outpatient drugs: 50 %
        assert min(special[disease].ratio_bp.values()) >= 5000
        assert special[disease].annual_limit_fen


def test_published_figures_are_in_the_policies():
    panjin = tomllib.loads((REGIONS_DIR / "policies" / "211100_2026.toml").read_text(encoding="utf-8"))
    critical = panjin["schemes"]["resident"]["critical"]
    assert critical["threshold_fen"] == 1_300_000
    assert {band["ratio_bp"] for band in critical["bands"]} <= set(range(6000, 7001))
    hegang = tomllib.loads((REGIONS_DIR / "policies" / "230400_2026.toml").read_text(encoding="utf-8"))
    assert hegang["schemes"]["resident"]["bands"][0]["ratio_bp"]["2"] == 7500
    changsha = tomllib.loads((REGIONS_DIR / "policies" / "430100_2026.toml").read_text(encoding="utf-8"))
    # 长沙's diabetes section is the SPEC §13.1 example, as its employee scheme is the §5.1 one
    assert changsha["outpatient_special"]["diabetes"] == {
        "icd": ["E10", "E11", "E12", "E13", "E14"], "ratio_bp": {"1": 7000, "2": 6500, "3": 6000},
        "annual_limit_fen": 300000}


def test_reference_copies_are_attributed():
    readme = (reference.REFERENCE_DIR / "README.md").read_text(encoding="utf-8")
    copied = sorted(p.name for p in reference.REFERENCE_DIR.glob("*.csv"))
    assert copied == [
        "admin_divisions_demo.csv",
        "icd10_categories.csv",
        "medical_consumables.csv",
        "medical_service_items.csv",
        "nrdl_2024_drugs.csv",
    ]
    for name in copied:
        assert name in readme
