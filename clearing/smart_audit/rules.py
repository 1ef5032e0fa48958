"""The nine audit rules of SPEC §12.2, with the readings of §12.6 — pure: values in, findings out.

`line_findings` runs the rules that need the bill and the catalogue (SEX, AGE, LEVEL, DAYQTY, BEDDAYS, EXCL
and IDLE: the treating agency's 事前/事中 and everyone's 事后); `cross_stay_findings` runs OVERLAP and READMIT,
which need only the stay's dates and diagnoses and the member's other stays (the insured agency at adjudication);
`audit_stay` runs both, which is what `clearing-admin audit` prints.

A line is audited by the knowledge base when its catalogue row valid on the service date (`Catalogue.row_on`)
has a national code: grade C and restricted lines too, with their whole amount. DAYQTY and EXCL key on that
national code, so two local codes of one national item share one limit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from clearing.bill import Bill, BillLine
from clearing.catalogue import Catalogue, CatalogueRow
from clearing.errors import InvalidField
from clearing.money import BP_WHOLE, QTY_SCALE, format_qty, line_amount_fen
from clearing.smart_audit.knowledge import ItemFacts, KnowledgeBase
from clearing.smart_audit.library import RuleId, RuleLibrary, RuleSettings, icd_key
from clearing.smart_audit.model import AuditResult, Finding, MemberFacts, OtherStay

LineKey = tuple[date, tuple[int, int, str] | tuple[int, str]]


@dataclass(frozen=True, slots=True)
class AuditedLine:
    """A bill line with the catalogue row valid on its date (which has a national code) and that code's facts."""

    line: BillLine
    row: CatalogueRow
    facts: ItemFacts | None  # None: the knowledge base says nothing about the code

    @property
    def national_code(self) -> str:
        return self.row.national_code


def line_id_key(line_id: str) -> tuple[int, int, str] | tuple[int, str]:
    """Line ids compare numerically when both are digit strings, otherwise as strings (SPEC §12.6).

    Taken pairwise that rule is not an order (9 < 10 numerically, "10" < "1a" and "1a" < "9" as strings), and
    sorting by it would depend on the input order. So: digit ids first, numerically (equal values by text),
    then the others as strings — which agrees with the SPEC for every pair of two digit ids or two others."""
    if line_id.isascii() and line_id.isdigit():
        return (0, int(line_id), line_id)
    return (1, line_id)


def line_key(line: BillLine) -> LineKey:
    """Line order: service date, then line id (SPEC §12.6)."""
    return line.service_date, line_id_key(line.line_id)


def age_on(birth_date: date, day: date) -> int:
    """Whole years completed on `day`: a year completes on the birthday itself; someone born on 29 February
    ages on 1 March in other years (28 February still sorts before 29 February)."""
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - before_birthday


def stay_days(admitted_on: date, discharged_on: date) -> int:
    """max(1, discharged_on − admitted_on) (SPEC §12.6 BEDDAYS; AUD-IDLE uses the same count)."""
    return max(1, (discharged_on - admitted_on).days)


def audit_stay(
    bill: Bill, catalogue: Catalogue, knowledge: KnowledgeBase, library: RuleLibrary, member: MemberFacts,
    history: Sequence[OtherStay] = (),
) -> AuditResult:
    """Every enabled rule on one stay, findings in SPEC order (the offline audit, SPEC §12.4)."""
    findings = line_findings(bill, catalogue, knowledge, library, member) + cross_stay_findings(
        bill.admitted_on, bill.discharged_on, bill.diagnoses, history, library)
    ordered = tuple(sorted(findings, key=lambda item: RULE_POSITION[item.rule_id]))  # stable: keeps in-rule order
    return AuditResult(ordered, knowledge.version, library.version)


RULE_POSITION = {rule: index for index, rule in enumerate(RuleId)}


