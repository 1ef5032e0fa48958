"""Seeded generator of realistic inpatient bills (住院费用明细) in the SPEC §5.3 B.json shape.

`generate_bill(rng_or_seed, catalogue_rows, treating_region, hospital_code, hospital_level,
admitted_on)` builds one stay from one regional catalogue (its local codes). Decided here:

* **Diagnoses** (1–3): a primary from a list of common inpatient categories, each tied to a
  pathway (medical, oncology, cardiac, general surgery, orthopaedic), plus common
  comorbidities, and now and then any category from `icd10_categories.csv` (A–T). Written as
  the 3-character category, or category + "." + one digit (`C34.1`).
* **Stay**: 3–15 nights (mode about 6); `discharged_on = admitted_on + nights`.
  Bed, nursing, ward round, infusion and oxygen are billed in chunks of at most 7 nights
  that never cross a month end (so one catalogue version covers each chunk, versions change on
  the 1st), qty = nights in the chunk, service date = the chunk's first day.
* **Lines**: labs (4–10), imaging (1–3), other treatments (0–4), drugs (5–16, plus 1–3
  diagnosis-matched restricted drugs for oncology), and by pathway a surgery (+ anaesthesia,
  pathology, 1–4 consumables of the matching class) or an intervention. 10–60 lines (about 32 on
  average); ids "1", "2", … in service-date order. `qty` is a decimal string; about a fifth of
  drug and oxygen quantities are fractional ("0.5", "1.25", "12.5").
* **Size**: `size_pct` scales the counts of labs, imaging, treatments and drugs and the 60-line
  maximum, for benchmarks that want longer bills; the default 100 draws exactly the bills it
  always drew (each count is still one draw, only scaled).
* **Prices**: the national reference price (`prices.py`) × a hospital-level factor for
  services (level 1: 85 %, 2: 92 %, 3: 100 %) × a −5…+10 % spread; drugs 90–105 %,
  consumables 95–112 % — so some lines exceed a capped row's `price_cap_fen`. One code keeps
  one price within a bill. `amount_fen = line_amount_fen(qty_e4, unit_price_fen)` exactly.
* **Validity**: normal picks use only codes whose row on the service date exists, is A or B,
  has a national code and whose `icd:` restriction (if any) the diagnoses satisfy. On purpose,
  and independently: a grade-C item (15 % of bills), a local-only (unmapped) item (10 %), a
  restricted drug the diagnoses do not satisfy (12 %), a code not valid on its date (5 %).

The total averages about 10,000 yuan with a long tail (surgery with implants). Deterministic:
all draws come from the given `random.Random` (or one seeded from the int and the stay).

**For a patient** (`patient=`, the HIS simulator; smart audit 智能审核, SPEC §12): the bill is what a real HIS
bills. Bed, nursing, ward round, infusion and oxygen are billed per day (one line a day, qty 1; infusion 1 or 2;
oxygen in hours), and every pick fits the patient and the hospital by the generated knowledge base (the item's
sex, age range on the service date and minimum hospital level). Then, on purpose and independently, the
realistic small share of violations smart audit is there to catch (`VIOLATION_PCT`): an item for the other sex,
an item outside the patient's age, a second nursing grade on one day (a doubled 等级护理), and an extra bed day.
Without a patient the bill is drawn exactly as before (tests and benchmarks pin those bills).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from clearing.medical_record import ages_at
from clearing.money import format_qty, line_amount_fen
from clearing.smart_audit.knowledge import ItemFacts, KnowledgeBase, parse_knowledge_base
from clearing.smart_audit.model import MemberFacts
from clearing.smart_audit.rules import age_on
from services.datagen import reference
from services.datagen.national import (
    ANAESTHESIA_CODES,
    BED_CODES,
    INFUSION_CODE,
    INFUSION_SET_CODE,
    KIND_CONSUMABLE,
    KIND_DRUG,
    KIND_SERVICE,
    NURSING_CODES,
    OXYGEN_CODE,
    WARD_ROUND_CODE,
)
from services.datagen.prices import local_price_fen, reference_price_fen
from services.datagen.restrictions import restriction_satisfied
from services.datagen.stay_facts import Patient as FactsPatient
from services.datagen.stay_facts import stay_facts

LINES_MIN = 10
LINES_MAX = 60
SIZE_PCT_MAX = 1_000  # ten times the usual counts: 600 lines at most, far inside limits.LINES_PER_BILL_MAX
NIGHTS_MIN = 3
NIGHTS_MAX = 15
CHUNK_NIGHTS_MAX = 7
_PICK_ATTEMPTS_MAX = 40
_LEVEL_PRICE_PCT = {1: 85, 2: 92, 3: 100}
_NIGHT_WEIGHTS = (6, 9, 11, 12, 12, 11, 9, 8, 6, 5, 4, 3, 3)  # for 3…15 nights
_FRACTIONAL_QTY_E4 = (5_000, 2_500, 7_500, 12_500, 15_000, 25_000, 35_000)

# Violations injected into a patient's bill, each on its own draw (percent of bills): what a demo-sized month
# shows smart audit catching. Overlaps and quick readmissions come from the plan of stays, not from one bill.
VIOLATION_PCT = {"wrong_sex": 2, "wrong_age": 1, "doubled_nursing": 2, "extra_bed_day": 2}
KNOWLEDGE_SEED = 2026  # the knowledge base the agencies audit with (services/common/smart_audit.py)

MEDICAL, ONCOLOGY, CARDIAC, GENERAL_SURGERY, ORTHOPAEDIC = "medical", "oncology", "cardiac", "general", "ortho"
_PRIMARY_DIAGNOSES = (  # (category, pathway, weight)
    ("I63", MEDICAL, 10), ("J18", MEDICAL, 10), ("E11", MEDICAL, 6), ("J44", MEDICAL, 6),
    ("I50", MEDICAL, 5), ("N18", MEDICAL, 4), ("N20", MEDICAL, 3), ("A41", MEDICAL, 2),
    ("C34", ONCOLOGY, 5), ("C16", ONCOLOGY, 3), ("C50", ONCOLOGY, 3), ("C18", ONCOLOGY, 3),
    ("I21", CARDIAC, 4), ("I25", CARDIAC, 6),
    ("K80", GENERAL_SURGERY, 5), ("K35", GENERAL_SURGERY, 4), ("K40", GENERAL_SURGERY, 3), ("K56", GENERAL_SURGERY, 2),
    ("S72", ORTHOPAEDIC, 4), ("S82", ORTHOPAEDIC, 3), ("M17", ORTHOPAEDIC, 3),
)  # fmt: skip
_COMORBIDITIES = ("I10", "E11", "I25", "E78", "K21", "E03", "N39", "J44")
_SURGERY_SHARE = {MEDICAL: 0.05, ONCOLOGY: 0.35, CARDIAC: 0.0, GENERAL_SURGERY: 0.9, ORTHOPAEDIC: 0.9}
_INTERVENTION_SHARE = {MEDICAL: 0.0, ONCOLOGY: 0.0, CARDIAC: 0.65, GENERAL_SURGERY: 0.0, ORTHOPAEDIC: 0.0}
_CONSUMABLE_GROUPS = {ORTHOPAEDIC: ("C03",), GENERAL_SURGERY: ("C11", "C14"), CARDIAC: ("C02",)}


@dataclass(frozen=True, slots=True)
class _Version:
    valid_from: date
    valid_to: date | None
    row: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Line:
    code: str
    qty_e4: int
    service_on: date
    order: int  # groups lines of one day: daily items first


class CatalogueIndex:
    """One catalogue's rows grouped for bill generation: versions per local code and pools by role.

    Build it once per catalogue and pass it to `generate_bill` instead of the rows when
    generating many bills.
    """

    def __init__(self, rows: Iterable[dict[str, str]]) -> None:
        self.versions: dict[str, list[_Version]] = {}
        for row in rows:
            version = _Version(
                valid_from=date.fromisoformat(row["valid_from"]),
                valid_to=date.fromisoformat(row["valid_to"]) if row["valid_to"] else None,
                row=row,
            )
            self.versions.setdefault(row["local_code"], []).append(version)
        self.pools: dict[str, list[str]] = {}
        for code in sorted(self.versions):  # sorted: pools do not depend on row order
            for pool in _pools_of(self.versions[code][0].row):
                self.pools.setdefault(pool, []).append(code)

    def row_on(self, code: str, day: date) -> dict[str, str] | None:
        """The row of a local code valid on `day` (bounds inclusive), or None."""
        for version in self.versions.get(code, ()):
            if version.valid_from <= day and (version.valid_to is None or day <= version.valid_to):
                return version.row
        return None

    def pool(self, name: str) -> list[str]:
        """Local codes in a pool (empty when the region lists none)."""
        return self.pools.get(name, [])


def _pools_of(row: dict[str, str]) -> list[str]:
    """Pool names of a local code, from its kind, national code, grade and restriction."""
    national = row["national_code"]
    if not national:
        return ["local_only"]
    pools = [f"national:{national}"]
    if row["grade"] == "C":
        pools.append("grade_c")
    if "icd:" in row["restriction"]:
        pools.append("restricted")
    if row["kind"] == KIND_DRUG:
        pools.append("drug")
    elif row["kind"] == KIND_CONSUMABLE:
        pools.append(f"consumable:{national[:3]}")
    else:
        pools.append(_service_pool(national))
    return pools


def _service_pool(national: str) -> str:
    chapter = national[2:4]
    if chapter in ("25", "27"):
        return "lab"
    if chapter in ("21", "22", "23"):
        return "imaging"
    if chapter == "33":
        return "anaesthesia" if national.startswith("003301") else "surgery"
    if chapter == "32":
        return "intervention"
    if chapter in ("12", "24", "31", "34") or chapter.startswith("4"):
        return "treatment"
    return "other_service"


class _BillBuilder:
    """Collects the lines of one stay; every pick goes through `pick` so validity rules hold."""

    def __init__(self, rng: random.Random, index: CatalogueIndex, diagnoses: list[str], admitted_on: date, nights: int,
                 size_pct: int = 100, patient: MemberFacts | None = None, hospital_level: int = 3):
        self.patient = patient
        self.hospital_level = hospital_level
        self.knowledge = knowledge_base() if patient is not None else None
        self.rng = rng
        self.size_pct = size_pct
        self.index = index
        self.diagnoses = diagnoses
        self.admitted_on = admitted_on
        self.nights = nights
        self.discharged_on = admitted_on + timedelta(days=nights)
        self.lines: list[_Line] = []
        self.operation: str | None = None  # "surgery" or "intervention" once such a line is billed

    def count(self, low: int, high: int) -> int:
        """How many items of a kind: one draw in `low`…`high`, scaled by `size_pct` (one draw either way, so
        the default size leaves every later draw, and so the whole bill, unchanged)."""
        return self.rng.randint(low, high) * self.size_pct // 100

    def day(self, low: int = 0, high: int | None = None) -> date:
        """A day of the stay, `low`…`high` days after admission (default: up to discharge)."""
        high = self.nights if high is None else min(high, self.nights)
        return self.admitted_on + timedelta(days=self.rng.randint(min(low, high), high))

    def usable(self, code: str, day: date) -> bool:
        row = self.index.row_on(code, day)
        return (
            row is not None
            and row["grade"] in ("A", "B")
            and bool(row["national_code"])
            and restriction_satisfied(row["restriction"], self.diagnoses)
            and self.fits(row, day)
        )

    def facts(self, row: dict[str, str]) -> ItemFacts | None:
        return self.knowledge.facts(row["national_code"]) if self.knowledge is not None and row["national_code"] else None

    def fits(self, row: dict[str, str], day: date) -> bool:
        """The item may be billed for this patient at this hospital (always true without a patient)."""
        facts = self.facts(row)
        if facts is None or self.patient is None:
            return True
        age = age_on(self.patient.birth_date, day)
        return ((not facts.sex or facts.sex == self.patient.sex)
                and (facts.min_age is None or age >= facts.min_age) and (facts.max_age is None or age <= facts.max_age)
                and (facts.min_hospital_level is None or self.hospital_level >= facts.min_hospital_level))

    def pick(self, pool: Sequence[str], day: date) -> str | None:
        """A code of `pool` usable on `day`, or None after a bounded number of tries."""
        if not pool:
            return None
        for _ in range(_PICK_ATTEMPTS_MAX):
            code = self.rng.choice(pool)
            if self.usable(code, day):
                return code
        return None

    def pick_national(self, national_codes: Sequence[str], day: date) -> str | None:
        """A usable local code for one of these national codes (basics: bed, nursing …)."""
        candidates = [c for n in national_codes for c in self.index.pool(f"national:{n}")]
        return self.pick(candidates, day)

    def add(self, code: str | None, qty_e4: int, day: date, order: int = 5) -> None:
        assert qty_e4 > 0
        assert self.admitted_on <= day <= self.discharged_on
        if code is not None:
            self.lines.append(_Line(code=code, qty_e4=qty_e4, service_on=day, order=order))


def _chunks(admitted_on: date, nights: int) -> list[tuple[date, int]]:
    """(first day, nights) pieces of the stay: at most 7 nights, never across a month end."""
    chunks: list[tuple[date, int]] = []
    day, left = admitted_on, nights
    while left > 0:  # bounded: each pass consumes at least one night
        next_month = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
        length = min(left, CHUNK_NIGHTS_MAX, (next_month - day).days)
        chunks.append((day, length))
        day, left = day + timedelta(days=length), left - length
    return chunks


def _drug_qty_e4(rng: random.Random) -> int:
    if rng.random() < 0.2:
        return rng.choice(_FRACTIONAL_QTY_E4)
    return rng.choice((1, 2, 3, 4, 6, 8, 10, 12, 14, 20, 28, 30)) * 10_000


def _add_daily(b: _BillBuilder, intensive_first: bool) -> None:
    bed = b.pick_national(BED_CODES, b.admitted_on)
    for i, (first_on, nights) in enumerate(_chunks(b.admitted_on, b.nights)):
        nursing = NURSING_CODES[0] if (intensive_first and i == 0) else NURSING_CODES[1]
        if bed is None or not b.usable(bed, first_on):  # the bed's row may end mid-stay
            bed = b.pick_national(BED_CODES, first_on)
        b.add(bed, nights * 10_000, first_on, 0)
        b.add(b.pick_national((nursing,), first_on), nights * 10_000, first_on, 1)
        b.add(b.pick_national((WARD_ROUND_CODE,), first_on), nights * 10_000, first_on, 2)
        if b.rng.random() < 0.8:
            b.add(b.pick_national((INFUSION_CODE,), first_on), nights * b.rng.choice((1, 2)) * 10_000, first_on, 3)
        if b.rng.random() < 0.3:  # oxygen in hours, often with a half hour
            b.add(b.pick_national((OXYGEN_CODE,), first_on), b.rng.randint(4, 48) * 10_000 + 5_000, first_on, 4)


def _add_per_day(b: _BillBuilder, intensive_first: bool) -> None:
    """Bed, nursing, ward round (and infusion, oxygen) one line a day, as a real HIS bills them: a bed-day and a
    nursing grade once a day (SPEC §12.1 `bed_day`, `max_qty_per_day` 1). Intensive (Ⅰ级) nursing for the
    first days of a non-medical stay, Ⅱ级 after."""
    bed = b.pick_national(BED_CODES, b.admitted_on)
    intensive_days = b.rng.randint(1, 3) if intensive_first else 0
    infusion_days = {day for day in range(b.nights) if b.rng.random() < 0.8}
    oxygen_days = set(range(b.rng.randint(1, 3))) if b.rng.random() < 0.3 else set()
    for offset in range(b.nights):
        day = b.admitted_on + timedelta(days=offset)
        if bed is None or not b.usable(bed, day):  # the bed's row may end mid-stay
            bed = b.pick_national(BED_CODES, day)
        b.add(bed, 10_000, day, 0)
        nursing = NURSING_CODES[0] if offset < intensive_days else NURSING_CODES[1]
        b.add(b.pick_national((nursing,), day), 10_000, day, 1)
        b.add(b.pick_national((WARD_ROUND_CODE,), day), 10_000, day, 2)
        if offset in infusion_days:
            b.add(b.pick_national((INFUSION_CODE,), day), b.rng.choice((1, 2)) * 10_000, day, 3)
        if offset in oxygen_days:  # oxygen in hours, often with a half hour
            b.add(b.pick_national((OXYGEN_CODE,), day), b.rng.randint(4, 20) * 10_000 + 5_000, day, 4)


def _add_violations(b: _BillBuilder) -> list[str]:
    """The injected violations (VIOLATION_PCT), each its own draw; returns their names (for the tests)."""
    rng, index, made = b.rng, b.index, []
    draws = {name: rng.randrange(100) < pct for name, pct in VIOLATION_PCT.items()}
    if draws["wrong_sex"] or draws["wrong_age"]:
        day = b.day()
        for name, unfit in (("wrong_sex", lambda f: bool(f.sex) and f.sex != b.patient.sex),
                            ("wrong_age", lambda f: not f.sex and _outside_age(f, age_on(b.patient.birth_date, day)))):
            if not draws[name]:
                continue
            candidates = [code for pool in ("drug", "lab", "treatment", "other_service") for code in index.pool(pool)
                          if (row := index.row_on(code, day)) and row["grade"] in ("A", "B") and not row["restriction"]
                          and (facts := b.facts(row)) is not None and unfit(facts)]
            if candidates:
                b.add(rng.choice(candidates), 10_000, day, 5)
                made.append(name)
    if draws["doubled_nursing"]:  # a second nursing grade on one day (互斥: 等级护理)
        day = b.day(0, b.nights - 1)
        b.add(b.pick_national((NURSING_CODES[2],), day), 10_000, day, 1)
        made.append("doubled_nursing")
    if draws["extra_bed_day"]:  # one bed-day more than the stay has (床日超住院天数)
        day = b.discharged_on
        b.add(b.pick_national(BED_CODES, day), 10_000, day, 0)
        made.append("extra_bed_day")
    return made


def _outside_age(facts: ItemFacts, age: int) -> bool:
    return (facts.min_age is not None and age < facts.min_age) or (facts.max_age is not None and age > facts.max_age)


@functools.cache
def knowledge_base() -> KnowledgeBase:
    from services.datagen.knowledge import knowledge_csv_text  # reads the reference lists once

    return parse_knowledge_base(knowledge_csv_text(KNOWLEDGE_SEED))


def _add_exams_and_treatments(b: _BillBuilder) -> None:
    for _ in range(b.count(4, 10)):
        day = b.day(0, 1) if b.rng.random() < 0.7 else b.day(2, b.nights - 1)
        b.add(b.pick(b.index.pool("lab"), day), b.rng.choice((1, 1, 1, 2)) * 10_000, day)
    for _ in range(b.count(1, 3)):
        day = b.day(0, 2)
        b.add(b.pick(b.index.pool("imaging"), day), 10_000, day)
    for _ in range(b.count(0, 4)):
        day = b.day(1, b.nights - 1)
        b.add(b.pick(b.index.pool("treatment"), day), b.rng.choice((1, 1, 2, 3)) * 10_000, day)


def _add_drugs(b: _BillBuilder, pathway: str) -> None:
    for _ in range(b.count(6, 18)):
        day = b.day()
        b.add(b.pick(b.index.pool("drug"), day), _drug_qty_e4(b.rng), day)
    if pathway == ONCOLOGY:  # targeted / cytotoxic drugs whose icd restriction the diagnosis meets
        for _ in range(b.rng.randint(1, 3)):
            day = b.day(1)
            b.add(b.pick(b.index.pool("restricted"), day), b.rng.choice((1, 2, 4)) * 10_000, day)


def _add_procedure(b: _BillBuilder, pathway: str) -> None:
    surgery = b.rng.random() < _SURGERY_SHARE[pathway]
    intervention = not surgery and b.rng.random() < _INTERVENTION_SHARE[pathway]
    if not surgery and not intervention:
        return
    day = b.day(1, min(3, b.nights - 1))
    code = b.pick(b.index.pool("surgery" if surgery else "intervention"), day)
    b.add(code, 10_000, day)
    if code is not None:
        b.operation = "surgery" if surgery else "intervention"
    if surgery:
        anaesthesia = ANAESTHESIA_CODES[:2] if b.rng.random() < 0.8 else ANAESTHESIA_CODES[2:]  # general/spinal, or local
        b.add(b.pick_national(anaesthesia, day), 10_000, day)
        if b.rng.random() < 0.5:
            b.add(b.pick(b.index.pool("lab"), day), 10_000, day)  # e.g. frozen-section pathology
    groups = _CONSUMABLE_GROUPS.get(pathway, ("C11", "C14"))
    pool = [code for group in groups for code in b.index.pool(f"consumable:{group}")]
    for _ in range(b.rng.randint(1, 3)):
        b.add(b.pick(pool, day), b.rng.choice((1, 1, 1, 2)) * 10_000, day)
    b.add(b.pick_national((INFUSION_SET_CODE,), day), b.rng.randint(1, 4) * 10_000, day)


def _add_oddities(b: _BillBuilder) -> None:
    """Deliberate out-of-scope lines: grade C, unmapped, unmet restriction, not valid on the date."""
    rng, index = b.rng, b.index
    if rng.random() < 0.15:
        day = b.day()
        grade_c = [c for c in index.pool("grade_c")
                   if (row := index.row_on(c, day)) and row["grade"] == "C" and b.fits(row, day)]
        b.add(rng.choice(grade_c) if grade_c else None, 10_000, day)
    if rng.random() < 0.10 and index.pool("local_only"):
        day = b.day()
        b.add(rng.choice(index.pool("local_only")), rng.randint(1, 6) * 10_000, day)
    if rng.random() < 0.12:
        day = b.day()
        unmet = [
            c
            for c in index.pool("restricted")
            if (row := index.row_on(c, day))
            and row["kind"] == KIND_DRUG
            and not restriction_satisfied(row["restriction"], b.diagnoses)
            and b.fits(row, day)
        ]
        b.add(rng.choice(unmet) if unmet else None, 10_000, day)
    if rng.random() < 0.05:
        day = b.day()
        stale = [c for c in sorted(index.versions) if index.row_on(c, day) is None]
        b.add(rng.choice(stale) if stale else None, 10_000, day)


def _diagnoses(rng: random.Random) -> tuple[list[str], str]:
    category, pathway, _ = rng.choices(_PRIMARY_DIAGNOSES, weights=[w for *_, w in _PRIMARY_DIAGNOSES])[0]
    categories = [category]
    for _ in range(rng.choice((0, 1, 1, 2))):
        extra = rng.choice(_COMORBIDITIES)
        if rng.random() < 0.15:
            extra = rng.choice([c.code for c in reference.icd10_categories() if c.code[0] <= "T"])
        if extra not in categories:
            categories.append(extra)
    written = [c if rng.random() < 0.3 else f"{c}.{rng.choice('012389')}" for c in categories]
    return written, pathway


def _unit_price_fen(rng: random.Random, row: dict[str, str], hospital_level: int) -> int:
    kind, national = row["kind"], row["national_code"]
    base_fen = reference_price_fen(national, kind) if national else local_price_fen(row["local_code"], kind)
    if kind == KIND_SERVICE:
        pct = _LEVEL_PRICE_PCT[hospital_level] + rng.randint(-5, 10)
    elif kind == KIND_DRUG:
        pct = rng.randint(90, 105)
    else:
        pct = rng.randint(95, 112)
    return max(1, base_fen * pct // 100)


def _trim(rng: random.Random, lines: list[_Line], lines_max: int) -> list[_Line]:
    """Drop optional lines (never the daily ones) at random until at most `lines_max` remain."""
    while len(lines) > lines_max:  # bounded: one line fewer per pass
        optional = [i for i, line in enumerate(lines) if line.order >= 5]
        assert optional  # daily lines alone never exceed the maximum
        lines.pop(rng.choice(optional))
    return lines


def _render(
    rng: random.Random, b: _BillBuilder, hospital_level: int
) -> list[dict[str, Any]]:
    prices: dict[str, int] = {}
    rendered = []
    ordered = sorted(b.lines, key=lambda line: (line.service_on, line.order))
    for number, line in enumerate(ordered, start=1):
        row = b.index.row_on(line.code, line.service_on) or b.index.versions[line.code][-1].row
        if line.code not in prices:
            prices[line.code] = _unit_price_fen(rng, row, hospital_level)
        price_fen = prices[line.code]
        rendered.append(
            {
                "line_id": str(number),
                "code": line.code,
                "qty": format_qty(line.qty_e4),
                "unit_price_fen": price_fen,
                "amount_fen": line_amount_fen(line.qty_e4, price_fen),
                "service_date": line.service_on.isoformat(),
            }
        )
    return rendered


def stay_nights(seed: int, treating_region: str, hospital_code: str, admitted_on: date) -> int:
    """The nights of the stay `generate_bill` draws for this int seed and stay (its first draws: the diagnoses,
    then the nights), without building the bill: a plan of stays can keep one member's stays apart."""
    rng = random.Random(f"bill:{treating_region}:{hospital_code}:{admitted_on.isoformat()}:{seed}")
    _diagnoses(rng)
    return rng.choices(range(NIGHTS_MIN, NIGHTS_MAX + 1), weights=_NIGHT_WEIGHTS)[0]


