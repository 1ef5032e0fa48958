-- Reconciliation (3201/3202) is by the day the stay was discharged, known to every party from the claim.
-- (claims.discharged_on exists; it is now also written when the claim is recorded pending.)

-- Every difference reconciliation found with a neighbour, and what it did (an audit trail).
CREATE TABLE repairs (
    repair_id          bigserial PRIMARY KEY,
    day                date NOT NULL,
    pair               text NOT NULL,
    key                text NOT NULL,
    upstream_status    text NOT NULL,
    downstream_status  text NOT NULL,
    action             text NOT NULL,
    note               text NOT NULL,
    repaired           boolean NOT NULL,
    error              text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX claims_discharged_on ON claims (discharged_on);