def line_findings(
    bill: Bill, catalogue: Catalogue, knowledge: KnowledgeBase, library: RuleLibrary, member: MemberFacts,
) -> tuple[Finding, ...]:
    """SEX, AGE, LEVEL, DAYQTY, BEDDAYS, EXCL and IDLE: what the bill, the catalogue and the knowledge base show."""
    if member.birth_date > bill.admitted_on:
        raise InvalidField("member.birth_date", "is after the stay's admission")
    keys = {line.line_id: line_key(line) for line in bill.lines}  # line ids are unique in a bill
    lines = sorted(bill.lines, key=lambda line: keys[line.line_id])
    resolved = {line.line_id: audited_line(line, catalogue, knowledge) for line in lines}
    audited = [item for item in resolved.values() if item is not None]  # in line order
    findings: list[Finding] = []
    checks = (
        (RuleId.SEX, lambda rule: per_line(rule, audited, sex_violation(member))),
        (RuleId.AGE, lambda rule: per_line(rule, audited, age_violation(member))),
        (RuleId.LEVEL, lambda rule: per_line(rule, audited, level_violation(bill.hospital_level))),
        (RuleId.DAYQTY, lambda rule: by_first_line(day_quantity(rule, audited), keys)),
        (RuleId.BEDDAYS, lambda rule: bed_days(rule, audited, stay_days(bill.admitted_on, bill.discharged_on))),
        (RuleId.EXCL, lambda rule: by_first_line(exclusive_groups(rule, audited), keys)),
        (RuleId.IDLE, lambda rule: idle_stay(rule, bill, lines, resolved)),
    )
    for rule_id, check in checks:
        settings = library.settings(rule_id)
        if settings.enabled:
            findings.extend(check(settings))
    return tuple(findings)


def audited_line(line: BillLine, catalogue: Catalogue, knowledge: KnowledgeBase) -> AuditedLine | None:
    """The line with its row and facts, or None when it is not audited (unmapped or not valid on its date)."""
    row = catalogue.row_on(line.code, line.service_date)
    if not isinstance(row, CatalogueRow) or not row.national_code:
        return None
    return AuditedLine(line, row, knowledge.facts(row.national_code))


def finding(settings: RuleSettings, amount_fen: int, violating: Iterable[BillLine], involved: Iterable[BillLine],
            evidence: str) -> Finding:
    return Finding(
        rule_id=settings.rule_id, rule_name=settings.name, result=settings.result, action=settings.action,
        amount_fen=amount_fen,
        violating_line_ids=tuple(line.line_id for line in sorted(violating, key=line_key)),
        involved_line_ids=tuple(line.line_id for line in sorted(involved, key=line_key)),
        evidence=evidence,
    )


def item_text(item: AuditedLine) -> str:
    return f"{item.row.name} ({item.national_code})"


# ---- one finding per line: SEX, AGE, LEVEL --------------------------------------------------------------


def per_line(settings: RuleSettings, audited: Sequence[AuditedLine], violation) -> list[Finding]:  # noqa: ANN001
    """A finding for every audited line `violation` explains (returns its evidence) — amount: the line's."""
    findings = []
    for item in audited:  # already in line order
        evidence = violation(item) if item.facts is not None else None
        if evidence is not None:
            findings.append(finding(settings, item.line.amount_fen, (item.line,), (), evidence))
    return findings


def sex_violation(member: MemberFacts):  # noqa: ANN201 - a function AuditedLine → evidence | None
    def check(item: AuditedLine) -> str | None:
        if item.facts.sex is None or item.facts.sex == member.sex:
            return None
        return f"{item_text(item)} is payable for sex {item.facts.sex} only; the member is {member.sex}"
    return check


def age_violation(member: MemberFacts):  # noqa: ANN201
    def check(item: AuditedLine) -> str | None:
        facts = item.facts
        age = age_on(member.birth_date, item.line.service_date)
        too_young = facts.min_age is not None and age < facts.min_age
        too_old = facts.max_age is not None and age > facts.max_age
        if not (too_young or too_old):
            return None
        bounds = f"{'' if facts.min_age is None else facts.min_age}..{'' if facts.max_age is None else facts.max_age}"
        return f"{item_text(item)} is payable at ages {bounds}; the member is {age} on {item.line.service_date}"
    return check


