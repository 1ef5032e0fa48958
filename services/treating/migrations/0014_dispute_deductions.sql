-- Dispute deductions (扣款, SPEC §12.3): an accepted, lapsed or upheld dispute's adjustment, as this treating
-- agency books it against the hospital's payout. The clearing house posts the adjustment first (its
-- dispute_adjustments); this agency learns of it from the clearing house (ListDisputes, before a payout list or
-- a payout close) and books it once — the primary key is the dispute — in the payout month equal to the clearing
-- month the clearing house adjusted in (or the first open one after: never an edit of a closed list), as a ledger
-- transaction of kind 'dispute': hospital/{H}/receivable −amount, insured/{I}/payable/{T} +amount. The settlement
-- row is not touched: its fund split and the patient's share stay as settled.

CREATE TABLE dispute_deductions (
    dispute_id     uuid PRIMARY KEY,
    settlement_id  uuid NOT NULL,
    hospital_code  text NOT NULL,
    insured_region text NOT NULL,
    amount_fen     bigint NOT NULL CHECK (amount_fen > 0),
    cleared_month  text NOT NULL,  -- the clearing month the clearing house posted the adjustment in
    payout_month   text NOT NULL CHECK (payout_month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    tx_id          bigint NOT NULL,
    recorded_at    timestamptz NOT NULL
);
CREATE INDEX dispute_deductions_payout_month ON dispute_deductions (payout_month);

CREATE FUNCTION dispute_deductions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        RAISE EXCEPTION 'dispute deductions are never changed or deleted (% refused)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF payout_month_is_closed(NEW.payout_month) THEN
        RAISE EXCEPTION 'payout month % is closed: a deduction counts in an open month', NEW.payout_month
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER dispute_deductions_guard BEFORE INSERT OR UPDATE OR DELETE ON dispute_deductions
    FOR EACH ROW EXECUTE FUNCTION dispute_deductions_guard();
CREATE TRIGGER dispute_deductions_no_truncate BEFORE TRUNCATE ON dispute_deductions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check,
    ADD CONSTRAINT ledger_transactions_kind_check CHECK (kind IN ('settlement', 'cancel', 'reversal', 'dispute'));
-- A settlement has one settlement, cancel or reversal journal, but may have several disputes.
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_settlement_id_kind_key;
CREATE UNIQUE INDEX ledger_transactions_settlement_id_kind_key ON ledger_transactions (settlement_id, kind)
    WHERE kind <> 'dispute';
