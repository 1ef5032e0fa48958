"""The rule library (规则库): per rule, whether it runs, what its findings do, and its parameters — SPEC §12.2, §12.6.

`parse_rule_library(text)` takes one region's TOML text (the caller reads the file). One top-level table per
rule id; a missing table means the rule enabled with its defaults. An unknown rule id or key, an unknown action,
a wrong type or `block` on a suspicious rule is an `InvalidField` naming the key (`AUD-READMIT.action`).
The `version` is the SHA-256 of the text, recorded with a settlement later.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from clearing.errors import InvalidField
from clearing.limits import STAY_DAYS_MAX
from clearing.money import BP_WHOLE
from clearing.smart_audit.knowledge import text_version


class RuleId(StrEnum):
    """The nine rules, in the order of the SPEC §12.2 table (which is also the order of findings)."""

    SEX = "AUD-SEX"  # 限性别
    AGE = "AUD-AGE"  # 限年龄
    LEVEL = "AUD-LEVEL"  # 限医院级别
    DAYQTY = "AUD-DAYQTY"  # 超频次/超量
    BEDDAYS = "AUD-BEDDAYS"  # 床日超住院天数
    EXCL = "AUD-EXCL"  # 互斥项目重复收费
    OVERLAP = "AUD-OVERLAP"  # 重叠住院
    READMIT = "AUD-READMIT"  # 分解住院
    IDLE = "AUD-IDLE"  # 挂床住院


class Result(StrEnum):
    """A finding's certainty: definite (amount attributable) or suspicious (for review only)."""

    DEFINITE = "definite"
    SUSPICIOUS = "suspicious"


class Action(StrEnum):
    """What a finding does: recorded (warn), refuses Settle (block, 事中), becomes a dispute (dispute, 事后)."""

    WARN = "warn"
    BLOCK = "block"
    DISPUTE = "dispute"


RULE_NAMES = {
    RuleId.SEX: "限性别", RuleId.AGE: "限年龄", RuleId.LEVEL: "限医院级别", RuleId.DAYQTY: "超频次/超量",
    RuleId.BEDDAYS: "床日超住院天数", RuleId.EXCL: "互斥项目重复收费", RuleId.OVERLAP: "重叠住院",
    RuleId.READMIT: "分解住院", RuleId.IDLE: "挂床住院",
}
RULE_RESULTS = {rule: Result.SUSPICIOUS if rule in (RuleId.READMIT, RuleId.IDLE) else Result.DEFINITE
                for rule in RuleId}
LINE_RULES = (RuleId.SEX, RuleId.AGE, RuleId.LEVEL, RuleId.DAYQTY, RuleId.BEDDAYS, RuleId.EXCL)
CROSS_STAY_RULES = (RuleId.OVERLAP, RuleId.READMIT)  # need the member's other stays (insured agency)
RULE_ORDER = {rule: index for index, rule in enumerate(RuleId)}

READMIT_DAYS_DEFAULT = 15
READMIT_EXEMPT_DEFAULT = ("Z51.0", "Z51.1")  # radiotherapy and chemotherapy cycles (放疗/化疗)
IDLE_MIN_DAYS_DEFAULT = 4
IDLE_SHARE_BP_DEFAULT = 5000
EXEMPT_PREFIXES_MAX = 64
EXEMPT_PREFIX = re.compile(r"^[A-Za-z](?:[0-9]{0,2}|[0-9]{2}\.?[0-9A-Za-z]{1,8})\Z")  # Z51, Z51.1, Z511, C3
PARAMETERS = {RuleId.READMIT: {"days", "exempt"}, RuleId.IDLE: {"min_days", "share_bp"}}


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """One rule's entry. Parameters of other rules keep their defaults and are never read."""

    rule_id: RuleId
    enabled: bool
    action: Action
    days: int = READMIT_DAYS_DEFAULT  # AUD-READMIT
    exempt: tuple[str, ...] = READMIT_EXEMPT_DEFAULT  # AUD-READMIT, as written (compared without case or dots)
    min_days: int = IDLE_MIN_DAYS_DEFAULT  # AUD-IDLE
    share_bp: int = IDLE_SHARE_BP_DEFAULT  # AUD-IDLE

    @property
    def result(self) -> Result:
        return RULE_RESULTS[self.rule_id]

    @property
    def name(self) -> str:
        return RULE_NAMES[self.rule_id]


