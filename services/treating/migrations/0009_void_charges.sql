-- 退费 (issue 9 item 5): a charge line uploaded by mistake is voided, not deleted: it stays on record with the
-- request that voided it and why, and is no longer part of the bill. Its line id is never used again.
ALTER TABLE charge_lines ADD COLUMN voided_at timestamptz, ADD COLUMN void_request_id uuid, ADD COLUMN void_reason text;
ALTER TABLE charge_lines ADD CONSTRAINT charge_lines_voided_by_a_request
    CHECK ((voided_at IS NULL) = (void_request_id IS NULL) AND (voided_at IS NULL) = (void_reason IS NULL));