def level_violation(hospital_level: int):  # noqa: ANN201
    def check(item: AuditedLine) -> str | None:
        level = item.facts.min_hospital_level
        if level is None or hospital_level >= level:
            return None
        return f"{item_text(item)} needs a hospital of level {level} or higher; the hospital is level {hospital_level}"
    return check


# ---- excess quantities: DAYQTY, BEDDAYS ---------------------------------------------------------------------


def take_excess(lines: Sequence[BillLine], excess_e4: int) -> tuple[int, list[BillLine]]:
    """Take `excess_e4` from the last lines first (by service date, then line id): each line that supplies
    quantity q contributes round_half_up(q × unit_price_fen). Returns the amount and the supplying lines."""
    assert excess_e4 > 0
    assert excess_e4 <= sum(line.qty_e4 for line in lines)
    amount_fen, supplying, left_e4 = 0, [], excess_e4
    for line in sorted(lines, key=line_key, reverse=True):
        if left_e4 == 0:
            break
        taken_e4 = min(left_e4, line.qty_e4)
        amount_fen += line_amount_fen(taken_e4, line.unit_price_fen)
        supplying.append(line)
        left_e4 -= taken_e4
    assert left_e4 == 0
    assert amount_fen <= sum(line.amount_fen for line in supplying)
    return amount_fen, supplying


def day_quantity(settings: RuleSettings, audited: Sequence[AuditedLine]) -> list[Finding]:
    """AUD-DAYQTY: one finding per (national code, service date) whose Σ qty exceeds `max_qty_per_day`."""
    groups: dict[tuple[str, date], list[AuditedLine]] = defaultdict(list)
    for item in audited:
        if item.facts is not None and item.facts.max_qty_per_day_e4 is not None:
            groups[(item.national_code, item.line.service_date)].append(item)
    findings = []
    for (code, day), items in groups.items():
        lines = [item.line for item in items]
        limit_e4 = items[0].facts.max_qty_per_day_e4
        total_e4 = sum(line.qty_e4 for line in lines)
        if total_e4 <= limit_e4:
            continue
        amount_fen, supplying = take_excess(lines, total_e4 - limit_e4)
        findings.append(finding(
            settings, amount_fen, supplying, [line for line in lines if line not in supplying],
            f"{item_text(items[0])} on {day}: {format_qty(total_e4)} charged, at most {format_qty(limit_e4)} a day; "
            f"excess {format_qty(total_e4 - limit_e4)}"))
    return findings


def bed_days(settings: RuleSettings, audited: Sequence[AuditedLine], days: int) -> list[Finding]:
    """AUD-BEDDAYS: Σ qty of every bed-day line, wherever dated, against the stay days."""
    lines = [item.line for item in audited if item.facts is not None and item.facts.bed_day]
    total_e4 = sum(line.qty_e4 for line in lines)
    if total_e4 <= days * QTY_SCALE:
        return []
    excess_e4 = total_e4 - days * QTY_SCALE
    amount_fen, supplying = take_excess(lines, excess_e4)
    return [finding(settings, amount_fen, supplying, [line for line in lines if line not in supplying],
                    f"{format_qty(total_e4)} bed-days charged for a stay of {days} day(s); "
                    f"excess {format_qty(excess_e4)}")]


# ---- AUD-EXCL --------------------------------------------------------------------------------------------


def exclusive_groups(settings: RuleSettings, audited: Sequence[AuditedLine]) -> list[Finding]:
    """One finding per (service date, group) with two or more national codes: all but the kept code violate.
    Kept: the code with the largest amount that day; ties go to the lowest code."""
    groups: dict[tuple[date, str], list[AuditedLine]] = defaultdict(list)
    for item in audited:
        if item.facts is not None and item.facts.exclusive_group:
            groups[(item.line.service_date, item.facts.exclusive_group)].append(item)
    findings = []
    for (day, group), items in groups.items():
        by_code: dict[str, int] = defaultdict(int)
        for item in items:
            by_code[item.national_code] += item.line.amount_fen
        if len(by_code) < 2:
            continue
        kept = min(by_code, key=lambda code: (-by_code[code], code))
        violating = [item.line for item in items if item.national_code != kept]
        involved = [item.line for item in items if item.national_code == kept]
        findings.append(finding(
            settings, sum(line.amount_fen for line in violating), violating, involved,
            f"group {group} on {day}: codes {', '.join(sorted(by_code))} charged; kept {kept} "
            f"(the largest amount that day, {by_code[kept]} fen)"))
    return findings


