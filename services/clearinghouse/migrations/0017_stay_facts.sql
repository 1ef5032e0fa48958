-- The stay's principal diagnosis and procedures on the claim and on its statement lines (docs/stay-facts.md), so a
-- region's statement shows what each stay was treated for. Set with the fund split when the claim settles (the
-- claim's request holds every fact; these two are copied out for the statement). Claims of before: NULL. No money
-- depends on them, so the guard of 0008 does not fix them; the statement lines are insert-only anyway.
ALTER TABLE claims ADD COLUMN principal_diagnosis text, ADD COLUMN procedures text[];
ALTER TABLE statement_lines ADD COLUMN principal_diagnosis text, ADD COLUMN procedures text[];

CREATE OR REPLACE FUNCTION claims_write_statement_lines() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_settled boolean := TG_OP = 'UPDATE' AND OLD.clearing_month IS NOT NULL
                           AND OLD.status IN ('settled', 'cancelled', 'reversed');
    new_settled boolean := NEW.clearing_month IS NOT NULL AND NEW.status IN ('settled', 'cancelled', 'reversed');
    old_undone  boolean := old_settled AND OLD.status IN ('cancelled', 'reversed');
    new_undone  boolean := new_settled AND NEW.status IN ('cancelled', 'reversed');
BEGIN
    IF new_settled AND NOT old_settled THEN
        INSERT INTO statement_lines VALUES (NEW.clearing_month, NEW.insured_region, NEW.settlement_id, 'settlement',
            NEW.settled_at, NEW.treating_region, NEW.hospital_code, NEW.admitted_on, NEW.discharged_on, NEW.total_fen,
            NEW.hifp_fen, NEW.hifmi_fen, NEW.maf_fen, NEW.fund_pay_fen, NEW.psn_pay_fen, NEW.principal_diagnosis,
            NEW.procedures);
    END IF;
    IF new_undone AND NOT old_undone THEN
        INSERT INTO statement_lines VALUES (NEW.undo_month, NEW.insured_region, NEW.settlement_id,
            CASE NEW.status WHEN 'cancelled' THEN 'cancel' ELSE 'reversal' END,
            coalesce(NEW.cancelled_at, NEW.reversed_at), NEW.treating_region, NEW.hospital_code, NEW.admitted_on,
            NEW.discharged_on, NEW.total_fen, NEW.hifp_fen, NEW.hifmi_fen, NEW.maf_fen, NEW.fund_pay_fen,
            NEW.psn_pay_fen, NEW.principal_diagnosis, NEW.procedures);
    END IF;
    RETURN NULL;
END;
$$;
