-- Outpatient special-disease visits (门诊慢特病, med_type 14) beside the stays (21, every row before): the HIS's
-- 3201 totals and 3202 lines keep the two apart as the treating agency's do.
ALTER TABLE discharges ADD COLUMN med_type smallint NOT NULL DEFAULT 21 CHECK (med_type IN (14, 21));
-- A visit's disease, and whether the disease's limit was used up after it (the demo's "limits met").
ALTER TABLE discharges ADD COLUMN disease text, ADD COLUMN limit_met boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT discharges_visit_disease CHECK ((med_type = 14) = (disease IS NOT NULL));
