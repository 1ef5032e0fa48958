"""Seeded generator of one region's three catalogues as one SPEC §4.1 CSV (三个目录).

`generate_catalogue_rows(region, seed)` is a pure function of (region, seed): it owns a
`random.Random(f"{region}:{seed}")`, never the global `random`, and walks the national items
(`national.py`) in reference-file order, so the output is identical on every run. Real data:
national codes, names, NRDL grades, restriction texts and published 支付标准. Invented (and
decided here):

* **Region profile**, drawn first: local-code letters for drug/service/consumable (one of
  Y/Z/H, X/F/C, D/S/M) and serial width (5 or 6); the share of national items listed
  (drugs 95–99 %, services 82–93 %, consumables 85–97 %; the `ESSENTIAL` inpatient basics
  always), so some national codes are absent in some regions and translation can be
  unmapped; 乙类 self-pay bases (drugs 500–2000 bp, services 1000–2000, consumables
  1000–3000); capped shares; how often restriction keywords become `icd:` lists (40–90 %).
* **Local codes**: `<region code><kind letter><serial>`; serials follow a seeded shuffle of
  the listed items with occasional gaps (retired codes), so they differ between regions and
  seeds but are stable for one seed.
* **Relation**: ~95.5 % `equivalent`; ~3 % split into 2–3 `narrower` local codes (规格 /
  urgency / 国产–进口), half of them keeping an `equivalent` general code beside them, so one
  national code translates to several local codes; ~1.5 % `wider` (local item bundles more).
* **Grade**: drugs 甲→A, 乙→B, with 1–4 % B→A regional upgrades and 0.3–1 % listed C.
  Services: A, but B for 60–80 %-likely "large equipment" items (核医学, 放疗, 介入, CT, MRI…)
  and ~15 % of the rest, C for cosmetic / special-needs items (美容, 单人间, 体检, 种植…) and
  1–2 % at random. Consumables: B mostly, A for basic supplies, C for dental implants.
  B rows carry `selfpay_bp` (the region base 80 % of the time, else 500–3000); A and C carry 0.
* **Price caps** (限价) on a share of A/B rows at 80–150 % of `reference_price_fen`, so a
  hospital price can exceed the cap; negotiated drugs with a published 支付标准 are capped at it.
* **Restrictions**: NRDL text; when its keywords imply diagnoses (`restrictions.py`), the
  region appends ` icd:…` with its profile's probability. A few services (肿瘤, 透析) get a
  synthetic restriction the same way, with the outpatient special diseases' national prefixes
  (`clearing/outpatient/icd.py`). The five diseases' drugs (the HIS simulator's, found by name:
  `visits.ITEMS`) without an NRDL restriction of their own are restricted to their disease's
  national prefixes in every region (限高血压患者 … icd:I10,…), with no draw.
* **Validity** (inclusive ISO dates, SPEC §4.2): from 2024-01-01 (or a negotiated drug's
  agreement start), open-ended for most rows. ~4 % have two non-overlapping versions split at
  2025-07-01, 2026-04-01 or 2026-07-01 (new cap after 集采, new self-pay ratio, or B→A); ~1.5 %
  expired in 2025 with no successor; ~1 % start late (2025-07-01 or 2026-03-01). Basics never
  expire or start late. One local code keeps its national code and relation in every version.
* **Local-only items** with an EMPTY `national_code` (→ UNMAPPED): 12–30 院内制剂 (synthetic
  names), 4–10 地方新增 services and 2–6 地方增补 consumables; `relation` is `equivalent` for
  them because the column must hold a valid value.

Rows are sorted by (local_code, valid_from). About 7,300 rows per region; one region takes
about 0.2 s (the first call also parses the reference files).
"""

from __future__ import annotations

import csv
import functools
import random
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from services.datagen.national import (
    ESSENTIAL,
    INFUSION_SET_CODE,
    KIND_CONSUMABLE,
    KIND_DRUG,
    KIND_SERVICE,
    KINDS,
    NationalItem,
    national_items,
)
from clearing.outpatient.icd import national_icd
from clearing.policy import Disease
from services.datagen.prices import local_price_fen, reference_price_fen
from services.datagen.restrictions import icd_prefixes_for, with_icd
from services.datagen.visits import ITEMS

__all__ = [
    "CATALOGUE_COLUMNS",
    "generate_catalogue_rows",
    "local_price_fen",
    "read_catalogue_csv",
    "reference_price_fen",
    "write_catalogue_csv",
]

