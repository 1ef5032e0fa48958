-- Reconciliation (3201/3202) is by the day the stay was discharged, known to every party from the claim.
ALTER TABLE settlements ADD COLUMN discharged_on date;
CREATE INDEX settlements_discharged_on ON settlements (discharged_on);

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
