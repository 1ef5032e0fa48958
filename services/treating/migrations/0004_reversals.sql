-- 冲正 (2601) by the HIS's original Settle request id. The record is committed before anything is asked
-- downstream, so a late or retried Settle with that id is refused from then on
-- (docs/settlement-protocol.md).
ALTER TABLE settlements DROP CONSTRAINT settlements_status_check,
    ADD CONSTRAINT settlements_status_check
        CHECK (status IN ('pending', 'settled', 'failed', 'cancelled', 'reversed')),
    ADD COLUMN reversed_at timestamptz;

-- A reversal of a settled settlement mirrors the hospital's receivable, like a cancel.
-- Migrations run in one transaction: check the ledger postings an earlier migration wrote (deferred
-- balance trigger) now, since a table with pending trigger events cannot be altered.
SET CONSTRAINTS ALL IMMEDIATE;
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check,
    ADD CONSTRAINT ledger_transactions_kind_check CHECK (kind IN ('settlement', 'cancel', 'reversal'));

CREATE TABLE reversals (
    original_request_id  uuid PRIMARY KEY,
    request_id           uuid NOT NULL,
    reason               text NOT NULL,
    -- null when the original request never created a settlement here
    settlement_id        uuid,
    -- reversing: recorded, downstream not yet confirmed; done: `outcome` and `response` are final.
    status               text NOT NULL CHECK (status IN ('reversing', 'done')),
    outcome              text CHECK (outcome IN ('reversed', 'nothing_recorded', 'already_undone')),
    response             bytea,
    created_at           timestamptz NOT NULL DEFAULT now(),
    completed_at         timestamptz,
    CHECK ((status = 'done') = (outcome IS NOT NULL AND response IS NOT NULL))
);
CREATE INDEX reversals_open ON reversals (created_at) WHERE status = 'reversing';
