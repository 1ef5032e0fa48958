"""Deterministic reference unit prices in fen, per national code (no real price list exists).

No public machine-readable price list was found (reference README, "Gaps"), so prices are
synthetic, with two exceptions taken as they are: negotiated drugs with a published
医保支付标准 use it. Everything else is drawn from a per-group range by hashing the code
(SHA-256, so the price is the same in every process and for every region):

* the inpatient basics (bed, nursing, ward round, infusion, oxygen, anaesthesia) have narrow
  ranges of their own, typical of published city price lists;
* otherwise the range is chosen by group — drug list section, service price chapter (first two digits
  of the 9-digit price code: 11 general/bed, 25 laboratory, 33 surgery…), consumable class;
* inside the range the price sits on a log-spaced ladder of "round" prices (10, 12, 15, 18,
  20, 25, … × 10^k fen), so cheap and dear items are equally common on a log scale as real
  price lists are, then moved by −10 %…+10 % so prices are not all round.

Integers only: the ladder and the jitter are integer arithmetic.
"""

from __future__ import annotations

import hashlib
from functools import cache

from services.datagen.national import (
    ANAESTHESIA_CODES,
    BED_CODES,
    INFUSION_CODE,
    KIND_CONSUMABLE,
    KIND_DRUG,
    KIND_SERVICE,
    NURSING_CODES,
    OXYGEN_CODE,
    WARD_ROUND_CODE,
    national_item,
)

_MANTISSAS = (10, 12, 15, 18, 20, 25, 30, 35, 40, 50, 60, 70, 80, 90)

# (low, high) in fen per unit.
_DRUG_RANGES = {"W": (50, 8_000), "Z": (100, 6_000), "P": (1_000, 50_000), "Q": (1_000, 30_000), "J": (500, 20_000)}
_SERVICE_RANGES = {
    "11": (1_000, 15_000),  # 一般医疗服务: bed, ward round
    "12": (300, 20_000),  # 一般治疗操作: nursing, infusion, oxygen
    "13": (1_000, 10_000),
    "14": (1_000, 10_000),
    "21": (3_000, 80_000),  # 放射: X-ray, CT, MRI
    "22": (2_000, 30_000),  # 超声
    "23": (10_000, 150_000),  # 核医学
    "24": (20_000, 300_000),  # 放射治疗
    "25": (300, 20_000),  # 检验
    "26": (1_000, 30_000),  # 血型与配血
    "27": (5_000, 80_000),  # 病理
    "31": (1_000, 100_000),  # 临床各系统诊疗
    "32": (50_000, 300_000),  # 经血管介入
    "33": (20_000, 300_000),  # 手术 (incl. 3301 麻醉)
    "34": (1_000, 20_000),  # 物理治疗与康复
}
_SERVICE_TCM_RANGE = (1_000, 15_000)  # chapters 4x: 中医
_CONSUMABLE_RANGES = {
    "C02": (50_000, 1_500_000),  # 介入
    "C03": (20_000, 2_000_000),  # 骨科
    "C07": (100_000, 800_000),  # 口腔 (implants)
    "C11": (100_000, 600_000),  # 吻合器
    "C14": (50_000, 400_000),  # 刀头
}
_BASIC_CONSUMABLE_PREFIX = "C1423"  # 输液器 and other basic supplies
_BASIC_CONSUMABLE_RANGE = (1_000, 3_000)
# The inpatient basics get narrow ranges of their own: they are billed every day of every stay,
# so a chapter-wide range (300–20,000 fen for nursing) would distort every bill.
_CODE_RANGES = {
    **dict.fromkeys(BED_CODES, (3_000, 10_000)),  # per day
    NURSING_CODES[0]: (2_000, 4_000),  # Ⅰ级护理 per day
    NURSING_CODES[1]: (1_200, 2_500),  # Ⅱ级护理 per day
    NURSING_CODES[2]: (600, 1_500),  # Ⅲ级护理 per day
    WARD_ROUND_CODE: (1_000, 3_000),  # per day
    INFUSION_CODE: (500, 1_500),  # per infusion
    OXYGEN_CODE: (300, 800),  # per hour
    ANAESTHESIA_CODES[0]: (80_000, 200_000),  # 全身麻醉
    ANAESTHESIA_CODES[1]: (50_000, 120_000),  # 椎管内麻醉
    ANAESTHESIA_CODES[2]: (1_000, 5_000),  # 局部浸润麻醉
}
_DEFAULT_RANGES = {KIND_DRUG: (50, 50_000), KIND_SERVICE: (300, 300_000), KIND_CONSUMABLE: (1_000, 2_000_000)}
_LOCAL_RANGES = {KIND_DRUG: (500, 5_000), KIND_SERVICE: (1_000, 20_000), KIND_CONSUMABLE: (1_000, 50_000)}


@cache
def _ladder(low_fen: int, high_fen: int) -> tuple[int, ...]:
    assert 0 < low_fen < high_fen
    steps = sorted({m * 10**e for e in range(10) for m in _MANTISSAS if low_fen <= m * 10**e <= high_fen})
    assert len(steps) >= 2
    return tuple(steps)


def _hashed_price_fen(key: str, low_fen: int, high_fen: int) -> int:
    digest = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    ladder = _ladder(low_fen, high_fen)
    step_fen = ladder[digest % len(ladder)]
    jitter_pct = 90 + (digest // len(ladder)) % 21  # 90…110 %
    return max(1, step_fen * jitter_pct // 100)


def _range_for(national_code: str, kind: str) -> tuple[int, int]:
    if national_code in _CODE_RANGES:
        return _CODE_RANGES[national_code]
    if kind == KIND_DRUG:
        _, _, rest = national_code.partition("-")
        return _DRUG_RANGES.get(rest[:1], _DEFAULT_RANGES[kind])
    if kind == KIND_SERVICE:
        chapter = national_code[2:4]
        return _SERVICE_TCM_RANGE if chapter.startswith("4") else _SERVICE_RANGES.get(chapter, _DEFAULT_RANGES[kind])
    if kind == KIND_CONSUMABLE:
        if national_code.startswith(_BASIC_CONSUMABLE_PREFIX):
            return _BASIC_CONSUMABLE_RANGE
        return _CONSUMABLE_RANGES.get(national_code[:3], _DEFAULT_RANGES[kind])
    raise ValueError(f"unknown kind {kind!r}")


def reference_price_fen(national_code: str, kind: str) -> int:
    """National reference unit price (参考单价) of an item in fen, the same for every region.

    Drugs roughly 50–50,000 fen per unit (published 支付标准 where there is one), services
    300–300,000, consumables 1,000–2,000,000. Always positive.
    """
    if not national_code:
        raise ValueError("national_code is empty; use local_price_fen for a local-only item")
    item = national_item(national_code)
    if item is not None and item.payment_standard_fen is not None:
        return item.payment_standard_fen
    low_fen, high_fen = _range_for(national_code, kind)
    return _hashed_price_fen(f"{kind}:{national_code}", low_fen, high_fen)


def local_price_fen(local_code: str, kind: str) -> int:
    """Unit price in fen of a local-only item (院内制剂, 地方新增项目), which has no national code."""
    low_fen, high_fen = _LOCAL_RANGES[kind]
    return _hashed_price_fen(f"local:{kind}:{local_code}", low_fen, high_fen)
