-- Prepayment (预付金) of each insured region (SPEC §7). The available amount is the ledger balance
-- of `insured/{region}/prepayment`; this row holds the sizing and the warning state, and is locked
-- by every draw so draws of one region are counted in order.
CREATE TABLE prepayments (
    insured_region       text PRIMARY KEY,
    required_fen         bigint NOT NULL DEFAULT 0 CHECK (required_fen >= 0),
    threshold_bp         integer NOT NULL DEFAULT 7000 CHECK (threshold_bp BETWEEN 1 AND 10000),
    topup_requested_fen  bigint NOT NULL DEFAULT 0 CHECK (topup_requested_fen >= 0),
    topup_requested_at   timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Top-ups are ledger transactions without a settlement.
ALTER TABLE ledger_transactions ALTER COLUMN settlement_id DROP NOT NULL;
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_kind_check
    CHECK (kind IN ('settlement', 'cancel', 'topup'));
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_settlement_kind
    CHECK ((kind = 'topup') = (settlement_id IS NULL));
