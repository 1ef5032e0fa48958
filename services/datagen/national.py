"""The national items every regional catalogue maps to, with their national codes (SPEC §4.1, §4.3).

Decisions:

* **Service items** keep their real 15-digit 医保医疗服务项目代码 and **consumables** their real
  10-character C… class code (`reference/`).
* **Drugs**: the NRDL has no per-entry code, so one is derived, identical for every region:

      <class_code>-<S><list_no, 4 digits>          e.g. XA02BC-W0015   (奥美拉唑, No. 15)
      <class_code>-<S><list_no, 4 digits>-<k>      e.g. XA02BC-W0015-1 (★(15): 奥美拉唑 注射剂)

  `S` names the list section, because numbering restarts in each: W 西药部分, Z 中成药部分,
  P 协议西药, Q 协议中成药, J 竞价药品部分. The class code leads, as in NHSA drug codes
  (`XA02BC…`). A ★ repeat line ("★(15)": the same drug as No. 15, listed again for another
  dosage form or another class) gets its **own** code, suffixed `-k` for the k-th repeat of
  that number in its section in file order: it can carry another grade and another
  restriction (奥美拉唑 oral is 甲, the injection 乙), so it must be a separately payable
  entry. The shared stem `<S><list_no>` keeps the link to the drug it repeats.
  (`national_drug_stem` returns that stem.) The copied file is frozen, so file order is stable.
* Drug restrictions are the NRDL 备注 text, except that the bare "◇" mark and the 功能主治 text
  the 协议中成药 sheet keeps in that column (text not starting with 限) are dropped.
* Negotiated / bid drugs with a published 支付标准 ("63.00元(10mg/支)") keep its first figure
  as `payment_standard_fen`; "*" (confidential) gives None. An agreement that starts after
  the catalogue base date (e.g. "2025年1月1日至…") moves that drug's `valid_from`.
* A short list of inpatient basics (bed, nursing, ward round, infusion, oxygen, anaesthesia,
  infusion set) is `ESSENTIAL`: every region lists them, so every region can bill a stay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache

from services.datagen import reference

KIND_DRUG = "drug"
KIND_SERVICE = "service"
KIND_CONSUMABLE = "consumable"
KINDS = (KIND_DRUG, KIND_SERVICE, KIND_CONSUMABLE)

SECTION_LETTERS = {"西药部分": "W", "中成药部分": "Z", "协议西药": "P", "协议中成药": "Q", "竞价药品部分": "J"}
NEGOTIATED_SECTIONS = frozenset({"P", "Q", "J"})

# Inpatient basics by role; the bill generator finds them by these real national codes.
BED_CODES = ("001109000010000", "001109000010200", "001109000010300")  # 普通病房床位费 (general, 2-, 3-bed)
NURSING_CODES = ("001201000030000", "001201000040000", "001201000050000")  # Ⅰ/Ⅱ/Ⅲ级护理
WARD_ROUND_CODE = "001102000050000"  # 住院诊查费
INFUSION_CODE = "001204000060000"  # 静脉输液
OXYGEN_CODE = "001203000010000"  # 氧气吸入
ANAESTHESIA_CODES = ("003301000050000", "003301000030000", "003301000010000")  # 全麻, 椎管内, 局部浸润
INFUSION_SET_CODE = "C142301202"  # 输液器
ESSENTIAL = frozenset(
    (*BED_CODES, *NURSING_CODES, WARD_ROUND_CODE, INFUSION_CODE, OXYGEN_CODE, *ANAESTHESIA_CODES, INFUSION_SET_CODE)
)

_REPEAT_RE = re.compile(r"^★[(（](\d+)[)）]$")
_PAYMENT_RE = re.compile(r"^(\d+(?:\.\d+)?)元")
_AGREEMENT_START_RE = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日")


@dataclass(frozen=True, slots=True)
class NationalItem:
    """One national catalogue entry: what a regional row's `national_code` points at."""

    national_code: str
    kind: str
    name: str
    national_grade: str  # 甲 / 乙 for drugs, "" for services and consumables (no national grade)
    restriction: str  # 限定支付范围 text, "" when none
    group: str  # drug: section letter; service: 2-digit price chapter; consumable: level-1 class
    payment_standard_fen: int | None  # published 医保支付标准 per unit (negotiated drugs only)
    agreement_start: date | None  # start of a negotiated drug's agreement, when published


