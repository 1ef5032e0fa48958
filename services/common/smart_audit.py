"""The smart-audit libraries (智能审核) an agency runs with: the knowledge base (知识库, generated at run time from
the national lists, like the catalogues; docs/smart-audit.md) and the region's rule library (规则库,
services/regions/audit_rules/<region>.toml). Both are loaded once at start; their versions (SHA-256 of the text)
are recorded with every settlement they audit."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from collections.abc import Sequence
from pathlib import Path

from clearinghouse.v1 import types_pb2
from google.rpc import status_pb2

from clearing.errors import InvalidField, PreconditionFailed
from clearing.smart_audit.knowledge import KnowledgeBase, parse_knowledge_base
from clearing.smart_audit.library import Action, Result, RuleLibrary, parse_rule_library
from clearing.smart_audit.model import AuditResult, Finding
from services.common.errors import StoredRefusal, packed, status_for
from services.common.regions import REGIONS_DIR

KNOWLEDGE_SEED = 2026  # the demo's seed (services/stack/config.py DEFAULT_SEED); one national file for all regions


@dataclass(frozen=True, slots=True)
class AuditLibraries:
    knowledge: KnowledgeBase
    rules: RuleLibrary


@functools.cache
def generated_knowledge(seed: int = KNOWLEDGE_SEED) -> KnowledgeBase:
    from services.datagen.knowledge import knowledge_csv_text  # the generator reads the reference lists once

    return parse_knowledge_base(knowledge_csv_text(seed))


DEFAULT_LIBRARY = "default.toml"  # the rule library of a region without its own file
SHIPPED_LIBRARIES = REGIONS_DIR / "audit_rules"


def write_warning_libraries(directory: Path) -> Path:
    """The shipped rule libraries with every `block` turned into `warn` (AUD-OVERLAP too, whose default is block),
    written into `directory`, plus a `default.toml` alike for regions without a file: every rule still runs and its
    findings are recorded, none refuses. For traffic whose members' stays overlap by construction — the load harness
    replays ready-made discharges, and tests settle one member's stays on the same dates — never for production."""
    directory.mkdir(parents=True, exist_ok=True)
    overlap_warns = '\n[AUD-OVERLAP]\naction = "warn"  # warnings only: services/common/smart_audit.py\n'
    for path in sorted(SHIPPED_LIBRARIES.glob("*.toml")):
        text = re.sub(r"^\[AUD-OVERLAP\][^\[]*", "", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
        text = re.sub(r'^action = "block"', 'action = "warn"', text, flags=re.MULTILINE)
        (directory / path.name).write_text(text + overlap_warns, encoding="utf-8")
    (directory / DEFAULT_LIBRARY).write_text(overlap_warns, encoding="utf-8")
    return directory


def load_audit_libraries(region: str, directory: Path | None = None) -> AuditLibraries:
    """The knowledge base and `region`'s rule library `<region>.toml` in `directory` (default
    services/regions/audit_rules/). A region without a file of its own takes the directory's `default.toml`, or,
    without one, every rule enabled with its defaults (SPEC §12.6: a missing table is that rule with its defaults);
    a broken file is an error naming it."""
    folder = directory or SHIPPED_LIBRARIES
    path = folder / f"{region}.toml"
    if not path.exists():
        path = folder / DEFAULT_LIBRARY
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    except OSError as error:
        raise InvalidField("region", f"rule library {path.name} of region {region} cannot be read: "
                                     f"{error.strerror}") from None
    try:
        rules = parse_rule_library(text)
    except InvalidField as error:
        raise InvalidField(f"{path.name}: {error.field}", error.reason) from None
    return AuditLibraries(generated_knowledge(), rules)


def finding_to_proto(item: Finding) -> types_pb2.SmartAuditFinding:
    return types_pb2.SmartAuditFinding(
        rule_id=item.rule_id.value, rule_name=item.rule_name, result=item.result.value, action=item.action.value,
        amount_fen=item.amount_fen, violating_line_ids=list(item.violating_line_ids),
        involved_line_ids=list(item.involved_line_ids), evidence=item.evidence)


def audit_to_proto(result: AuditResult, findings: Sequence[Finding] | None = None) -> types_pb2.SmartAudit:
    """The audit as a message: all its findings, or the ones given (e.g. only the `warn` ones)."""
    chosen = result.findings if findings is None else tuple(findings)
    return types_pb2.SmartAudit(
        findings=[finding_to_proto(item) for item in chosen], knowledge_version=result.knowledge_version,
        rules_version=result.rules_version,
        definite_amount_fen=sum(item.amount_fen for item in chosen if item.result is Result.DEFINITE))


def with_action(result: AuditResult, action: Action) -> tuple[Finding, ...]:
    return tuple(item for item in result.findings if item.action is action)


def not_blocking(result: AuditResult) -> tuple[Finding, ...]:
    """What a settlement is recorded with: the `warn` findings, and the `dispute` ones (事中 they change nothing;
    事后 turns a definite one into a dispute, SPEC §12.3) — every finding but a `block`."""
    return tuple(item for item in result.findings if item.action is not Action.BLOCK)


# A refusal's status travels in gRPC trailers, which clients may refuse beyond 8 KiB (services/common/errors.py):
# the findings in the detail are cut to this many bytes, the blocking ones first, `truncated` set.
DETAIL_BYTES_MAX = 4096


def blocked_refusal(result: AuditResult, subject: str = "encounter_id") -> StoredRefusal:
    """FAILED_PRECONDITION for a stay with `block` findings (事中), the findings as a SmartAudit detail next to the
    usual PreconditionFailure: the blocking ones first, then the rest, as many as fit."""
    blocking = with_action(result, Action.BLOCK)
    rules = sorted({item.rule_id.value for item in blocking})
    error = PreconditionFailed(subject, f"smart audit (智能审核) blocks the settlement: {', '.join(rules)}; void the "
                                        "violating lines (退费) or correct the stay, then settle again")
    status = status_for(error)
    ordered = list(blocking) + [item for item in result.findings if item.action is not Action.BLOCK]
    detail = audit_to_proto(result, [])
    for item in ordered:
        detail.findings.append(finding_to_proto(item))
        if detail.ByteSize() > DETAIL_BYTES_MAX:
            del detail.findings[-1]
            detail.truncated = True
            break
    detail.definite_amount_fen = sum(item.amount_fen for item in detail.findings if item.result == Result.DEFINITE.value)
    status.details.append(packed(detail))
    return StoredRefusal(status)


def audit_from_status(status: status_pb2.Status) -> types_pb2.SmartAudit | None:
    """The SmartAudit detail of a refusal, if it carries one (a client's view of a blocked Settle)."""
    for detail in status.details:
        if detail.Is(types_pb2.SmartAudit.DESCRIPTOR):
            audit = types_pb2.SmartAudit()
            detail.Unpack(audit)
            return audit
    return None
