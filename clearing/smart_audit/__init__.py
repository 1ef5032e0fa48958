"""Smart audit (智能审核) — SPEC §12: the knowledge base (知识库), the rule library (规则库) and the nine rules.

Pure: values in, findings out. `knowledge.parse_knowledge_base` and `library.parse_rule_library` read the two
libraries' texts; `rules.audit_stay` runs the enabled rules on one stay; `report.audit_json` is the SPEC §12.4
output. Named `smart_audit` because "audit" already means the operator audit log (services/clearinghouse/audit.py).
"""
