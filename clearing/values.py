"""A fast way to build our frozen value classes on the hot path (issue 11, item 5).

`@dataclass(frozen=True, slots=True)` gives a class an `__init__` that sets every field through
`object.__setattr__`, because its own `__setattr__` refuses. That costs about 0.15 µs a field: building a
16-field `LineClass` took longer than classifying the line it describes, and the values built per bill
(a `LineClass` per line, a `Step` per explained amount, the `Ytd`s and the `Adjudication`) took about half
of a quote's time.

`compile_constructor(cls)` returns a function taking every field, in field order (or by name), that fills
a mutable twin of `cls` with the same slots by plain assignment and then makes it a `cls` by assigning
`__class__`, which Python allows between classes whose instances have the same layout. What comes out
is an ordinary instance of `cls`, equal to, hashed, printed, copied and pickled like `cls(...)`, and as
frozen. Only classes for which that holds are accepted (checked when the constructor is compiled).

The constructor's `draft` attribute is the mutable twin, for the one loop that runs per bill line and fills it in
place itself (`clearing/classify.py::classify_bill`): the call of a 16-argument function costs more than the fill.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import TypeVar

ValueT = TypeVar("ValueT")


def compile_constructor(cls: type[ValueT]) -> Callable[..., ValueT]:
    """A constructor of the frozen, slotted dataclass `cls` taking every field, defaults included (none is
    filled in), in field order or by name."""
    assert is_dataclass(cls) and cls.__dataclass_params__.frozen, f"{cls.__name__} is not a frozen dataclass"
    names = tuple(item.name for item in fields(cls))
    # The twin must have exactly the layout of `cls`: the same slots on a plain `object`, nothing else.
    assert cls.__bases__ == (object,), f"{cls.__name__} inherits from another class"
    assert cls.__dict__.get("__slots__") == names, f"{cls.__name__} is not slots=True with its fields as its slots"
    assert not hasattr(cls, "__post_init__"), f"{cls.__name__} has a __post_init__ the constructor would skip"
    assert all(item.init for item in fields(cls)), f"{cls.__name__} has a field outside __init__"
    assert not any(name.startswith("_") for name in names), "the generated code's own names start with _"
    twin = type(f"{cls.__name__}Draft", (), {"__slots__": names})
    assignments = "".join(f"    _value.{name} = {name}\n" for name in names)
    source = (f"def new_{cls.__name__}({', '.join(names)}):\n"
              f"    _value = _twin()\n{assignments}"
              "    _value.__class__ = _cls\n"
              "    return _value\n")
    namespace = {"_twin": twin, "_cls": cls}
    exec(source, namespace)  # the source is built from field names only, as dataclasses builds __init__
    constructor = namespace[f"new_{cls.__name__}"]
    constructor.draft = twin
    return constructor
