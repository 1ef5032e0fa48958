-- Running balance per account, maintained by the database on every posting, so it always equals
-- the sum of the account's postings (SPEC §6; checked by tests after every scenario).
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

-- Per (month, insured region, treating region) obligations, maintained in the same transaction as
-- the posting, so closing a month reads N² cells instead of every settlement (SPEC §7).
CREATE TABLE clearing_aggregates (
    clearing_month   text NOT NULL,
    insured_region   text NOT NULL,
    treating_region  text NOT NULL,
    settlements      integer NOT NULL DEFAULT 0,
    cancels          integer NOT NULL DEFAULT 0,
    fund_pay_fen     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (clearing_month, insured_region, treating_region)
);

-- Backfill from postings made before this migration.
INSERT INTO ledger_balances (account, balance_fen)
    SELECT account, sum(amount_fen) FROM ledger_postings GROUP BY account;
INSERT INTO clearing_aggregates (clearing_month, insured_region, treating_region, settlements, cancels, fund_pay_fen)
    SELECT t.clearing_month, split_part(p.account, '/', 4), split_part(p.account, '/', 2),
           count(*) FILTER (WHERE t.kind = 'settlement'), count(*) FILTER (WHERE t.kind = 'cancel'), sum(p.amount_fen)
    FROM ledger_postings p JOIN ledger_transactions t USING (tx_id)
    WHERE p.account LIKE 'treating/%/receivable/%'
    GROUP BY 1, 2, 3;
