-- Smart audit (智能审核) at settlement (事中, SPEC §12.2): which versions of the knowledge base and the rule library
-- audited a settlement, and the findings it was recorded with (a serialized clearinghouse.v1.SmartAudit: the
-- `warn` findings; a `block` finding refuses the settlement and nothing is recorded). Written once, with the
-- pending row, and never changed: a retried Settle re-drives the same audit. Rows of before: not audited (NULL).
ALTER TABLE settlements ADD COLUMN knowledge_version text;
ALTER TABLE settlements ADD COLUMN rules_version text;
ALTER TABLE settlements ADD COLUMN smart_audit bytea;
