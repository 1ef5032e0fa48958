-- Treating agency: its own double-entry ledger (SPEC §6 "the hospital's receivable at its treating
-- agency"), with the clearing house ledger's guarantees: balanced at commit, append-only, running
-- balances kept by the database. Accounts and signs: clearing/ledger.py (payout_postings).

-- One transaction per settlement that the funds pay something for (fund_pay > 0), and one per cancel
-- of such a settlement. `payout_month` is the Asia/Shanghai month of its commit time: the month of the
-- payout list (ListPayouts) it belongs to.
CREATE TABLE ledger_transactions (
    tx_id         bigserial PRIMARY KEY,
    settlement_id uuid NOT NULL REFERENCES settlements,
    kind          text NOT NULL CHECK (kind IN ('settlement', 'cancel')),
    payout_month  text NOT NULL CHECK (payout_month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (settlement_id, kind)
);
CREATE INDEX ledger_transactions_month ON ledger_transactions (payout_month);

-- A zero amount is never posted (a settlement the funds pay nothing for has no transaction).
CREATE TABLE ledger_postings (
    tx_id      bigint NOT NULL REFERENCES ledger_transactions,
    account    text NOT NULL,
    amount_fen bigint NOT NULL CHECK (amount_fen <> 0),
    PRIMARY KEY (tx_id, account)
);

-- Σ debits = Σ credits per transaction, and at least two legs, checked by the database at commit.
CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
    legs  integer;
BEGIN
    SELECT coalesce(sum(amount_fen), 0), count(*) INTO total, legs FROM ledger_postings WHERE tx_id = NEW.tx_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced by % fen', NEW.tx_id, total
            USING ERRCODE = 'check_violation';
    END IF;
    IF legs < 2 THEN
        RAISE EXCEPTION 'ledger transaction % has % postings: at least two are needed', NEW.tx_id, legs
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER ledger_postings_balanced
    AFTER INSERT ON ledger_postings DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();
-- Fired per transaction row too, so a transaction committed without any posting is refused as well.
CREATE CONSTRAINT TRIGGER ledger_transactions_have_postings
    AFTER INSERT ON ledger_transactions DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();

-- The ledger is append-only: nothing is ever updated or deleted.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
-- TRUNCATE fires no row trigger; refuse it per statement.
CREATE TRIGGER ledger_postings_no_truncate BEFORE TRUNCATE ON ledger_postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transactions_no_truncate BEFORE TRUNCATE ON ledger_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Running balance per account, maintained by the database on every posting, so it always equals the
-- sum of the account's postings.
CREATE TABLE ledger_balances (
    account     text PRIMARY KEY,
    balance_fen bigint NOT NULL
);

CREATE FUNCTION ledger_apply_posting() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_balances (account, balance_fen) VALUES (NEW.account, NEW.amount_fen)
    ON CONFLICT (account) DO UPDATE SET balance_fen = ledger_balances.balance_fen + EXCLUDED.balance_fen;
    RETURN NULL;
END;
$$;
CREATE TRIGGER ledger_postings_balance AFTER INSERT ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_apply_posting();

-- Only that trigger writes a balance: a direct INSERT, UPDATE or DELETE (trigger depth 0) is refused.
CREATE TRIGGER ledger_balances_by_postings_only BEFORE INSERT OR UPDATE OR DELETE ON ledger_balances
    FOR EACH ROW WHEN (pg_trigger_depth() = 0) EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_balances_no_truncate BEFORE TRUNCATE ON ledger_balances
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Backfill the settlements recorded before this migration, as the posting path would have posted them:
-- the hospital's receivable against the insured region's payable (cross-region; the treating region is
-- digits 2–7 of the hospital code) or the region's own fund (local).
CREATE TEMPORARY TABLE backfill ON COMMIT DROP AS
    SELECT s.settlement_id, m.kind, m.committed_at, to_char(m.committed_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS payout_month,
           m.sign * s.fund_pay_fen AS amount_fen, s.hospital_code,
           CASE WHEN s.local THEN 'fund/' || s.insured_region || '/payable'
                ELSE 'insured/' || s.insured_region || '/payable/' || substr(s.hospital_code, 2, 6) END AS counter
    FROM settlements s,
    LATERAL (VALUES ('settlement', s.settled_at, 1), ('cancel', s.cancelled_at, -1)) AS m(kind, committed_at, sign)
    WHERE s.status IN ('settled', 'cancelled') AND s.fund_pay_fen > 0 AND (m.kind = 'settlement' OR s.status = 'cancelled');
INSERT INTO ledger_transactions (settlement_id, kind, payout_month, created_at)
    SELECT settlement_id, kind, payout_month, committed_at FROM backfill ORDER BY committed_at, settlement_id, kind DESC;
INSERT INTO ledger_postings (tx_id, account, amount_fen)
    SELECT t.tx_id, leg.account, leg.amount_fen
    FROM backfill b JOIN ledger_transactions t USING (settlement_id, kind),
    LATERAL (VALUES ('hospital/' || b.hospital_code || '/receivable', b.amount_fen), (b.counter, -b.amount_fen))
        AS leg(account, amount_fen);