CATALOGUE_COLUMNS = (
    "local_code",
    "national_code",
    "relation",
    "kind",
    "name",
    "grade",
    "selfpay_bp",
    "price_cap_fen",
    "restriction",
    "valid_from",
    "valid_to",
)
BASE_VALID_FROM = date(2024, 1, 1)
CHANGE_DATES = (date(2025, 7, 1), date(2026, 4, 1), date(2026, 7, 1))
EXPIRY_DATES = (date(2025, 6, 30), date(2025, 12, 31))
LATE_START_DATES = (date(2025, 7, 1), date(2026, 3, 1))
SELFPAY_CHOICES_BP = (500, 1000, 1500, 2000, 2500, 3000)

_LETTER_SETS = (("Y", "Z", "H"), ("X", "F", "C"), ("D", "S", "M"))
_SPLIT_SUFFIXES = {
    KIND_DRUG: ("（小规格）", "（大规格）", "（儿童规格）"),
    KIND_SERVICE: ("（常规）", "（加急）", "（床旁）"),
    KIND_CONSUMABLE: ("（国产）", "（进口）", "（集采中选）"),
}
_WIDER_SUFFIXES = {KIND_DRUG: "（含同通用名各规格）", KIND_SERVICE: "（含相关操作）", KIND_CONSUMABLE: "（含配套附件）"}
_SERVICE_C_WORDS = ("美容", "眼袋", "单人间", "套间", "体检", "健康咨询", "预防保健", "家庭巡诊", "种植", "尸体料理")
_SERVICE_B_WORDS = ("CT", "磁共振", "MRI", "PET", "伽玛刀", "体外冲击波", "激光", "高压氧")
_SERVICE_B_CHAPTERS = frozenset({"23", "24", "32"})
_SERVICE_RESTRICTIONS = (  # (name keyword, text, icd prefixes): synthetic, for a few services
    # the outpatient special diseases' sessions: their national prefixes (a 放化疗 visit is coded Z51.0/Z51.1, a
    # dialysis one Z49/Z99.2), and acute renal failure (N17) for inpatient dialysis
    ("肿瘤", "限恶性肿瘤患者。", national_icd(Disease.CANCER_THERAPY)),
    ("透析", "限急慢性肾功能衰竭患者。", ("N17", *national_icd(Disease.DIALYSIS))),
)
_DISEASE_DRUG_TEXT = {
    Disease.HYPERTENSION: "限高血压患者。",
    Disease.DIABETES: "限糖尿病患者。",
    Disease.CANCER_THERAPY: "限恶性肿瘤患者。",
    Disease.DIALYSIS: "限慢性肾功能衰竭透析患者。",
    Disease.TRANSPLANT: "限器官移植术后抗排异患者。",
}
_PREPARATION_PARTS = (
    ("复方", "加味", "清热", "健脾", "活血", "止咳", "通络", "养阴", "益气", "消炎"),
    ("黄芪", "丹参", "金银花", "板蓝根", "川贝", "当归", "枇杷", "三七", "茯苓", "甘草"),
    ("颗粒", "合剂", "胶囊", "软膏", "糖浆", "丸", "酊", "搽剂"),
)
_LOCAL_SERVICES = (
    "中医定向透药疗法",
    "耳穴压豆",
    "无痛胃镜镇静",
    "术后镇痛泵管理",
    "营养风险筛查",
    "康复评定（地方标准）",
    "日间手术管理",
    "家庭病床巡诊",
    "慢病随访管理",
    "住院多学科会诊",
    "静脉血栓风险评估",
    "跌倒风险评估",
)
_LOCAL_CONSUMABLES = (
    "一次性使用无菌敷贴",
    "医用固定带",
    "一次性使用负压引流器",
    "一次性使用吸痰管",
    "一次性使用静脉留置针",
    "医用护理垫",
    "一次性使用输液接头",
)


@dataclass(frozen=True, slots=True)
class RegionProfile:
    """What makes one region's catalogue differ from another's; drawn from the region's seed."""

    region: str
    kind_letters: dict[str, str]
    serial_width: int
    include_share: dict[str, float]
    selfpay_base_bp: dict[str, int]
    cap_share: dict[str, float]
    icd_share: float
    drug_upgrade_share: float
    drug_c_share: float
    service_c_share: float


@dataclass(frozen=True, slots=True)
class _Terms:
    """The payable terms of one local code in one version."""

    grade: str
    selfpay_bp: int
    cap_fen: int | None
    restriction: str


