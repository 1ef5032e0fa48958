-- Reconciliation with the treating agencies (3202) is by the day the stay was discharged.
ALTER TABLE discharges ADD COLUMN discharged_on date;
CREATE INDEX discharges_day ON discharges (discharged_on, treating_region);
