-- Reconciliation (3201/3202) is by settlement day: the day the treating agency made the settlement, carried in
-- the claim (Claim.settlement_day) and stored as sent, so a claim recorded here after midnight is still on
-- the treating agency's day (docs/settlement-protocol.md). Claims of before: the day they were recorded here
-- (the treating agency's day unless the claim crossed midnight on its way; such a pair is reported by
-- reconciliation, never repaired by a guess: an orphan is reversed only if its upstream has no record of it).
-- An updated row meets every CHECK, NOT VALID ones too: claims of before 0009 have no routed claim, so that one
-- is set aside while they get their day, and put back as it was (enforced for new claims, not for those).
ALTER TABLE claims ADD COLUMN settlement_day date;
ALTER TABLE claims DROP CONSTRAINT claims_routed_recorded;
UPDATE claims SET settlement_day = (created_at AT TIME ZONE 'Asia/Shanghai')::date;
ALTER TABLE claims ADD CONSTRAINT claims_routed_recorded CHECK (routed IS NOT NULL) NOT VALID;
ALTER TABLE claims ALTER COLUMN settlement_day SET NOT NULL;
CREATE INDEX claims_settlement_day ON claims (settlement_day);