def _draw_profile(rng: random.Random, region: str) -> RegionProfile:
    letters = rng.choice(_LETTER_SETS)
    return RegionProfile(
        region=region,
        kind_letters=dict(zip(KINDS, letters, strict=True)),
        serial_width=rng.choice((5, 6)),
        include_share={
            KIND_DRUG: rng.uniform(0.95, 0.99),
            KIND_SERVICE: rng.uniform(0.82, 0.93),
            KIND_CONSUMABLE: rng.uniform(0.85, 0.97),
        },
        selfpay_base_bp={
            KIND_DRUG: rng.choice((500, 1000, 1000, 1500, 2000)),
            KIND_SERVICE: rng.choice((1000, 1000, 2000)),
            KIND_CONSUMABLE: rng.choice((1000, 2000, 3000)),
        },
        cap_share={
            KIND_DRUG: rng.uniform(0.10, 0.20),
            KIND_SERVICE: rng.uniform(0.20, 0.35),
            KIND_CONSUMABLE: rng.uniform(0.50, 0.80),
        },
        icd_share=rng.uniform(0.4, 0.9),
        drug_upgrade_share=rng.uniform(0.01, 0.04),
        drug_c_share=rng.uniform(0.003, 0.01),
        service_c_share=rng.uniform(0.01, 0.02),
    )


class _Serials:
    """Hands out a region's local codes per kind, with occasional gaps like retired codes."""

    def __init__(self, rng: random.Random, profile: RegionProfile) -> None:
        self._rng = rng
        self._profile = profile
        self._next = dict.fromkeys(KINDS, 1)

    def take(self, kind: str) -> str:
        if self._rng.random() < 0.05:
            self._next[kind] += self._rng.randint(1, 3)
        serial = self._next[kind]
        self._next[kind] = serial + 1
        assert serial < 10**self._profile.serial_width  # a region lists far fewer items than that
        letter = self._profile.kind_letters[kind]
        return f"{self._profile.region}{letter}{serial:0{self._profile.serial_width}d}"


def _selfpay_bp(rng: random.Random, profile: RegionProfile, kind: str) -> int:
    if rng.random() < 0.8:
        return profile.selfpay_base_bp[kind]
    return rng.choice(SELFPAY_CHOICES_BP)


def _drug_grade(rng: random.Random, profile: RegionProfile, item: NationalItem) -> str:
    if rng.random() < profile.drug_c_share:
        return "C"
    if item.national_grade == "甲":
        return "A"
    return "A" if rng.random() < profile.drug_upgrade_share else "B"


def _service_grade(rng: random.Random, profile: RegionProfile, item: NationalItem) -> str:
    if item.national_code in ESSENTIAL:
        return "A"
    if any(word in item.name for word in _SERVICE_C_WORDS):
        return "C" if rng.random() < 0.9 else "B"
    if rng.random() < profile.service_c_share:
        return "C"
    large_equipment = item.group in _SERVICE_B_CHAPTERS or any(word in item.name for word in _SERVICE_B_WORDS)
    return "B" if rng.random() < (0.7 if large_equipment else 0.15) else "A"


def _consumable_grade(rng: random.Random, item: NationalItem) -> str:
    if item.national_code == INFUSION_SET_CODE:
        return "A"
    if item.group == "C07":  # dental implants: rarely covered
        return "C" if rng.random() < 0.8 else "B"
    return "B" if rng.random() < 0.85 else "A"


def _grade(rng: random.Random, profile: RegionProfile, item: NationalItem) -> str:
    if item.kind == KIND_DRUG:
        return _drug_grade(rng, profile, item)
    if item.kind == KIND_SERVICE:
        return _service_grade(rng, profile, item)
    return _consumable_grade(rng, item)


