"""The fast constructor of frozen value classes: `clearing/values.py`."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import dataclass, field
from datetime import date

import pytest

from clearing.bill import BillLine
from clearing.catalogue import Grade, Kind, Relation
from clearing.classify import LineClass, Reason
from clearing.explain import Step
from clearing.values import compile_constructor

LINE = BillLine("1", "X0001", 15_000, 1000, 1500, date(2026, 3, 2))
LINE_CLASS_FIELDS = (LINE, "440100", "X0001", "N0001", Relation.EQUIVALENT, Kind.DRUG, Grade.B, "item", 1000, 900,
                     0, 150, 135, 1215, Reason.OVER_CAP, "")


@dataclass(frozen=True, slots=True)
class Pair:
    left: int
    right: dict[str, int] = field(default_factory=dict)


def test_a_built_value_is_an_ordinary_instance() -> None:
    built = compile_constructor(LineClass)(*LINE_CLASS_FIELDS)
    usual = LineClass(*LINE_CLASS_FIELDS)
    assert type(built) is LineClass
    assert built == usual and hash(built) == hash(usual) and repr(built) == repr(usual)
    assert dataclasses.astuple(built) == dataclasses.astuple(usual)
    assert built.selfpay_out_fen == 150 + 135  # properties of the class work as on any instance


def test_a_built_value_is_frozen() -> None:
    built = compile_constructor(Step)("total", 100, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.amount_fen = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del built.key  # type: ignore[misc]
    assert built == Step("total", 100)


def test_a_built_value_copies_pickles_and_replaces_like_any_other() -> None:
    built = compile_constructor(LineClass)(*LINE_CLASS_FIELDS)
    for again in (copy.copy(built), copy.deepcopy(built), pickle.loads(pickle.dumps(built))):
        assert type(again) is LineClass and again == built
    assert dataclasses.replace(built, note="n") == LineClass(*LINE_CLASS_FIELDS[:-1], "n")


def test_every_field_is_given_by_position_or_name_and_no_default_is_filled_in() -> None:
    new_pair = compile_constructor(Pair)
    assert new_pair(1, {"a": 2}) == new_pair(right={"a": 2}, left=1) == Pair(1, {"a": 2})
    with pytest.raises(TypeError):
        new_pair(1)  # type: ignore[call-arg]


@dataclass(frozen=True)
class WithoutSlots:
    left: int


@dataclass(slots=True)
class NotFrozen:
    left: int


@dataclass(frozen=True, slots=True)
class WithPostInit:
    left: int

    def __post_init__(self) -> None:
        assert self.left >= 0


@dataclass(frozen=True, slots=True)
class Derived(Pair):
    third: int = 0


@pytest.mark.parametrize("cls", [WithoutSlots, NotFrozen, WithPostInit, Derived])
def test_only_classes_the_twin_can_stand_for_are_accepted(cls: type) -> None:
    with pytest.raises(AssertionError):
        compile_constructor(cls)
