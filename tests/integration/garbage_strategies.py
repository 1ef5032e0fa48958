"""Hypothesis strategies for garbage requests, derived from the proto descriptors (SPEC §8 bad input).

Two families, used by `test_garbage.py`:

* `garbage_message(descriptor)`: a whole request of random values, field by field from the
  descriptor, so a new RPC or field is covered without touching this file: empty, huge and
  unicode-junk strings (control characters, RTL marks, full-width and Arabic-Indic digits, NUL),
  strings that almost look right (UUIDs, ISO dates and months, region and hospital codes, ICD-10
  codes, decimals, each sometimes with a trailing newline or padding), boundary and random
  integers, unknown enum numbers, nested messages and repeated fields of random length, sometimes
  past the bounds of `clearing.limits`.
* `corrupted(base)`: a VALID request with exactly one field corrupted (replaced with garbage,
  cleared, edited in place, or, for a repeated field, an element dropped, duplicated or added),
  because pure garbage mostly dies at the first check and never reaches the deeper ones.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from services.common.batch_settings import BATCH_CLAIMS_MAX
from clearing import limits

NESTING_MAX = 4  # Claim → lines → ClassifiedLine → line is three levels deep
REPEATED_SMALL_MAX = 4
EDITABLE_LENGTH_MAX = 256  # longer strings (a catalogue CSV) are only replaced whole, never edited

INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-2**31, 2**31 - 1), FieldDescriptor.TYPE_SINT32: (-2**31, 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-2**31, 2**31 - 1), FieldDescriptor.TYPE_INT64: (-2**63, 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-2**63, 2**63 - 1), FieldDescriptor.TYPE_SFIXED64: (-2**63, 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1), FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1), FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
# Values at and around every bound the services enforce, and the limits of the wire types.
INTERESTING_INTS = (0, 1, -1, 2, 3, 4, 7, 12, 13, 31, 32, 33, 64, 65, 1999, 2000, 2001, 2100, 2101, 9999, 10_000,
                    10_001, 100_000, 100_001, limits.UNIT_PRICE_FEN_MAX, limits.UNIT_PRICE_FEN_MAX + 1,
                    limits.BILL_TOTAL_FEN_MAX, limits.BILL_TOTAL_FEN_MAX + 1, 2**31 - 1, -2**31, 2**32 - 1,
                    2**53 + 1, 2**62, 2**63 - 1, -2**63)

# --- strings ---------------------------------------------------------------------------------

JUNK_CHARACTERS = ("\x00", "\n", "\r", "\t", " ", "\u3000", "\u200b", "\u202e", "\ufeff", "\ufffd", "é", "中",
                   "𝔘", "🦠", "'", '"', "\\", ",", ";", "%", "_", "-", ".", "/", "０", "٣", "\x7f", "\u0085")
# Near misses of the contract's formats. Values the stack really knows (its encounters, settlements,
# members) come from the valid base requests that `corrupted` starts from.
ALMOST_RIGHT = (
    "2026-02-30", "2026-13-01", "2026-00-10", "0000-01-01", "0001-01-01", "9999-12-31", "2026-W10-1", "2026-3-4",
    "20260304", "2026-03-04T00:00:00", "+2026-03-04", "２０２６-03-04", "2026-13", "2026-00", "0001-01", "9999-12",
    "26-01", "2026/03", "000000", "999999", "440100\n", " 440100", "４４０１００", "H44010000001\n", "H00000000000",
    "h44010000001", "H4401000000１", "0", "-0", "0.0", "-1", "1e3", "1E-4", "1_000", "NaN", "Infinity", "-Infinity",
    "0.00001", "1.00000", "99999999999999999999", ".5", "5.", "0x10", "١٢", "J18.9\n", "j18.9", "A00", "Z99.999999999999",
    "00000000-0000-0000-0000-000000000000", "{12345678-1234-5678-1234-567812345678}",
    "urn:uuid:12345678-1234-5678-1234-567812345678", "12345678123456781234567812345678", "NULL", "null",
    "'; DROP TABLE members; --", "%s", "$1", "\\x00", "row 2", "local_code,national_code\n",
)


def decorated(text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A value with a junk character before or after it (a trailing newline passes a careless `$`)."""
    return st.tuples(st.sampled_from(JUNK_CHARACTERS), text, st.booleans()).map(
        lambda parts: parts[1] + parts[0] if parts[2] else parts[0] + parts[1])


def near_valid_text() -> st.SearchStrategy[str]:
    """Strings with the shape of the contract's identifiers, valid or nearly so."""
    shaped = st.one_of(
        st.uuids().map(str), st.uuids().map(lambda value: str(value).upper()),
        st.dates().map(lambda day: day.isoformat()),
        st.tuples(st.integers(0, 9999), st.integers(0, 13)).map(lambda ym: f"{ym[0]:04d}-{ym[1]:02d}"),
        st.from_regex(r"\d{6}", fullmatch=True),  # \d: Unicode digits too
        st.from_regex(r"H\d{11}", fullmatch=True),
        st.from_regex(r"[A-Z][0-9]{2}(\.[0-9]{1,3})?", fullmatch=True),
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
        st.integers().map(str),
        st.sampled_from(ALMOST_RIGHT),
    )
    return st.one_of(shaped, decorated(shaped))


