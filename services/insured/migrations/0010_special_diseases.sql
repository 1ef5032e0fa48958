-- Recognitions (认定备案, national 2503/2504/5301) of members' outpatient chronic and special diseases (门诊慢特病,
-- SPEC §13). Never deleted: a cancellation (2504) is recorded on the row, so what stood on any past day is known.
CREATE TABLE special_disease_recognitions (
    recognition_id  bigserial PRIMARY KEY,
    member_id       text NOT NULL REFERENCES members,
    disease         text NOT NULL CHECK (disease IN ('hypertension', 'diabetes', 'cancer_therapy', 'dialysis',
                                                     'transplant')),
    valid_from      date NOT NULL,
    valid_to        date,
    diagnosis       text NOT NULL,
    certified_by    text,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    cancelled_at    timestamptz,
    cancel_reason   text,
    CHECK (valid_to IS NULL OR valid_to >= valid_from),
    CHECK ((cancelled_at IS NULL) = (cancel_reason IS NULL))
);
CREATE INDEX special_disease_recognitions_member ON special_disease_recognitions (member_id, disease);
