-- Outpatient special-disease visits (门诊慢特病, SPEC §13, med_type 14): an encounter is a stay (21, every encounter
-- before visits) or a visit of one disease on one day (admitted_on is the visit day). The settlement keeps its
-- encounter's clearing type, for the 3201/3202 totals and detail by clearing type and the payout list.
-- Numbered 0020 to stay clear of the numbers colleagues' branches take meanwhile (0014, 0015, …).
ALTER TABLE encounters
    ADD COLUMN med_type smallint NOT NULL DEFAULT 21 CHECK (med_type IN (14, 21)),
    ADD COLUMN disease  text CHECK (disease IN ('hypertension', 'diabetes', 'cancer_therapy', 'dialysis', 'transplant')),
    ADD CONSTRAINT encounters_visit_disease CHECK ((med_type = 14) = (disease IS NOT NULL));
ALTER TABLE settlements
    ADD COLUMN med_type smallint NOT NULL DEFAULT 21 CHECK (med_type IN (14, 21));
