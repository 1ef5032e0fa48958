-- Clearing house: published catalogues, routed claims and the double-entry ledger (SPEC §6).
CREATE TABLE catalogue_versions (
    region       text NOT NULL,
    version      integer NOT NULL CHECK (version > 0),
    sha256       text NOT NULL,
    csv_text     text NOT NULL,
    row_count    integer NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (region, version)
);

-- One routed cross-region claim. `pending` is recorded and committed before the insured agency
-- is called; reconciliation resolves a leftover pending claim by asking, never by guessing.
CREATE TABLE claims (
    settlement_id     uuid PRIMARY KEY,
    treating_region   text NOT NULL,
    insured_region    text NOT NULL,
    member_id         text NOT NULL,
    hospital_code     text NOT NULL,
    status            text NOT NULL CHECK (status IN ('pending', 'settled', 'failed', 'cancelled')),
    catalogue_rule    text NOT NULL,
    request           bytea NOT NULL,
    response          bytea,
    error             bytea,
    total_fen         bigint,
    fund_pay_fen      bigint,
    psn_pay_fen       bigint,
    settled_at        timestamptz,
    clearing_month    text,
    cancel_request_id uuid UNIQUE,
    cancel_response   bytea,
    cancelled_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (status <> 'settled' OR (response IS NOT NULL AND fund_pay_fen + psn_pay_fen = total_fen))
);
CREATE INDEX claims_month ON claims (clearing_month, insured_region, treating_region);

CREATE TABLE ledger_transactions (
    tx_id          bigserial PRIMARY KEY,
    settlement_id  uuid NOT NULL REFERENCES claims,
    kind           text NOT NULL CHECK (kind IN ('settlement', 'cancel')),
    clearing_month text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (settlement_id, kind)
);

CREATE TABLE ledger_postings (
    tx_id      bigint NOT NULL REFERENCES ledger_transactions,
    account    text NOT NULL,
    amount_fen bigint NOT NULL,
    PRIMARY KEY (tx_id, account)
);

-- Σ debits = Σ credits per transaction, checked by the database at commit.
CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
BEGIN
    SELECT coalesce(sum(amount_fen), 0) INTO total FROM ledger_postings WHERE tx_id = NEW.tx_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced by % fen', NEW.tx_id, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER ledger_postings_balanced
    AFTER INSERT ON ledger_postings DEFERRABLE INITIALLY DEFERRED
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

CREATE TABLE requests (
    request_id  uuid PRIMARY KEY,
    rpc         text NOT NULL,
    request     bytea NOT NULL,
    response    bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
