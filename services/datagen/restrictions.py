"""Derive ICD-10 prefix lists for payment restrictions (限定支付范围) from their text (SPEC §4.1, §4.2).

The NRDL restriction is free Chinese text ("限…非小细胞肺癌患者"). A region that enforces it
electronically needs diagnosis prefixes, written after the text as `icd:C34,C78`. This module
maps disease keywords to ICD-10 category prefixes:

* specific keywords first (肺癌 → C34, 乳腺癌 → C50, 糖尿病 → E10,E11,E14, 高血压 → I10–I15, …);
* the generic 肿瘤/癌 → `C` only when no specific cancer matched;
* 肺动脉高压 (I27) is matched before, and removed from, the text searched for 高血压.

The prefixes are 3-character categories (or the chapter letter `C`); every one is a prefix
of some category in `reference/icd10_categories.csv` (tested). Text without a keyword gets
no list: such a restriction stays informational.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

ICD_MARK = "icd:"

# (keyword, prefixes), searched in this order; the result keeps first-seen order, no duplicates.
_SPECIFIC: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("肺动脉高压", ("I27",)),
    ("肺癌", ("C34",)),
    ("乳腺癌", ("C50",)),
    ("肝细胞癌", ("C22",)),
    ("肝癌", ("C22",)),
    ("胃癌", ("C16",)),
    ("食管癌", ("C15",)),
    ("食管鳞癌", ("C15",)),
    ("结直肠癌", ("C18", "C19", "C20")),
    ("结肠癌", ("C18",)),
    ("直肠癌", ("C20",)),
    ("胰腺癌", ("C25",)),
    ("鼻咽癌", ("C11",)),
    ("甲状腺癌", ("C73",)),
    ("前列腺癌", ("C61",)),
    ("卵巢癌", ("C56",)),
    ("宫颈癌", ("C53",)),
    ("尿路上皮癌", ("C65", "C66", "C67", "C68")),
    ("肾细胞癌", ("C64",)),
    ("黑色素瘤", ("C43",)),
    ("白血病", ("C91", "C92", "C93", "C94", "C95")),
    ("淋巴瘤", ("C81", "C82", "C83", "C84", "C85", "C86", "C88")),
    ("骨髓瘤", ("C90",)),
    ("糖尿病", ("E10", "E11", "E14")),
    ("高血压", ("I10", "I11", "I12", "I13", "I15")),
    ("冠心病", ("I20", "I21", "I22", "I24", "I25")),
    ("心肌梗死", ("I21", "I22")),
    ("心力衰竭", ("I50",)),
    ("脑梗", ("I63",)),
    ("卒中", ("I61", "I63", "I64")),
    ("乙肝", ("B16", "B18")),
    ("乙型肝炎", ("B16", "B18")),
    ("丙肝", ("B17", "B18")),
    ("丙型肝炎", ("B17", "B18")),
    ("艾滋", ("B20", "B21", "B22", "B23", "B24", "Z21")),
    ("HIV", ("B20", "B21", "B22", "B23", "B24", "Z21")),
    ("结核", ("A15", "A16", "A17", "A18", "A19")),
    ("类风湿", ("M05", "M06")),
    ("银屑病", ("L40",)),
    ("哮喘", ("J45", "J46")),
    ("慢性阻塞", ("J44",)),
    ("多发性硬化", ("G35",)),
    ("癫痫", ("G40", "G41")),
    ("精神分裂", ("F20",)),
    ("抑郁", ("F32", "F33")),
    ("帕金森", ("G20",)),
    ("阿尔茨海默", ("G30",)),
    ("骨质疏松", ("M80", "M81")),
    ("慢性肾", ("N18",)),
    ("血友病", ("D66", "D67", "D68")),
    ("贫血", ("D50", "D51", "D52", "D53", "D61", "D64")),
    ("痛风", ("M10",)),
    ("新型冠状", ("U07",)),
    ("COVID", ("U07",)),
)
_CANCER_SPECIFIC = frozenset(prefix for _, prefixes in _SPECIFIC for prefix in prefixes if prefix.startswith("C"))
_GENERIC_CANCER = ("肿瘤", "癌")


@cache  # texts repeat across regions and seeds; the mapping is pure
def icd_prefixes_for(text: str) -> tuple[str, ...]:
    """ICD-10 prefixes a restriction text implies, in a stable order; () when none."""
    found: list[str] = []
    searched = text
    for keyword, prefixes in _SPECIFIC:
        if keyword in searched:
            found.extend(p for p in prefixes if p not in found)
            if keyword == "肺动脉高压":
                searched = searched.replace(keyword, "")  # so 高血压 does not match inside it
    if not _CANCER_SPECIFIC.intersection(found) and any(word in searched for word in _GENERIC_CANCER):
        found.append("C")
    return tuple(found)


def with_icd(text: str, prefixes: tuple[str, ...]) -> str:
    """Restriction column value: the text, then ` icd:P1,P2` when there are prefixes (SPEC §4.1)."""
    assert ICD_MARK not in text  # the mark must be unambiguous for the importer
    if not prefixes:
        return text
    suffix = ICD_MARK + ",".join(prefixes)
    return f"{text} {suffix}" if text else suffix


def icd_prefixes_of(restriction: str) -> tuple[str, ...]:
    """The `icd:` prefixes written in a restriction column value; () when it has none."""
    _, mark, listed = restriction.partition(ICD_MARK)
    if not mark:
        return ()
    return tuple(p.strip() for p in listed.split(",") if p.strip())


def restriction_satisfied(restriction: str, diagnoses: Sequence[str]) -> bool:
    """SPEC §4.2: an `icd:` list is met when any diagnosis starts with any prefix (case and dots ignored)."""
    prefixes = [p.replace(".", "").upper() for p in icd_prefixes_of(restriction)]
    if not prefixes:
        return True
    codes = [d.replace(".", "").upper() for d in diagnoses]
    return any(code.startswith(prefix) for code in codes for prefix in prefixes)
