-- Smart audit (智能审核) as the HIS saw it, per Settle row: the rule ids of the `warn` findings the settlement was
-- recorded with, and of the `block` findings that refused a first Settle before the HIS voided the violating
-- lines (退费) and settled again. Rows of before: empty. And the stay's admission day: a later run keeps its
-- members' stays clear of the stays settled before (a member is in one hospital at a time; AUD-OVERLAP).
ALTER TABLE discharges ADD COLUMN audit_warned text[] NOT NULL DEFAULT '{}';
ALTER TABLE discharges ADD COLUMN audit_blocked text[] NOT NULL DEFAULT '{}';
ALTER TABLE discharges ADD COLUMN admitted_on date;