def national_drug_stem(section: str, list_no: int) -> str:
    """The section letter and list number shared by a drug and its ★ repeat lines (`W0015`)."""
    assert section in SECTION_LETTERS, section
    assert 0 < list_no < 10_000
    return f"{SECTION_LETTERS[section]}{list_no:04d}"


def _list_number(row: reference.DrugListRow) -> int:
    if not row.is_repeat:
        return int(row.list_no)
    match = _REPEAT_RE.match(row.list_no)
    assert match is not None, row.list_no  # the copied file is known to be clean
    return int(match.group(1))


def _drug_restriction(row: reference.DrugListRow) -> str:
    text = row.restriction.strip()
    if text == "◇":  # a list mark, not a payment restriction
        return ""
    if row.section == "协议中成药" and not text.startswith("限"):
        return ""  # this sheet's 备注 column mostly holds 功能主治, not a restriction
    return text


def _payment_standard_fen(text: str) -> int | None:
    match = _PAYMENT_RE.match(text)
    if match is None:
        return None
    fen = int((Decimal(match.group(1)) * 100).to_integral_value())
    return fen if fen > 0 else None


def _agreement_start(text: str) -> date | None:
    match = _AGREEMENT_START_RE.match(text)
    if match is None:
        return None
    return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))


def _drug_items() -> tuple[NationalItem, ...]:
    items: list[NationalItem] = []
    repeats_seen: dict[str, int] = {}
    for row in reference.drug_list():
        stem = national_drug_stem(row.section, _list_number(row))
        code = f"{row.class_code}-{stem}"
        if row.is_repeat:
            repeats_seen[stem] = repeats_seen.get(stem, 0) + 1
            code = f"{code}-{repeats_seen[stem]}"
        name = f"{row.drug_name}（{row.dosage_form}）" if row.dosage_form else row.drug_name
        items.append(
            NationalItem(
                national_code=code,
                kind=KIND_DRUG,
                name=name,
                national_grade=row.grade,
                restriction=_drug_restriction(row),
                group=SECTION_LETTERS[row.section],
                payment_standard_fen=_payment_standard_fen(row.payment_standard),
                agreement_start=_agreement_start(row.validity_period),
            )
        )
    return tuple(items)


def _service_items() -> tuple[NationalItem, ...]:
    return tuple(
        NationalItem(
            national_code=row.code,
            kind=KIND_SERVICE,
            name=row.name,
            national_grade="",
            restriction="",
            group=row.base_code[:2],
            payment_standard_fen=None,
            agreement_start=None,
        )
        for row in reference.service_items()
    )


def _consumable_items() -> tuple[NationalItem, ...]:
    return tuple(
        NationalItem(
            national_code=row.code,
            kind=KIND_CONSUMABLE,
            name=row.name,
            national_grade="",
            restriction="",
            group=row.level_1_code,
            payment_standard_fen=None,
            agreement_start=None,
        )
        for row in reference.consumables()
    )


@cache
def national_items(kind: str) -> tuple[NationalItem, ...]:
    """Every national item of one kind, in reference-file order."""
    if kind == KIND_DRUG:
        return _drug_items()
    if kind == KIND_SERVICE:
        return _service_items()
    if kind == KIND_CONSUMABLE:
        return _consumable_items()
    raise ValueError(f"unknown kind {kind!r}")


@cache
def _items_by_code() -> dict[str, NationalItem]:
    by_code: dict[str, NationalItem] = {}
    for kind in KINDS:
        for item in national_items(kind):
            assert item.national_code not in by_code, item.national_code  # codes are unique across kinds
            by_code[item.national_code] = item
    return by_code


def national_item(national_code: str) -> NationalItem | None:
    """The national item with this code, or None."""
    return _items_by_code().get(national_code)