def generate_bill(
    rng_or_seed: random.Random | int,
    catalogue_rows: Iterable[dict[str, str]] | CatalogueIndex,
    treating_region: str,
    hospital_code: str,
    hospital_level: int,
    admitted_on: date | str,
    size_pct: int = 100,
    patient: MemberFacts | None = None,
) -> dict[str, Any]:
    """One inpatient stay's itemised bill (住院费用明细) in B.json shape, in the catalogue's local codes.

    An int seed gives `random.Random(f"bill:{treating_region}:{hospital_code}:{admitted_on}:{seed}")`.
    `size_pct` scales the variable line counts and the line maximum (100: the usual bills, about 32 lines).
    """
    if hospital_level not in _LEVEL_PRICE_PCT:
        raise ValueError(f"hospital_level must be 1, 2 or 3, got {hospital_level!r}")
    if not 100 <= size_pct <= SIZE_PCT_MAX:
        raise ValueError(f"size_pct must be 100…{SIZE_PCT_MAX}, got {size_pct!r}")
    admitted = date.fromisoformat(admitted_on) if isinstance(admitted_on, str) else admitted_on
    if isinstance(rng_or_seed, random.Random):
        rng = rng_or_seed
    else:
        rng = random.Random(f"bill:{treating_region}:{hospital_code}:{admitted.isoformat()}:{rng_or_seed}")
    # The 病案首页 facts draw from a generator of their own, so the lines (and the money) stay as they were drawn.
    facts_rng = random.Random(f"facts:{treating_region}:{hospital_code}:{admitted.isoformat()}:{rng_or_seed}"
                              if not isinstance(rng_or_seed, random.Random) else str(rng.getstate()))
    index = catalogue_rows if isinstance(catalogue_rows, CatalogueIndex) else CatalogueIndex(catalogue_rows)
    diagnoses, pathway = _diagnoses(rng)
    nights = rng.choices(range(NIGHTS_MIN, NIGHTS_MAX + 1), weights=_NIGHT_WEIGHTS)[0]
    b = _BillBuilder(rng, index, diagnoses, admitted, nights, size_pct, patient, hospital_level)
    if patient is None:
        _add_daily(b, intensive_first=pathway != MEDICAL)
    else:
        if patient.birth_date > admitted:
            raise ValueError("the patient is born after the admission")
        _add_per_day(b, intensive_first=pathway != MEDICAL)
    _add_procedure(b, pathway)
    _add_oddities(b)
    _add_drugs(b, pathway)
    _add_exams_and_treatments(b)
    for _ in range(_PICK_ATTEMPTS_MAX):  # top up short stays with labs (every region lists many)
        if len(b.lines) >= LINES_MIN:
            break
        day = b.day(0, 2)
        b.add(b.pick(index.pool("lab"), day), 10_000, day)
    if len(b.lines) < LINES_MIN:
        raise ValueError("the catalogue has too few usable items to build a bill")
    violations = _add_violations(b) if patient is not None else []
    daily = sum(1 for line in b.lines if line.order < 5)
    b.lines = _trim(rng, b.lines, max(LINES_MAX * size_pct // 100, daily + LINES_MIN))
    emergency = rng.random() < (0.3 if pathway in (CARDIAC, MEDICAL) else 0.08)
    full_diagnoses, record = stay_facts(facts_rng, diagnoses, b.operation, _facts_patient(patient, admitted), nights)
    return {
        "region": treating_region,
        "hospital": {"code": hospital_code, "level": hospital_level},
        "admitted_on": admitted.isoformat(),
        "discharged_on": b.discharged_on.isoformat(),
        "emergency": emergency,
        "diagnoses": full_diagnoses,
        "lines": _render(rng, b, hospital_level),
        **record.as_dict(),
        **({"violations": violations} if patient is not None else {}),
    }


def _facts_patient(patient: MemberFacts | None, admitted_on: date) -> FactsPatient | None:
    if patient is None:
        return None
    age_years, age_days = ages_at(patient.birth_date, admitted_on)
    return FactsPatient(sex=patient.sex, age_years=age_years, age_days=age_days)
