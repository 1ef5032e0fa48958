"""The suite's own layout: test directories have no `__init__.py`, so pytest imports every test module by its
basename. Two modules of one name in two directories make the second fail to import ("import file mismatch") and
its tests silently never run in that session."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_has_a_name_of_its_own():
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
