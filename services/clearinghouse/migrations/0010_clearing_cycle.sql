-- The monthly clearing cycle (SPEC §7, issue 9 item 2). A closed month awaits payment of its hub transfers;
-- each region's confirmed transfer posts its clearing (清算): the month's payables and receivables are closed
-- and its draws on the prepayment given back, so the prepayment is a revolving buffer, not a running total.

-- Clearing transactions belong to no settlement: they name the month and the region they clear.
SET CONSTRAINTS ALL IMMEDIATE;
ALTER TABLE ledger_transactions ADD COLUMN cleared_month text, ADD COLUMN cleared_region text;
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check,
    ADD CONSTRAINT ledger_transactions_kind_check
        CHECK (kind IN ('settlement', 'cancel', 'reversal', 'topup', 'clearing'));
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_settlement_kind,
    ADD CONSTRAINT ledger_transactions_settlement_kind CHECK ((kind IN ('topup', 'clearing')) = (settlement_id IS NULL)),
    ADD CONSTRAINT ledger_transactions_clearing_names_its_month
        CHECK ((kind = 'clearing') = (cleared_month IS NOT NULL AND cleared_region IS NOT NULL));
CREATE UNIQUE INDEX ledger_transactions_one_clearing ON ledger_transactions (cleared_month, cleared_region)
    WHERE kind = 'clearing';

-- One row per region of a closed month once it is cleared: at the close when its net position is zero, else
-- when its hub transfer is confirmed. Insert-only: a confirmation is never edited or withdrawn.
CREATE TABLE month_clearings (
    month          text NOT NULL REFERENCES month_closings,
    region         text NOT NULL,
    net_fen        bigint NOT NULL,
    tx_id          bigint REFERENCES ledger_transactions,
    request_id     uuid,
    reference      text NOT NULL DEFAULT '',
    cleared_at     timestamptz NOT NULL,
    PRIMARY KEY (month, region),
    CHECK ((net_fen = 0) = (request_id IS NULL))
);
CREATE FUNCTION month_clearings_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'month clearings are insert-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER month_clearings_insert_only BEFORE UPDATE OR DELETE ON month_clearings
    FOR EACH ROW EXECUTE FUNCTION month_clearings_refuse_change();
CREATE TRIGGER month_clearings_no_truncate BEFORE TRUNCATE ON month_clearings
    FOR EACH STATEMENT EXECUTE FUNCTION month_clearings_refuse_change();

-- Prepayment terms per region: months of outflow it holds (SPEC §7 default 2); the threshold exists already.
ALTER TABLE prepayments ADD COLUMN months integer NOT NULL DEFAULT 2 CHECK (months BETWEEN 1 AND 12);
