"""The entry conditions of MDCs and ADRGs, parsed from the tables' neutral notation into predicate trees.

The notation is described in services/drg/reference/README.md ("Condition notation"). Parsing it, rather
than hard-coding one function per ADRG, keeps the rules in the data: a condition the parser does not know is
refused when the tables are loaded, never silently read as false.

Grammar (`and` binds tighter than `or`, as in the source):

    expr  := conj ("or" conj)*
    conj  := atom ("and" atom)*
    atom  := "(" expr ")" | "always"
           | ("principal_diagnosis" | "main_procedure") "in" LIST
           | ("any diagnosis" | "any procedure" | "no procedure") "in" LIST
           | FIELD OP INTEGER                          (age_days, birth_weight_g, age_years, sex)
           | MDCZ_REGIONS ">=" INTEGER                 (the multiple-trauma body-region count)
    LIST  := a list name, optionally with "[procedure_group=N]"

Missing values: a comparison on a missing field is false (the source's dropped guards), and a birth weight of
0 counts as missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from clearing.errors import InvalidField

# The one condition that is not a list lookup: how many MDCZ body regions the case's diagnoses cover.
MDCZ_REGIONS_TEXT = "count_distinct(mdcz_body_region over all diagnoses found in mdc_principal_diagnosis)"
MDCZ_REGIONS = "MDCZ_REGIONS"
# `sex == 1 (male)`: the parenthesis is a gloss, not a group.
SEX_GLOSS = re.compile(r"(sex == [12]) \((?:male|female)\)")
TOKEN = re.compile(r"\s*(\(|\)|<=|>=|==|<|>|[^\s()<>=\[]+(?:\[[^\]\s]*\])?)")
LIST_NAME = re.compile(r"^([a-z_0-9]+)(?:\[procedure_group=([0-9]+)\])?\Z")

LIST_NAMES = frozenset({"principal_diagnosis", "principal_diagnosis_2", "main_procedure", "procedure_2",
                        "mdc_principal_diagnosis", "valid_procedures"})
FIELDS = frozenset({"age_days", "birth_weight_g", "age_years", "sex"})


class Subject(StrEnum):
    """What an `in` test looks at."""

    PRINCIPAL_DIAGNOSIS = "principal_diagnosis"
    MAIN_PROCEDURE = "main_procedure"
    ANY_DIAGNOSIS = "any diagnosis"
    ANY_PROCEDURE = "any procedure"
    NO_PROCEDURE = "no procedure"


@dataclass(frozen=True, slots=True)
class InList:
    subject: Subject
    list_name: str
    procedure_group: str | None = None  # JA1, JA2, NA1: only codes whose (first) group label is this


@dataclass(frozen=True, slots=True)
class Compare:
    field: str
    op: str
    value: int


@dataclass(frozen=True, slots=True)
class RegionCount:
    """MDCZ: at least `minimum` different body regions among the case's diagnoses on the MDCZ list."""

    minimum: int


@dataclass(frozen=True, slots=True)
class Always:
    pass


@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Condition, ...]


Condition = InList | Compare | RegionCount | Always | And | Or


def parse_condition(text: str, field: str) -> Condition:
    """Parse one condition of the notation; `field` names it in the error (`…csv: row 7.condition`)."""
    normal = SEX_GLOSS.sub(r"\1", text.replace(MDCZ_REGIONS_TEXT, MDCZ_REGIONS))
    tokens = tokenize(normal, field)
    parser = Parser(tokens, field)
    condition = parser.expression()
    if parser.position != len(tokens):
        raise InvalidField(field, f"unexpected {tokens[parser.position]!r} in condition {text!r}")
    return condition


def tokenize(text: str, field: str) -> list[str]:
    tokens = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None:
            raise InvalidField(field, f"cannot read condition {text!r}")
        tokens.append(match.group(1))
        position = match.end()
    if not tokens:
        raise InvalidField(field, "empty condition")
    return tokens


