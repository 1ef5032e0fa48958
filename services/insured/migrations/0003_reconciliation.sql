-- Reconciliation (3201/3202) is by the day the stay was discharged, known to every party from the claim.
ALTER TABLE settlements ADD COLUMN discharged_on date;
CREATE INDEX settlements_discharged_on ON settlements (discharged_on);
