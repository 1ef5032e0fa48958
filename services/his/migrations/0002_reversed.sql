-- A Settle whose outcome the hospital never learnt (timeouts on every retry) is reversed (冲正 2601):
-- `reversed` once the agency confirmed it, `unknown` if even the reversal got no answer (reconciliation
-- with the treating agency resolves it).
ALTER TABLE discharges DROP CONSTRAINT discharges_status_check,
    ADD CONSTRAINT discharges_status_check CHECK (status IN ('settled', 'failed', 'reversed', 'unknown'));