class Parser:
    """Recursive descent over the token list; every error names the table field."""

    def __init__(self, tokens: list[str], field: str) -> None:
        self.tokens = tokens
        self.field = field
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            want = f"{expected!r}" if expected else "more"
            raise InvalidField(self.field, f"expected {want} at token {self.position + 1} of the condition")
        self.position += 1
        return token

    def expression(self) -> Condition:
        parts = [self.conjunction()]
        while self.peek() == "or":
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def conjunction(self) -> Condition:
        parts = [self.atom()]
        while self.peek() == "and":
            self.take()
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def atom(self) -> Condition:
        token = self.take()
        if token == "(":
            inner = self.expression()
            self.take(")")
            return inner
        if token == "always":
            return Always()
        if token in ("principal_diagnosis", "main_procedure"):
            return self.in_list(Subject(token))
        if token in ("any", "no"):
            noun = self.take()
            subject_text = f"{token} {noun}"
            if subject_text not in (Subject.ANY_DIAGNOSIS, Subject.ANY_PROCEDURE, Subject.NO_PROCEDURE):
                raise InvalidField(self.field, f"unknown subject {subject_text!r}")
            return self.in_list(Subject(subject_text))
        if token in FIELDS:
            return Compare(token, self.operator(), self.integer())
        if token == MDCZ_REGIONS:
            self.take(">=")
            return RegionCount(self.integer())
        raise InvalidField(self.field, f"unknown term {token!r} in condition")

    def in_list(self, subject: Subject) -> InList:
        self.take("in")
        name = self.take()
        match = LIST_NAME.match(name)
        if match is None or match.group(1) not in LIST_NAMES:
            raise InvalidField(self.field, f"unknown list {name!r}")
        return InList(subject, match.group(1), match.group(2))

    def operator(self) -> str:
        token = self.take()
        if token not in ("<", "<=", ">", ">=", "=="):
            raise InvalidField(self.field, f"unknown operator {token!r}")
        return token

    def integer(self) -> int:
        token = self.take()
        if not token.isascii() or not token.isdigit():
            raise InvalidField(self.field, f"expected an integer, found {token!r}")
        return int(token)


def lists_used(condition: Condition) -> set[tuple[str, str | None]]:
    """Every (list name, procedure group) the condition reads, to check the tables hold them."""
    if isinstance(condition, InList):
        return {(condition.list_name, condition.procedure_group)}
    if isinstance(condition, And | Or):
        return set().union(*(lists_used(part) for part in condition.parts))
    return set()


# ---- evaluation ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Facts:
    """What conditions read, computed once per case. `sex` is the tables' number: 1 male, 2 female."""

    principal_diagnosis: str
    diagnoses: frozenset[str]  # principal and other diagnoses
    main_procedure: str | None
    procedures: frozenset[str]
    sex: int
    age_years: int
    age_days: int | None
    birth_weight_g: int | None  # None or 0: missing


Predicate = Callable[[Facts], bool]
Resolver = Callable[[str, str | None], frozenset[str]]


def compile_condition(condition: Condition, resolve: Resolver, regions: Mapping[str, str]) -> Predicate:
    """Turn a parsed condition into a function of `Facts`.

    `resolve(list_name, procedure_group)` gives the frozenset a list name means in this context (the ADRG's own
    lists, the MDC's entry list, the valid procedures); `regions` maps an MDCZ code to its body region.
    Compiling once at load keeps grouping to set lookups.
    """
    if isinstance(condition, Always):
        return lambda facts: True
    if isinstance(condition, And):
        parts = tuple(compile_condition(part, resolve, regions) for part in condition.parts)
        return lambda facts: all(part(facts) for part in parts)
    if isinstance(condition, Or):
        parts = tuple(compile_condition(part, resolve, regions) for part in condition.parts)
        return lambda facts: any(part(facts) for part in parts)
    if isinstance(condition, Compare):
        return compile_compare(condition)
    if isinstance(condition, RegionCount):
        minimum = condition.minimum
        return lambda facts: len({regions[code] for code in facts.diagnoses if code in regions}) >= minimum
    assert isinstance(condition, InList), condition
    codes = resolve(condition.list_name, condition.procedure_group)
    match condition.subject:
        case Subject.PRINCIPAL_DIAGNOSIS:
            return lambda facts: facts.principal_diagnosis in codes
        case Subject.MAIN_PROCEDURE:
            return lambda facts: facts.main_procedure is not None and facts.main_procedure in codes
        case Subject.ANY_DIAGNOSIS:
            return lambda facts: not codes.isdisjoint(facts.diagnoses)
        case Subject.ANY_PROCEDURE:
            return lambda facts: not codes.isdisjoint(facts.procedures)
        case Subject.NO_PROCEDURE:
            return lambda facts: codes.isdisjoint(facts.procedures)
    raise AssertionError(condition.subject)


OPERATORS = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
}


def compile_compare(condition: Compare) -> Predicate:
    test = OPERATORS[condition.op]
    value = condition.value
    name = condition.field

    def compare(facts: Facts) -> bool:
        actual = getattr(facts, name)
        # A missing value makes the comparison false; a birth weight of 0 is missing too (the source's guard).
        if actual is None or (name == "birth_weight_g" and actual == 0):
            return False
        return test(actual, value)

    return compare


def fields_compared(condition: Condition) -> set[str]:
    """The case fields (age, sex, weight) a condition compares, for reasons that say which one failed."""
    if isinstance(condition, Compare):
        return {condition.field}
    if isinstance(condition, And | Or):
        return set().union(*(fields_compared(part) for part in condition.parts))
    return set()


def condition_subjects(condition: Condition) -> set[Subject]:
    """The kinds of `in` test a condition makes, for reasons that show the codes it read."""
    if isinstance(condition, InList):
        return {condition.subject}
    if isinstance(condition, And | Or):
        return set().union(*(condition_subjects(part) for part in condition.parts))
    return set()