@dataclass(frozen=True, slots=True)
class RuleLibrary:
    """One version of a region's rule library: settings for all nine rules."""

    version: str  # SHA-256 (hex) of the TOML text
    rules: tuple[RuleSettings, ...]  # one per RuleId, in RuleId order

    def settings(self, rule_id: RuleId) -> RuleSettings:
        return self.rules[RULE_ORDER[rule_id]]

    def enabled(self, rule_id: RuleId) -> bool:
        return self.settings(rule_id).enabled


def default_action(rule_id: RuleId) -> Action:
    """SPEC §12.6: `block` for AUD-OVERLAP, `warn` for every other rule."""
    return Action.BLOCK if rule_id is RuleId.OVERLAP else Action.WARN


def default_library(version: str = "default") -> RuleLibrary:
    """Every rule enabled with its defaults (what an empty file gives, apart from the version)."""
    return RuleLibrary(version, tuple(RuleSettings(rule, True, default_action(rule)) for rule in RuleId))


def parse_rule_library(text: str) -> RuleLibrary:
    """Parse and validate one rule-library file's text (SPEC §12.6)."""
    try:
        document = tomllib.loads(text)
    except ValueError as error:  # TOMLDecodeError, and ValueError for integers of thousands of digits
        raise InvalidField("rules", f"not valid TOML: {error}") from None
    known = {rule.value for rule in RuleId}
    for key in sorted(document):
        if key not in known:
            raise InvalidField(key, f"unknown rule id (expected one of {', '.join(rule.value for rule in RuleId)})")
        if not isinstance(document[key], dict):
            raise InvalidField(key, "must be a table ([AUD-…])")
    rules = tuple(parse_settings(rule, document.get(rule.value, {})) for rule in RuleId)
    return RuleLibrary(version=text_version(text), rules=rules)


def parse_settings(rule_id: RuleId, table: dict[str, Any]) -> RuleSettings:
    where = rule_id.value
    allowed = {"enabled", "action"} | PARAMETERS.get(rule_id, set())
    for key in sorted(table):
        if key not in allowed:
            raise InvalidField(f"{where}.{key}", f"unknown key (expected one of {', '.join(sorted(allowed))})")
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidField(f"{where}.enabled", "must be true or false")
    action_text = table.get("action", default_action(rule_id).value)
    if action_text not in [action.value for action in Action]:
        raise InvalidField(f"{where}.action", f"unknown action {action_text!r} (expected warn, block or dispute)")
    action = Action(action_text)
    if action is Action.BLOCK and RULE_RESULTS[rule_id] is Result.SUSPICIOUS:
        raise InvalidField(f"{where}.action", "a suspicious rule cannot block (use warn or dispute)")
    settings = RuleSettings(rule_id, enabled, action)
    if rule_id is RuleId.READMIT:
        return RuleSettings(rule_id, enabled, action,
                            days=integer(table.get("days", READMIT_DAYS_DEFAULT), f"{where}.days", 0, STAY_DAYS_MAX),
                            exempt=exempt_prefixes(table.get("exempt", list(READMIT_EXEMPT_DEFAULT)), f"{where}.exempt"))
    if rule_id is RuleId.IDLE:
        return RuleSettings(rule_id, enabled, action,
                            min_days=integer(table.get("min_days", IDLE_MIN_DAYS_DEFAULT), f"{where}.min_days", 1,
                                             STAY_DAYS_MAX),
                            share_bp=integer(table.get("share_bp", IDLE_SHARE_BP_DEFAULT), f"{where}.share_bp", 0,
                                             BP_WHOLE))
    return settings


def integer(value: Any, where: str, value_min: int, value_max: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(where, "must be an integer")
    if not value_min <= value <= value_max:
        raise InvalidField(where, f"must be from {value_min} to {value_max}")
    return value


def exempt_prefixes(value: Any, where: str) -> tuple[str, ...]:
    """ICD-10 prefixes (`Z51.1`, `Z511`, `Z51`); an empty list exempts nothing."""
    if not isinstance(value, list):
        raise InvalidField(where, "must be a list of ICD-10 prefixes such as \"Z51.1\"")
    if len(value) > EXEMPT_PREFIXES_MAX:
        raise InvalidField(where, f"must have at most {EXEMPT_PREFIXES_MAX} prefixes")
    for index, prefix in enumerate(value):
        if not isinstance(prefix, str) or not EXEMPT_PREFIX.match(prefix):
            raise InvalidField(f"{where}[{index}]", "must be an ICD-10 prefix such as \"Z51.1\"")
    return tuple(value)


def icd_key(code: str) -> str:
    """A diagnosis or prefix compared without case or dots (SPEC §12.6, READMIT's `exempt`)."""
    return code.upper().replace(".", "")