def huge_text() -> st.SearchStrategy[str]:
    """Far beyond every length bound, yet below gRPC's 4 MB message limit."""
    return st.builds(lambda character, count: character * count, st.sampled_from(("a", "中", "𝔘", "\x00", " ", "9")),
                     st.sampled_from((65, 257, 4097, 100_000)))


def garbage_text() -> st.SearchStrategy[str]:
    unicode_junk = st.text(st.characters(codec="utf-8"), max_size=24)  # protobuf strings are UTF-8: no surrogates
    return st.one_of(st.just(""), st.sampled_from(JUNK_CHARACTERS), unicode_junk, near_valid_text(), huge_text())


# --- scalars -----------------------------------------------------------------------------------

def garbage_int(field: FieldDescriptor) -> st.SearchStrategy[int]:
    """The type's extremes, values at the bounds we enforce, and anything in between."""
    low, high = INT_RANGES[field.type]
    return st.one_of(st.sampled_from((low, high, -1 if low < 0 else 0)),
                     st.sampled_from([value for value in INTERESTING_INTS if low <= value <= high]),
                     st.integers(low, high))


def garbage_enum(field: FieldDescriptor) -> st.SearchStrategy[int]:
    """Known numbers and unknown ones (proto3 enums are open: any int32 reaches the server)."""
    known = [value.number for value in field.enum_type.values]
    return st.one_of(st.sampled_from(known), st.sampled_from([-1, max(known) + 1, 2**31 - 1, -2**31]),
                     st.integers(-2**31, 2**31 - 1))


def garbage_scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_STRING:
        return garbage_text()
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type == FieldDescriptor.TYPE_ENUM:
        return garbage_enum(field)
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32 if field.type == FieldDescriptor.TYPE_FLOAT else 64)
    return garbage_int(field)


# --- messages ----------------------------------------------------------------------------------

def message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


