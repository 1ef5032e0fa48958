"""The operator CLI's offline smart audit (智能审核): `clearing-admin audit --catalog … --kb … --rules … --member …
--bill … [--history …]` (SPEC §12.4) and `clearing-admin rules validate FILE…` (§12.6).

No server, no database: read the files, call `clearing/smart_audit`, print the result. Bad input is an
`InputError` naming its source and field (`kb: row 7.sex: …`, `rules: AUD-READMIT.action: …`), turned into the
one-line `error: …` and exit 2 by `services.cli.app.main`, exactly as for `quote` (whose file loading this reuses).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from clearing.bill import bill_from_dict
from clearing.catalogue import parse_catalogue_csv
from clearing.errors import DomainError
from clearing.member import member_from_dict
from clearing.smart_audit.knowledge import parse_knowledge_base
from clearing.smart_audit.library import Action, RuleId, RuleLibrary, parse_rule_library
from clearing.smart_audit.report import audit_json, history_from_list, member_facts_from_dict
from clearing.smart_audit.rules import audit_stay
from services.cli.offline import InputError, blamed_on, quote_error_source, read_json, read_text


def audit_files(catalog_path: Path, kb_path: Path, rules_path: Path, member_path: Path, bill_path: Path,
                history_path: Path | None) -> dict[str, Any]:
    """Run SPEC §12.2 on one stay from the files and return the §12.4 JSON; persists nothing."""
    catalog_text = read_text(catalog_path, "catalog")
    kb_text = read_text(kb_path, "kb")
    rules_text = read_text(rules_path, "rules")
    member_data = read_json(member_path, "member")
    bill_data = read_json(bill_path, "bill")
    history_data = read_json(history_path, "history") if history_path is not None else []
    with blamed_on("bill"):
        bill = bill_from_dict(bill_data)
    with blamed_on("member"):
        member_from_dict(member_data)  # the §5.3 member, validated as for a quote
        member = member_facts_from_dict(member_data)
    with blamed_on("history"):
        history = history_from_list(history_data)
    with blamed_on("catalog"):
        catalogue = parse_catalogue_csv(catalog_text, region=bill.region)  # the treating region's catalogue
    with blamed_on("kb"):
        knowledge = parse_knowledge_base(kb_text)
    with blamed_on("rules"):
        library = parse_rule_library(rules_text)
    try:
        result = audit_stay(bill, catalogue, knowledge, library, member, history)
    except DomainError as error:
        raise InputError(quote_error_source(error), error.message) from None
    return audit_json(result)


@dataclass(frozen=True, slots=True)
class RulesFile:
    path: Path
    library: RuleLibrary


def load_rule_libraries(paths: list[Path]) -> list[RulesFile]:
    files = []
    for path in paths:
        text = read_text(path, "rules")  # read errors name the path themselves
        with blamed_on(f"rules {path}"):
            files.append(RulesFile(path, parse_rule_library(text)))
    return files


def show_rule_libraries(console: Console, files: list[RulesFile]) -> None:
    """Per file, a short summary: its version, which rules run with which action, and the parameters."""
    for item in files:
        library = item.library
        enabled = [rule for rule in RuleId if library.enabled(rule)]
        console.print(f"{item.path}: {len(enabled)} of {len(RuleId)} rules enabled, version {library.version}: OK",
                      soft_wrap=True)
        by_action = [f"{action.value}: {', '.join(rule.value for rule in enabled if library.settings(rule).action is action)}"
                     for action in Action if any(library.settings(rule).action is action for rule in enabled)]
        disabled = [rule.value for rule in RuleId if not library.enabled(rule)]
        console.print("  " + "; ".join(by_action + ([f"disabled: {', '.join(disabled)}"] if disabled else [])),
                      soft_wrap=True)
        readmit, idle = library.settings(RuleId.READMIT), library.settings(RuleId.IDLE)
        console.print(f"  AUD-READMIT days {readmit.days}, exempt {', '.join(readmit.exempt) or 'none'}; "
                      f"AUD-IDLE min_days {idle.min_days}, share_bp {idle.share_bp}", soft_wrap=True)
