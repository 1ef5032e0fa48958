-- Paying the hospitals (医保支付, issue 13 items 3 and 5): the monthly payment (月度预拨) and the year-end clearing
-- (年终清算) as ledger transfers of this agency, and the closings that freeze them. docs/hospital-payment.md.
--
--   drg_weight_tables   the DRG weight table a payment year is paid with, stored by its first posted month and
--                       read back by every later month and the year end (never recomputed)
--   payment_closings    one row per posted period, 'YYYY-MM' (a month) or 'YYYY' (the year end): the request and
--                       the answer (a serialized CloseHospitalPayment{Month,Year}Response)
--   ledger_transactions kind 'payment': one per hospital and period, no settlement, payment_period and
--                       hospital_code set instead of a payout month
--
-- The accounts of a payment transfer (zero legs omitted; no transaction when every leg is zero):
--   month M:  hospital/H/receivable  −R    R = the net of every posting to it in payout month M (settlements,
--                                          cancels, reversals, dispute deductions): the month's claim is settled
--             hospital/H/held_back   +hold-back   调剂金 owed to H until the year end
--             hospital/H/paid        +paid        what the agency paid H
--             drg/<region>/budget    −(paid + hold-back − R)   the DRG budget's spending beyond the item claim
--   year Y:   hospital/H/held_back   −(the year's hold-backs)
--             hospital/H/paid        +settlement  (negative: a clawback, 追回)
--             drg/<region>/budget    −(settlement − hold-backs)
--
-- The database keeps a posted period posted: a 'payment' transaction is refused unless its period's closing row
-- was inserted by the same transaction, so once a period's closing commits no later transaction can add to it;
-- the closings and weight tables are append-only.

-- Migrations run in one transaction: earlier deferred ledger checks first (a table with pending trigger events
-- cannot be altered).
SET CONSTRAINTS ALL IMMEDIATE;

CREATE TABLE drg_weight_tables (
    payment_year text PRIMARY KEY CHECK (payment_year ~ '^[0-9]{4}$'),
    weights_year text NOT NULL CHECK (weights_year ~ '^[0-9]{4}$'),
    weight_table text NOT NULL,  -- JSON: services/common/hospital_payment.py weight_table_json
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payment_closings (
    period     text PRIMARY KEY CHECK (period ~ '^[0-9]{4}(-(0[1-9]|1[0-2]))?$'),
    request    bytea NOT NULL,
    response   bytea NOT NULL,
    closed_at  timestamptz NOT NULL
);

CREATE FUNCTION payment_closings_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a posted payment period and its weight table never change: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER payment_closings_append_only BEFORE UPDATE OR DELETE ON payment_closings
    FOR EACH ROW EXECUTE FUNCTION payment_closings_refuse_change();
CREATE TRIGGER payment_closings_no_truncate BEFORE TRUNCATE ON payment_closings
    FOR EACH STATEMENT EXECUTE FUNCTION payment_closings_refuse_change();
CREATE TRIGGER drg_weight_tables_append_only BEFORE UPDATE OR DELETE ON drg_weight_tables
    FOR EACH ROW EXECUTE FUNCTION payment_closings_refuse_change();
CREATE TRIGGER drg_weight_tables_no_truncate BEFORE TRUNCATE ON drg_weight_tables
    FOR EACH STATEMENT EXECUTE FUNCTION payment_closings_refuse_change();

ALTER TABLE ledger_transactions
    ALTER COLUMN settlement_id DROP NOT NULL,
    ALTER COLUMN payout_month DROP NOT NULL,
    ADD COLUMN payment_period text CHECK (payment_period ~ '^[0-9]{4}(-(0[1-9]|1[0-2]))?$'),
    ADD COLUMN hospital_code text,
    DROP CONSTRAINT ledger_transactions_kind_check,
    ADD CONSTRAINT ledger_transactions_kind_check
        CHECK (kind IN ('settlement', 'cancel', 'reversal', 'dispute', 'payment')),
    -- a payment has no settlement and no payout month (it settles a closed one), every other kind both
    ADD CONSTRAINT ledger_transactions_payment_shape CHECK (
        CASE WHEN kind = 'payment'
             THEN settlement_id IS NULL AND payout_month IS NULL AND payment_period IS NOT NULL
                  AND hospital_code IS NOT NULL
             ELSE settlement_id IS NOT NULL AND payout_month IS NOT NULL AND payment_period IS NULL
                  AND hospital_code IS NULL END);
CREATE UNIQUE INDEX ledger_transactions_payment_once ON ledger_transactions (payment_period, hospital_code)
    WHERE kind = 'payment';

CREATE FUNCTION ledger_payment_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM payment_closings c
                   WHERE c.period = NEW.payment_period AND c.xmin = pg_current_xact_id()::xid) THEN
        RAISE EXCEPTION 'payment period % is posted only together with its closing, in one transaction',
            NEW.payment_period USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER ledger_transactions_payment_guard BEFORE INSERT ON ledger_transactions
    FOR EACH ROW WHEN (NEW.kind = 'payment') EXECUTE FUNCTION ledger_payment_guard();