def by_first_line(findings: list[Finding], keys: dict[str, LineKey]) -> list[Finding]:
    """Findings of one rule are ordered by their first line involved (violating or involved), in line order."""
    if len(findings) < 2:
        return findings
    return sorted(findings, key=lambda item: min(keys[line_id]
                                                 for line_id in item.violating_line_ids + item.involved_line_ids))


# ---- AUD-IDLE --------------------------------------------------------------------------------------------


def idle_stay(settings: RuleSettings, bill: Bill, lines: Sequence[BillLine],
              resolved: dict[str, AuditedLine | None]) -> list[Finding]:
    """AUD-IDLE (挂床住院): the share of stay days on which only bed-day or exclusive-group items are charged.

    Days run from admitted_on to discharged_on − 1 (a same-day stay: that one day). A day with no line is not
    idle; a line that is not audited (unmapped, not valid on its date) or has no knowledge-base row makes its
    day not idle. Compared exactly: idle days × 10000 > share_bp × stay days."""
    days = stay_days(bill.admitted_on, bill.discharged_on)
    if days < settings.min_days:
        return []
    by_day: dict[date, list[BillLine]] = defaultdict(list)
    for line in lines:
        by_day[line.service_date].append(line)
    idle = 0
    for offset in range(days):  # bounded by STAY_DAYS_MAX
        day_lines = by_day.get(bill.admitted_on + timedelta(days=offset), [])
        if day_lines and all(is_bed_or_group(resolved[line.line_id]) for line in day_lines):
            idle += 1
    if idle * BP_WHOLE <= settings.share_bp * days:
        return []
    return [finding(settings, 0, (), (),
                    f"{idle} of {days} stay days charge only bed-day or exclusive-group items "
                    f"(more than {settings.share_bp} bp of the stay)")]


def is_bed_or_group(item: AuditedLine | None) -> bool:
    return item is not None and item.facts is not None and (item.facts.bed_day or bool(item.facts.exclusive_group))


# ---- cross-stay rules: OVERLAP, READMIT ---------------------------------------------------------------------


def cross_stay_findings(
    admitted_on: date, discharged_on: date, diagnoses: Sequence[str], history: Sequence[OtherStay],
    library: RuleLibrary,
) -> tuple[Finding, ...]:
    """AUD-OVERLAP then AUD-READMIT against the member's other live stays, each in the history's order.
    The caller leaves this stay itself out of `history`."""
    findings: list[Finding] = []
    overlap = library.settings(RuleId.OVERLAP)
    if overlap.enabled:
        for other in history:
            # A discharge day equal to the next admission day is a transfer, not an overlap.
            if admitted_on < other.discharged_on and other.admitted_on < discharged_on:
                findings.append(finding(overlap, 0, (), (),
                                        f"overlaps settlement {other.settlement_id} "
                                        f"({other.admitted_on}..{other.discharged_on})"))
    readmit = library.settings(RuleId.READMIT)
    if readmit.enabled and not is_exempt(diagnoses[0], readmit.exempt):
        category = diagnoses[0][:3].upper()
        for other in history:
            gap = (admitted_on - other.discharged_on).days
            if 0 <= gap <= readmit.days and other.diagnoses[0][:3].upper() == category:
                findings.append(finding(readmit, 0, (), (),
                                        f"admitted {gap} day(s) after settlement {other.settlement_id} was discharged "
                                        f"({other.discharged_on}), principal diagnosis category {category} both times"))
    return tuple(findings)


def is_exempt(principal: str, exempt: Sequence[str]) -> bool:
    """The new stay's principal diagnosis starts with an exempt prefix, without case or dots (Z51.1 化疗)."""
    return any(icd_key(principal).startswith(icd_key(prefix)) for prefix in exempt)
