-- Reconciliation with the treating agencies (3202) is by settlement day: the day the answer named
-- (Claim.settlement_day), or, for a Settle that got no answer, the day the HIS sent it — on or before the day
-- the agency recorded it, and a Settle without an answer is reversed by its request id, whatever day the
-- agency has it on. Rows of before: the day they were recorded.
ALTER TABLE discharges ADD COLUMN settlement_day date;
UPDATE discharges SET settlement_day = (created_at AT TIME ZONE 'Asia/Shanghai')::date;
ALTER TABLE discharges ALTER COLUMN settlement_day SET NOT NULL;
CREATE INDEX discharges_settlement_day ON discharges (settlement_day, treating_region);
