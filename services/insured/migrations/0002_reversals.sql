-- 冲正 (2601): a reversed stay keeps its row (status 'reversed', accumulators restored by its delta), and
-- every reversed settlement id has a reversal record — also ids never adjudicated here, so a late
-- Adjudicate with one is refused (docs/settlement-protocol.md).
ALTER TABLE settlements DROP CONSTRAINT settlements_status_check,
    ADD CONSTRAINT settlements_status_check CHECK (status IN ('settled', 'cancelled', 'reversed')),
    ADD COLUMN reversed_at timestamptz;

CREATE TABLE reversals (
    settlement_id  uuid PRIMARY KEY,
    request_id     uuid NOT NULL,
    outcome        text NOT NULL CHECK (outcome IN ('reversed', 'nothing_recorded', 'already_undone')),
    response       bytea NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