def is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def many(element: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    """A repeated field just past a bound (33 diagnoses, 1001 claims in a batch, 2001 lines): one element, copied."""
    return st.builds(lambda item, count: [item] * count, element,
                     st.sampled_from((limits.DIAGNOSES_PER_STAY_MAX + 1, BATCH_CLAIMS_MAX + 1,
                                      limits.LINES_PER_BILL_MAX + 1)))


def garbage_value(field: FieldDescriptor, depth: int, many_allowed: bool = True) -> st.SearchStrategy[Any]:
    """Garbage for the whole of `field` (a list for a repeated field, a dict for a map). Inside the copies of one
    `many` list, no other list is `many` too: a batch of 1001 claims of 2001 lines each is 2 million lines, which
    exhausts the test's memory before it tests anything."""
    if is_map(field):
        key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
        return st.dictionaries(garbage_scalar(key), garbage_element(value, depth + 1, many_allowed), max_size=3)
    if field.is_repeated:
        small = st.lists(garbage_element(field, depth, many_allowed), max_size=REPEATED_SMALL_MAX)
        return st.one_of(small, many(garbage_element(field, depth, False))) if many_allowed else small
    return garbage_element(field, depth, many_allowed)


def garbage_element(field: FieldDescriptor, depth: int, many_allowed: bool = True) -> st.SearchStrategy[Any]:
    """Garbage for one value of `field` (one element of a repeated field)."""
    if field.message_type is not None:
        return garbage_message(field.message_type, depth + 1, many_allowed)
    return garbage_scalar(field)


def garbage_message(descriptor: Descriptor, depth: int = 0, many_allowed: bool = True) -> st.SearchStrategy[Message]:
    """A message of `descriptor` whose fields are each unset or garbage; nesting stops at NESTING_MAX."""
    if depth > NESTING_MAX:
        return st.just(message_class(descriptor)())
    return _garbage_message(descriptor, depth, many_allowed)


@functools.cache
def _garbage_message(descriptor: Descriptor, depth: int, many_allowed: bool) -> st.SearchStrategy[Message]:
    fields = list(descriptor.fields)
    values = [st.one_of(st.none(), st.deferred(lambda field=field: garbage_value(field, depth, many_allowed)))
              for field in fields]
    return st.tuples(*values).map(lambda drawn: build(descriptor, zip(fields, drawn)))


def build(descriptor: Descriptor, assignments) -> Message:  # noqa: ANN001 - pairs of (field, value or None)
    message = message_class(descriptor)()
    for field, value in assignments:
        if value is not None:
            assign(message, field, value)
    return message


def assign(message: Message, field: FieldDescriptor, value: Any) -> None:
    """Set `field` of `message` to `value` (replacing what was there)."""
    message.ClearField(field.name)
    target = getattr(message, field.name)
    if is_map(field):
        for key, item in value.items():
            if field.message_type.fields_by_name["value"].message_type is not None:
                target[key].CopyFrom(item)
            else:
                target[key] = item
    elif field.is_repeated and field.message_type is not None:
        for item in value:
            target.add().CopyFrom(item)
    elif field.is_repeated:
        target.extend(value)
    elif field.message_type is not None:
        target.CopyFrom(value)
    else:
        setattr(message, field.name, value)


# --- corrupting a valid request ------------------------------------------------------------------

@dataclass(frozen=True)
class Spot:
    """One place in a message: `field` of the (sub)message reached by `steps` (name, index or None)."""

    steps: tuple[tuple[str, int | None], ...]
    field: FieldDescriptor

    @property
    def path(self) -> str:
        return ".".join(name if index is None else f"{name}[{index}]" for name, index in self.steps) + \
            ("." if self.steps else "") + self.field.name


def spots(message: Message, steps: tuple[tuple[str, int | None], ...] = ()) -> list[Spot]:
    """Every field of `message` and of the submessages it has set, depth first."""
    found = []
    for field in message.DESCRIPTOR.fields:
        found.append(Spot(steps, field))
        if field.message_type is None or is_map(field):
            continue
        if field.is_repeated:
            for index, item in enumerate(getattr(message, field.name)):
                found.extend(spots(item, (*steps, (field.name, index))))
        elif message.HasField(field.name):
            found.extend(spots(getattr(message, field.name), (*steps, (field.name, None))))
    return found


def holder(message: Message, spot: Spot) -> Message:
    """The (sub)message of `message` that holds `spot.field`."""
    target = message
    for name, index in spot.steps:
        target = getattr(target, name) if index is None else getattr(target, name)[index]
    return target


def edits(text: str) -> st.SearchStrategy[str]:
    """Small in-place edits of a short string: a junk character inserted, one character dropped or
    changed, padding, a case change, a truncation."""
    if not text or len(text) > EDITABLE_LENGTH_MAX:
        return garbage_text()
    position = st.integers(0, len(text))
    junk = st.one_of(st.sampled_from(JUNK_CHARACTERS), st.characters(codec="utf-8"))  # protobuf strings are UTF-8
    return st.one_of(
        st.tuples(position, junk).map(lambda pair: text[:pair[0]] + pair[1] + text[pair[0]:]),
        st.integers(0, len(text) - 1).map(lambda at: text[:at] + text[at + 1:]),
        st.tuples(st.integers(0, len(text) - 1), junk).map(lambda pair: text[:pair[0]] + pair[1] + text[pair[0] + 1:]),
        st.just(text.swapcase()), st.just(f" {text} "), st.just(text + "\n"), st.just(text * 2),
        st.integers(0, len(text) - 1).map(lambda at: text[:at]),
    )


def corruptions(message: Message, spot: Spot) -> st.SearchStrategy[Callable[[Message], None]]:
    """The ways to corrupt `spot` of `message`, each a function applied to a copy."""
    field = spot.field
    current = getattr(holder(message, spot), field.name)

    def replace_with(value: Any) -> Callable[[Message], None]:
        return lambda copy: assign(holder(copy, spot), field, value)

    def clear(copy: Message) -> None:
        holder(copy, spot).ClearField(field.name)

    options = [st.just(clear), garbage_value(field, 1).map(replace_with)]
    if field.is_repeated and not is_map(field) and len(current) > 0:
        items = list(current)
        options.append(st.integers(0, len(items) - 1).map(
            lambda at: replace_with(items[:at] + items[at + 1:])))  # one element dropped
        options.append(st.integers(0, len(items) - 1).map(
            lambda at: replace_with(items + [items[at]])))  # one element twice
        options.append(garbage_element(field, 1).map(lambda extra: replace_with(items + [extra])))
        if field.type == FieldDescriptor.TYPE_STRING:  # one element edited in place
            options.append(st.integers(0, len(items) - 1).flatmap(
                lambda at: edits(items[at]).map(lambda edited: replace_with(items[:at] + [edited] + items[at + 1:]))))
    elif field.type == FieldDescriptor.TYPE_STRING and not field.is_repeated:
        options.append(edits(current).map(replace_with))
    elif field.message_type is None and not field.is_repeated and field.type != FieldDescriptor.TYPE_BOOL:
        if field.type != FieldDescriptor.TYPE_ENUM and isinstance(current, int):
            low, high = INT_RANGES[field.type]
            options.append(st.sampled_from([current - 1, current + 1, -current]).filter(
                lambda value: low <= value <= high).map(replace_with))
    return st.one_of(options)


@st.composite
def corrupted(draw: st.DrawFn, base: Message) -> tuple[str, Message]:
    """`base` with one field corrupted; returns the corrupted field's path and the request."""
    spot = draw(st.sampled_from(spots(base)))
    change = draw(corruptions(base, spot))
    copy = type(base)()
    copy.CopyFrom(base)
    change(copy)
    return spot.path, copy
