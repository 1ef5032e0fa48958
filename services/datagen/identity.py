"""Synthetic personal identifiers: 18-digit citizen ID numbers (身份证号) and Chinese names.

ID numbers follow GB 11643-1999: 6-digit address code, 8-digit birth date, 3-digit sequence
(odd for men, even for women) and an ISO 7064 MOD 11-2 check character (`0`–`9` or `X`).
They are well-formed but invented, and the address code is a real county-level code of the
member's region (`reference/admin_divisions_demo.csv`), so the data looks right to a reader
and to validators without belonging to anyone. Names are a common surname plus one or two
given-name characters from small lists; any match with a real person is chance.
"""

from __future__ import annotations

import random
from datetime import date

from services.datagen import reference

_CHECK_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"

_SURNAMES = (
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡",
    "郭", "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹",
)  # fmt: skip
_GIVEN_MALE = ("伟", "强", "磊", "军", "勇", "杰", "涛", "明", "超", "刚", "平", "辉", "鹏", "华", "飞", "斌", "建", "国", "宇", "浩")
_GIVEN_FEMALE = ("芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "玲", "婷", "雪", "慧", "红", "梅", "兰", "颖", "琳", "洁", "欣")


def id_check_char(first_17: str) -> str:
    """GB 11643 check character (校验码) for the first 17 digits of an ID number."""
    if len(first_17) != 17 or not first_17.isdigit():
        raise ValueError(f"need 17 digits, got {first_17!r}")
    total = sum(int(digit) * weight for digit, weight in zip(first_17, _CHECK_WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def is_valid_id_number(id_number: str) -> bool:
    """Whether an 18-character ID number is well-formed: digits, a real date, the right check character."""
    if len(id_number) != 18 or not id_number[:17].isdigit():
        return False
    try:
        date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return False
    return id_number[17] == id_check_char(id_number[:17])


def address_codes(region: str) -> tuple[str, ...]:
    """County-level codes usable as the address part of an ID number of a region's member.

    A prefecture's own counties; a county-level region itself. Falls back to the region code.
    """
    counties = tuple(d.code for d in reference.divisions() if d.level == "county" and d.parent_code == region)
    if counties:
        return counties
    return (region,)


def make_id_number(rng: random.Random, address_code: str, birth_on: date, male: bool) -> str:
    """A synthetic, well-formed 18-character ID number."""
    assert len(address_code) == 6 and address_code.isdigit()
    sequence = rng.randrange(0, 500) * 2 + (1 if male else 0)  # odd for men, even for women
    first_17 = f"{address_code}{birth_on:%Y%m%d}{sequence:03d}"
    return first_17 + id_check_char(first_17)


def make_name(rng: random.Random, male: bool) -> str:
    """A synthetic Chinese name: surname plus one or two given-name characters."""
    pool = _GIVEN_MALE if male else _GIVEN_FEMALE
    given_length = 1 if rng.random() < 0.3 else 2
    return rng.choice(_SURNAMES) + "".join(rng.choice(pool) for _ in range(given_length))
