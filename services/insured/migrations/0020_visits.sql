-- Outpatient special-disease visits (门诊慢特病, SPEC §13, med_type 14). A visit is a settlement row like a stay's
-- (admitted_on = discharged_on = the visit day, no diagnoses, so smart audit's cross-stay rules never see it), with
-- its disease and what it moved of that disease's accumulators (special_delta: the accumulators before and after),
-- so a cancel or reversal restores them exactly. `delta` is the inpatient accumulators' move as for a stay: hifp
-- only, when the disease's section shares the inpatient cap.
-- Numbered 0020 to stay clear of the numbers colleagues' branches take meanwhile.
ALTER TABLE settlements
    ADD COLUMN med_type smallint NOT NULL DEFAULT 21 CHECK (med_type IN (14, 21)),
    ADD COLUMN disease text CHECK (disease IN ('hypertension', 'diabetes', 'cancer_therapy', 'dialysis', 'transplant')),
    ADD COLUMN special_delta jsonb,
    ADD CONSTRAINT settlements_visit_disease
        CHECK ((med_type = 14) = (disease IS NOT NULL) AND (disease IS NULL) = (special_delta IS NULL));

-- Per member, policy year and disease: SPEC §13.3 `ytd_special`. Written only under the member's accumulators row
-- lock (the same FOR UPDATE as a stay's), so two visits of one member never both take the same remaining limit.
CREATE TABLE special_accumulators (
    member_id       text NOT NULL REFERENCES members,
    year            integer NOT NULL,
    disease         text NOT NULL CHECK (disease IN ('hypertension', 'diabetes', 'cancer_therapy', 'dialysis',
                                                     'transplant')),
    deductible_fen  bigint NOT NULL DEFAULT 0 CHECK (deductible_fen >= 0),
    paid_fen        bigint NOT NULL DEFAULT 0 CHECK (paid_fen >= 0),
    month           text CHECK (month ~ '^[0-9]{4}-[0-9]{2}$'),
    month_paid_fen  bigint NOT NULL DEFAULT 0 CHECK (month_paid_fen >= 0),
    PRIMARY KEY (member_id, year, disease),
    CHECK (month IS NOT NULL OR month_paid_fen = 0)
);
