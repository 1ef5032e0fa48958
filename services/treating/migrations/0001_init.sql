-- Treating agency: its catalogue versions, encounters, charge lines and settlements.
CREATE TABLE catalogue_versions (
    version     serial PRIMARY KEY,
    sha256      text NOT NULL UNIQUE,
    csv_text    text NOT NULL,
    row_count   integer NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now()
);

-- 入院登记 (2201). The ID number and name stay here; they are never sent downstream.
CREATE TABLE encounters (
    encounter_id    uuid PRIMARY KEY,
    request_id      uuid NOT NULL UNIQUE,
    request         bytea NOT NULL,
    hospital_code   text NOT NULL,
    hospital_level  integer NOT NULL CHECK (hospital_level BETWEEN 1 AND 3),
    insured_region  text NOT NULL,
    member_id       text NOT NULL,
    id_number       text NOT NULL,
    name            text NOT NULL,
    admitted_on     date NOT NULL,
    emergency       boolean NOT NULL,
    diagnoses       text[] NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- 费用明细 (2301): append-only per encounter.
CREATE TABLE charge_lines (
    encounter_id     uuid NOT NULL REFERENCES encounters,
    line_id          text NOT NULL,
    position         integer NOT NULL,
    code             text NOT NULL,
    qty_e4           bigint NOT NULL CHECK (qty_e4 > 0),
    unit_price_fen   bigint NOT NULL CHECK (unit_price_fen >= 0),
    amount_fen       bigint NOT NULL CHECK (amount_fen >= 0),
    service_date     date NOT NULL,
    PRIMARY KEY (encounter_id, line_id)
);

CREATE TABLE uploads (
    request_id    uuid PRIMARY KEY,
    encounter_id  uuid NOT NULL REFERENCES encounters,
    request       bytea NOT NULL,
    response      bytea NOT NULL
);

-- 结算 (2304). `pending` is committed before the downstream call; a retry re-drives it.
CREATE TABLE settlements (
    settlement_id     uuid PRIMARY KEY,
    request_id        uuid NOT NULL UNIQUE,
    encounter_id      uuid NOT NULL REFERENCES encounters,
    hospital_code     text NOT NULL,
    insured_region    text NOT NULL,
    local             boolean NOT NULL,
    status            text NOT NULL CHECK (status IN ('pending', 'settled', 'failed', 'cancelled')),
    request           bytea NOT NULL,
    claim             bytea NOT NULL,
    response          bytea,
    error             bytea,
    total_fen         bigint,
    fund_pay_fen      bigint,
    psn_pay_fen       bigint,
    settled_at        timestamptz,
    cancel_request_id uuid UNIQUE,
    cancel_response   bytea,
    cancelled_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (status <> 'settled' OR (response IS NOT NULL AND fund_pay_fen + psn_pay_fen = total_fen))
);
-- An encounter has at most one live settlement.
CREATE UNIQUE INDEX settlements_one_live ON settlements (encounter_id) WHERE status IN ('pending', 'settled');
