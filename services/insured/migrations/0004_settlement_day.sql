-- Reconciliation (3201/3202) is by settlement day: the day the treating agency made the settlement, carried in
-- the claim (Claim.settlement_day) and stored as sent (docs/settlement-protocol.md). Stays adjudicated before:
-- the day they were recorded here (see the clearing house's 0011 for a claim that crossed midnight).
ALTER TABLE settlements ADD COLUMN settlement_day date;
UPDATE settlements SET settlement_day = (settled_at AT TIME ZONE 'Asia/Shanghai')::date;
ALTER TABLE settlements ALTER COLUMN settlement_day SET NOT NULL;
CREATE INDEX settlements_settlement_day ON settlements (settlement_day);

