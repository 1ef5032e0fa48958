-- Outpatient special-disease visits (门诊慢特病, SPEC §13) clear as their own clearing type (med_type 14) beside the
-- inpatient stays (21, every claim before). The claim keeps it, and so does each statement line, so a statement,
-- the year summary and the 3201/3202 reconciliation can show visits apart; nothing about a stay changes.
-- The claims trigger (0014, then 0017's stay facts) now names its columns, med_type with them.
-- Numbered 0020 to stay clear of the numbers colleagues' branches take meanwhile (0016, …).
ALTER TABLE claims ADD COLUMN med_type smallint NOT NULL DEFAULT 21 CHECK (med_type IN (14, 21));
ALTER TABLE statement_lines ADD COLUMN med_type smallint NOT NULL DEFAULT 21 CHECK (med_type IN (14, 21));

CREATE OR REPLACE FUNCTION claims_write_statement_lines() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_settled boolean := TG_OP = 'UPDATE' AND OLD.clearing_month IS NOT NULL
                           AND OLD.status IN ('settled', 'cancelled', 'reversed');
    new_settled boolean := NEW.clearing_month IS NOT NULL AND NEW.status IN ('settled', 'cancelled', 'reversed');
    old_undone  boolean := old_settled AND OLD.status IN ('cancelled', 'reversed');
    new_undone  boolean := new_settled AND NEW.status IN ('cancelled', 'reversed');
BEGIN
    IF new_settled AND NOT old_settled THEN
        INSERT INTO statement_lines (month, insured_region, settlement_id, kind, committed_at, treating_region,
                                     hospital_code, admitted_on, discharged_on, total_fen, hifp_fen, hifmi_fen, maf_fen,
                                     fund_pay_fen, psn_pay_fen, principal_diagnosis, procedures, med_type)
        VALUES (NEW.clearing_month, NEW.insured_region, NEW.settlement_id, 'settlement',
            NEW.settled_at, NEW.treating_region, NEW.hospital_code, NEW.admitted_on, NEW.discharged_on, NEW.total_fen,
            NEW.hifp_fen, NEW.hifmi_fen, NEW.maf_fen, NEW.fund_pay_fen, NEW.psn_pay_fen, NEW.principal_diagnosis,
            NEW.procedures, NEW.med_type);
    END IF;
    IF new_undone AND NOT old_undone THEN
        INSERT INTO statement_lines (month, insured_region, settlement_id, kind, committed_at, treating_region,
                                     hospital_code, admitted_on, discharged_on, total_fen, hifp_fen, hifmi_fen, maf_fen,
                                     fund_pay_fen, psn_pay_fen, principal_diagnosis, procedures, med_type)
        VALUES (NEW.undo_month, NEW.insured_region, NEW.settlement_id,
            CASE NEW.status WHEN 'cancelled' THEN 'cancel' ELSE 'reversal' END,
            coalesce(NEW.cancelled_at, NEW.reversed_at), NEW.treating_region, NEW.hospital_code, NEW.admitted_on,
            NEW.discharged_on, NEW.total_fen, NEW.hifp_fen, NEW.hifmi_fen, NEW.maf_fen, NEW.fund_pay_fen,
            NEW.psn_pay_fen, NEW.principal_diagnosis, NEW.procedures, NEW.med_type);
    END IF;
    RETURN NULL;
END;
$$;
