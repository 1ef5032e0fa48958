-- The stay's 病案首页 facts for DRG grouping (docs/stay-facts.md); no money depends on them. At admission: the
-- patient's sex and age (years; days under one year), read from the ID number, and a newborn's birth weight as
-- sent. At discharge, with the settlement: the procedures (ICD-9-CM3 医保版, main first) and the discharge status
-- (离院方式); the claim the settlement stores carries them too. Rows of before: NULL (not known).
ALTER TABLE encounters
    ADD COLUMN sex            text CHECK (sex IN ('M', 'F')),
    ADD COLUMN age_years      integer CHECK (age_years BETWEEN 0 AND 150),
    ADD COLUMN age_days       integer CHECK (age_days IS NULL OR (age_days BETWEEN 0 AND 365 AND age_years = 0)),
    ADD COLUMN birth_weight_g integer CHECK (birth_weight_g IS NULL OR (birth_weight_g BETWEEN 1 AND 9999 AND age_years = 0));
ALTER TABLE settlements
    ADD COLUMN procedures       text[],
    ADD COLUMN discharge_status text CHECK (discharge_status IN ('1', '2', '3', '4', '5', '9'));
