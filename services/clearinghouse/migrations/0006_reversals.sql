-- 冲正 (2601): a reversed claim, and the reversal record of every settlement id ever reversed — also of
-- ids the clearing house never saw, so a late SettleClaim with one is refused (docs/settlement-protocol.md).
ALTER TABLE claims DROP CONSTRAINT claims_status_check,
    ADD CONSTRAINT claims_status_check CHECK (status IN ('pending', 'settled', 'failed', 'cancelled', 'reversed')),
    ADD COLUMN reversed_at timestamptz;

-- Migrations run in one transaction: check the ledger postings an earlier migration wrote (deferred
-- balance trigger) now, since a table with pending trigger events cannot be altered.
SET CONSTRAINTS ALL IMMEDIATE;
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check,
    ADD CONSTRAINT ledger_transactions_kind_check CHECK (kind IN ('settlement', 'cancel', 'reversal', 'topup'));

CREATE TABLE reversals (
    settlement_id  uuid PRIMARY KEY,
    request_id     uuid NOT NULL,
    -- reversing: recorded, the insured agency not yet confirmed; done: `outcome` and `response` are final.
    status         text NOT NULL CHECK (status IN ('reversing', 'done')),
    outcome        text CHECK (outcome IN ('reversed', 'nothing_recorded', 'already_undone')),
    response       bytea,
    created_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz,
    CHECK ((status = 'done') = (outcome IS NOT NULL AND response IS NOT NULL))
);
