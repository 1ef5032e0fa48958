-- What the simulated hospitals saw: one row per discharge they attempted.
CREATE TABLE discharges (
    request_id       uuid PRIMARY KEY,
    run_request_id   uuid NOT NULL,
    treating_region  text NOT NULL,
    insured_region   text NOT NULL,
    hospital_code    text NOT NULL,
    member_id        text NOT NULL,
    month            text NOT NULL,
    status           text NOT NULL CHECK (status IN ('settled', 'failed')),
    settlement_id    uuid,
    total_fen        bigint,
    fund_pay_fen     bigint,
    psn_pay_fen      bigint,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (status <> 'settled' OR fund_pay_fen + psn_pay_fen = total_fen)
);
CREATE INDEX discharges_pair ON discharges (month, treating_region, insured_region);
