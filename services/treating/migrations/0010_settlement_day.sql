-- Reconciliation (3201/3202) is by settlement day: the day (Asia/Shanghai, by this agency's clock) on which the
-- agency made the settlement id and recorded the settlement pending. It travels downstream in the claim
-- (Claim.settlement_day), so every party puts a settlement on the same day (docs/settlement-protocol.md).
-- Rows of before: the day their pending row was created, the moment the day now names.
ALTER TABLE settlements ADD COLUMN settlement_day date;
UPDATE settlements SET settlement_day = (created_at AT TIME ZONE 'Asia/Shanghai')::date;
ALTER TABLE settlements ALTER COLUMN settlement_day SET NOT NULL;
CREATE INDEX settlements_settlement_day ON settlements (settlement_day);

