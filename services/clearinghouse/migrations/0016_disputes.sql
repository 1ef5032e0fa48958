-- Disputes between regions (拒付 / 申诉, SPEC §12.3; clearing/disputes.py holds the state machine).
--
-- `disputes` keeps each dispute with every step (who, when, the clearing month); the service moves it under a
-- transaction-scoped advisory lock on its id. `dispute_adjustments` is the adjustment an accepted, lapsed or
-- upheld dispute posts: one row per dispute (the primary key is what makes it exactly once), in the month its
-- ledger transaction (kind 'dispute': the mirror of a settlement's legs for the disputed amount) is booked in,
-- and its trigger moves that month's (insured, treating) cell of clearing_aggregates by −amount, so the
-- adjustment enters the month's gross matrix, netting and net positions. The settlement's claim row is never
-- touched: the patient's share (psn_pay) and the claim's own fund split stay as settled.

CREATE TABLE disputes (
    insured_region   text NOT NULL,
    dispute_id       uuid NOT NULL,
    settlement_id    uuid NOT NULL,
    treating_region  text NOT NULL,
    hospital_code    text NOT NULL,
    settlement_month text NOT NULL,
    fund_pay_fen     bigint NOT NULL,
    amount_fen       bigint NOT NULL CHECK (amount_fen > 0 AND amount_fen <= fund_pay_fen),
    rule_id          text NOT NULL,
    reason           text NOT NULL,
    state            text NOT NULL CHECK (state IN ('raised', 'accepted', 'appealed', 'upheld', 'rejected', 'lapsed')),
    raised_by        text NOT NULL,
    raised_at        timestamptz NOT NULL,
    raised_month     text NOT NULL,
    answered_by      text,
    answered_at      timestamptz,
    answered_month   text,
    appeal_text      text NOT NULL DEFAULT '',
    decided_by       text,
    decided_at       timestamptz,
    decided_month    text,
    lapsed_month     text,
    adjusted_month   text,
    raised_order     bigserial,
    PRIMARY KEY (insured_region, dispute_id),
    CHECK (insured_region <> treating_region)
);
CREATE INDEX disputes_settlement ON disputes (settlement_id);
CREATE INDEX disputes_treating ON disputes (treating_region);

-- A cell's adjustments are counted apart from its settlements and cancels (a month with only adjustments has
-- obligations all the same).
ALTER TABLE clearing_aggregates ADD COLUMN adjustments integer NOT NULL DEFAULT 0;

CREATE TABLE dispute_adjustments (
    insured_region  text NOT NULL,
    dispute_id      uuid NOT NULL,
    settlement_id   uuid NOT NULL,
    treating_region text NOT NULL,
    hospital_code   text NOT NULL,
    month           text NOT NULL,
    amount_fen      bigint NOT NULL CHECK (amount_fen > 0),
    tx_id           bigint NOT NULL,
    posted_at       timestamptz NOT NULL,
    PRIMARY KEY (insured_region, dispute_id)
);

ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check,
    ADD CONSTRAINT ledger_transactions_kind_check
        CHECK (kind IN ('settlement', 'cancel', 'reversal', 'topup', 'clearing', 'dispute'));
-- A settlement has one settlement, cancel or reversal journal per month, but may have several disputes.
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_settlement_id_kind_key;
CREATE UNIQUE INDEX ledger_transactions_settlement_id_kind_key
    ON ledger_transactions (insured_region, clearing_month, settlement_id, kind) WHERE kind <> 'dispute';

CREATE FUNCTION dispute_adjustments_move_aggregates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO clearing_aggregates AS a (clearing_month, insured_region, treating_region, settlements, cancels,
                                          fund_pay_fen, adjustments)
    VALUES (NEW.month, NEW.insured_region, NEW.treating_region, 0, 0, -NEW.amount_fen, 1)
    ON CONFLICT (clearing_month, insured_region, treating_region) DO UPDATE
        SET fund_pay_fen = a.fund_pay_fen + EXCLUDED.fund_pay_fen, adjustments = a.adjustments + 1;
    RETURN NULL;
END;
$$;
CREATE TRIGGER dispute_adjustments_move_aggregates AFTER INSERT ON dispute_adjustments
    FOR EACH ROW EXECUTE FUNCTION dispute_adjustments_move_aggregates();
CREATE TRIGGER dispute_adjustments_append_only BEFORE UPDATE OR DELETE ON dispute_adjustments
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER dispute_adjustments_no_truncate BEFORE TRUNCATE ON dispute_adjustments
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