def _cap_fen(rng: random.Random, profile: RegionProfile, item: NationalItem, grade: str) -> int | None:
    if grade == "C":
        return None  # a C line is wholly self-paid; a cap would never apply (SPEC §4.2)
    if item.payment_standard_fen is not None:
        return item.payment_standard_fen  # the published 支付标准 is the payable ceiling
    if rng.random() >= profile.cap_share[item.kind]:
        return None
    return max(1, reference_price_fen(item.national_code, item.kind) * rng.randint(80, 150) // 100)


_TOPICAL_FORMS = ("软膏", "乳膏", "凝胶", "外用", "滴眼", "贴剂")  # 他克莫司软膏 treats eczema, not a transplant


def disease_of_drug(name: str) -> Disease | None:
    """The outpatient special disease whose drugs (the HIS simulator's, `visits.ITEMS`) a drug's name names; None
    for a topical form, and for an injectable antihypertensive (an emergency or arrhythmia drug, 美托洛尔注射液)."""
    if any(form in name for form in _TOPICAL_FORMS):
        return None
    for disease, entries in ITEMS.items():
        if disease is Disease.HYPERTENSION and "注射" in name:
            continue
        if any(kind == KIND_DRUG and any(word in name for word in words) for words, kind, _, _ in entries):
            return disease
    return None


def _restriction(rng: random.Random, profile: RegionProfile, item: NationalItem) -> str:
    text = item.restriction
    prefixes = icd_prefixes_for(text) if text else ()
    if item.kind == KIND_DRUG and not prefixes and (disease := disease_of_drug(item.name)) is not None:
        # A disease drug (门诊慢特病用药) is restricted to its disease's national prefixes in every region (no draw:
        # the seeded sequence of every other row stays as it was), so a visit's drugs meet the recognised
        # diagnosis and a stay without the disease does not bill them as covered.
        return with_icd(text or _DISEASE_DRUG_TEXT[disease], national_icd(disease))
    if item.kind == KIND_SERVICE:
        for keyword, service_text, service_prefixes in _SERVICE_RESTRICTIONS:
            if keyword in item.name:
                text, prefixes = service_text, service_prefixes
                break
    if prefixes and rng.random() < profile.icd_share:
        return with_icd(text, prefixes)
    return text


def _draw_terms(rng: random.Random, profile: RegionProfile, item: NationalItem) -> _Terms:
    grade = _grade(rng, profile, item)
    selfpay_bp = _selfpay_bp(rng, profile, item.kind) if grade == "B" else 0
    return _Terms(
        grade=grade,
        selfpay_bp=selfpay_bp,
        cap_fen=_cap_fen(rng, profile, item, grade),
        restriction=_restriction(rng, profile, item),
    )


def _changed_terms(rng: random.Random, profile: RegionProfile, item: NationalItem, terms: _Terms) -> _Terms:
    """The second version of an item: a new cap, a new self-pay ratio, or a B→A upgrade."""
    if terms.grade == "C":
        return replace(terms, grade="B", selfpay_bp=profile.selfpay_base_bp[item.kind])  # the region admits it
    change = rng.choice(("cap", "cap", "selfpay", "grade") if terms.grade == "B" else ("cap",))
    if change == "cap":  # e.g. a 集采 price cut: the new cap is 60–95 % of the reference price
        new_cap_fen = max(1, reference_price_fen(item.national_code, item.kind) * rng.randint(60, 95) // 100)
        return replace(terms, cap_fen=new_cap_fen)
    if change == "selfpay":
        return replace(terms, selfpay_bp=rng.choice([bp for bp in SELFPAY_CHOICES_BP if bp != terms.selfpay_bp]))
    return replace(terms, grade="A", selfpay_bp=0)


def _row(
    local_code: str,
    item_code: str,
    relation: str,
    kind: str,
    name: str,
    terms: _Terms,
    valid_from: date,
    valid_to: date | None,
) -> dict[str, str]:
    assert valid_to is None or valid_from <= valid_to
    return {
        "local_code": local_code,
        "national_code": item_code,
        "relation": relation,
        "kind": kind,
        "name": name,
        "grade": terms.grade,
        "selfpay_bp": str(terms.selfpay_bp),
        "price_cap_fen": "" if terms.cap_fen is None else str(terms.cap_fen),
        "restriction": terms.restriction,
        "valid_from": valid_from.isoformat(),
        "valid_to": "" if valid_to is None else valid_to.isoformat(),
    }


def _version_rows(
    rng: random.Random, profile: RegionProfile, item: NationalItem, local_code: str, relation: str, name: str
) -> list[dict[str, str]]:
    """One local code's rows: one open row, two consecutive versions, an expired row or a late one."""
    terms = _draw_terms(rng, profile, item)
    start = max(BASE_VALID_FROM, item.agreement_start or BASE_VALID_FROM)
    plan = rng.random()
    essential = item.national_code in ESSENTIAL

    def row(t: _Terms, valid_from: date, valid_to: date | None) -> dict[str, str]:
        return _row(local_code, item.national_code, relation, item.kind, name, t, valid_from, valid_to)

    change_dates = [d for d in CHANGE_DATES if d > start]
    if plan < 0.04 and change_dates:
        change_on = rng.choice(change_dates)
        second = _changed_terms(rng, profile, item, terms)
        return [row(terms, start, change_on - timedelta(days=1)), row(second, change_on, None)]
    if plan < 0.055 and not essential:
        return [row(terms, start, max(start, rng.choice(EXPIRY_DATES)))]
    if plan < 0.065 and not essential:
        return [row(terms, max(start, rng.choice(LATE_START_DATES)), None)]
    return [row(terms, start, None)]


def _item_rows(
    rng: random.Random, profile: RegionProfile, item: NationalItem, serials: _Serials
) -> list[dict[str, str]]:
    layout = rng.random()
    if item.national_code in ESSENTIAL or layout >= 0.045:
        entries = [("equivalent", item.name)]
    elif layout < 0.03:  # split into narrower local codes
        count = rng.choice((2, 2, 3))
        entries = [("equivalent", item.name)] if rng.random() < 0.5 else []
        entries += [("narrower", item.name + suffix) for suffix in _SPLIT_SUFFIXES[item.kind][:count]]
    else:
        entries = [("wider", item.name + _WIDER_SUFFIXES[item.kind])]
    rows: list[dict[str, str]] = []
    for relation, name in entries:
        rows.extend(_version_rows(rng, profile, item, serials.take(item.kind), relation, name))
    return rows


def _local_only_names(rng: random.Random, kind: str) -> list[str]:
    if kind == KIND_DRUG:
        names: set[str] = set()
        target = rng.randint(12, 30)
        for _ in range(target * 4):  # bounded: enough draws to find `target` distinct names
            if len(names) == target:
                break
            names.add("".join(rng.choice(part) for part in _PREPARATION_PARTS) + "（院内制剂）")
        return sorted(names)
    if kind == KIND_SERVICE:
        return [name + "（地方新增）" for name in rng.sample(_LOCAL_SERVICES, rng.randint(4, 10))]
    return [name + "（地方增补）" for name in rng.sample(_LOCAL_CONSUMABLES, rng.randint(2, 6))]


def _local_only_rows(
    rng: random.Random, profile: RegionProfile, kind: str, serials: _Serials
) -> list[dict[str, str]]:
    """Items the region lists with no national code (院内制剂 …): every line of them is UNMAPPED."""
    rows = []
    for name in _local_only_names(rng, kind):
        grade = rng.choices(("A", "B", "C"), weights=(15, 70, 15))[0]
        terms = _Terms(
            grade=grade,
            selfpay_bp=_selfpay_bp(rng, profile, kind) if grade == "B" else 0,
            cap_fen=None,
            restriction="限本医疗机构使用。" if kind == KIND_DRUG else "",
        )
        rows.append(_row(serials.take(kind), "", "equivalent", kind, name, terms, BASE_VALID_FROM, None))
    return rows


def generate_catalogue_rows(region: str, seed: int) -> list[dict[str, str]]:
    """A region's catalogue (三个目录) as SPEC §4.1 rows of strings; deterministic for (region, seed). The rows are
    the caller's own (fresh copies): generating them takes a few hundred ms, and a process asks for the same
    catalogue many times (enrolment, the HIS simulator, the tests' stacks)."""
    if len(region) != 6 or not region.isdigit():
        raise ValueError(f"region must be a 6-digit code, got {region!r}")
    return [dict(row) for row in _generated_rows(region, seed)]


@functools.lru_cache(maxsize=64)
def _generated_rows(region: str, seed: int) -> tuple[dict[str, str], ...]:
    rng = random.Random(f"{region}:{seed}")
    profile = _draw_profile(rng, region)
    serials = _Serials(rng, profile)
    rows: list[dict[str, str]] = []
    for kind in KINDS:
        share = profile.include_share[kind]
        listed = [it for it in national_items(kind) if it.national_code in ESSENTIAL or rng.random() < share]
        rng.shuffle(listed)
        for item in listed:
            rows.extend(_item_rows(rng, profile, item, serials))
        rows.extend(_local_only_rows(rng, profile, kind, serials))
    rows.sort(key=lambda r: (r["local_code"], r["valid_from"]))
    return tuple(rows)


def write_catalogue_csv(rows: Iterable[dict[str, str]], path: str | Path) -> int:
    """Write rows as a SPEC §4.1 CSV (UTF-8, no BOM, header, LF line ends); returns the row count."""
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CATALOGUE_COLUMNS, lineterminator="\n", extrasaction="raise")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def read_catalogue_csv(path: str | Path) -> list[dict[str, str]]:
    """Read a catalogue CSV written by `write_catalogue_csv` back into rows (a BOM is tolerated)."""
    with Path(path).open(encoding="utf-8-sig", newline="") as handle:
        return [{column: row[column] for column in CATALOGUE_COLUMNS} for row in csv.DictReader(handle)]
