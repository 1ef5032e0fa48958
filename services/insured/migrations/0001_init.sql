-- Insured agency: members, filings (备案), year-to-date accumulators and recorded adjudications.
CREATE TABLE members (
    member_id   text PRIMARY KEY,
    id_number   text NOT NULL,
    name        text NOT NULL,
    scheme      text NOT NULL CHECK (scheme IN ('employee', 'resident')),
    retired     boolean NOT NULL,
    poverty     boolean NOT NULL,
    assistance  text CHECK (assistance IN ('tekun', 'dibao', 'dishouru')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE filings (
    filing_id        bigserial PRIMARY KEY,
    member_id        text NOT NULL REFERENCES members,
    category         text NOT NULL CHECK (category IN ('resident', 'referral', 'temporary')),
    treating_region  text,
    valid_from       date NOT NULL,
    valid_to         date,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX filings_member ON filings (member_id);

-- One row per member and policy year; locked FOR UPDATE while a stay is adjudicated, so two
-- discharges of one member serialise and never consume the same remaining cap twice.
CREATE TABLE accumulators (
    member_id        text NOT NULL REFERENCES members,
    year             integer NOT NULL,
    deductible_fen   bigint NOT NULL DEFAULT 0 CHECK (deductible_fen >= 0),
    eligible_fen     bigint NOT NULL DEFAULT 0 CHECK (eligible_fen >= 0),
    hifp_fen         bigint NOT NULL DEFAULT 0 CHECK (hifp_fen >= 0),
    burden_fen       bigint NOT NULL DEFAULT 0 CHECK (burden_fen >= 0),
    hifmi_fen        bigint NOT NULL DEFAULT 0 CHECK (hifmi_fen >= 0),
    assist_base_fen  bigint NOT NULL DEFAULT 0 CHECK (assist_base_fen >= 0),
    maf_fen          bigint NOT NULL DEFAULT 0 CHECK (maf_fen >= 0),
    admissions       integer NOT NULL DEFAULT 0 CHECK (admissions >= 0),
    PRIMARY KEY (member_id, year)
);

-- A recorded adjudication. `request`/`response` are the serialized first request and answer,
-- so a retry replays the answer and a conflicting retry names the differing field.
CREATE TABLE settlements (
    settlement_id      uuid PRIMARY KEY,
    member_id          text NOT NULL REFERENCES members,
    year               integer NOT NULL,
    treating_region    text NOT NULL,
    status             text NOT NULL CHECK (status IN ('settled', 'cancelled')),
    total_fen          bigint NOT NULL CHECK (total_fen >= 0),
    fund_pay_fen       bigint NOT NULL CHECK (fund_pay_fen >= 0),
    psn_pay_fen        bigint NOT NULL CHECK (psn_pay_fen >= 0),
    hifp_fen           bigint NOT NULL CHECK (hifp_fen >= 0),
    hifmi_fen          bigint NOT NULL CHECK (hifmi_fen >= 0),
    maf_fen            bigint NOT NULL CHECK (maf_fen >= 0),
    delta              jsonb NOT NULL,
    request            bytea NOT NULL,
    response           bytea NOT NULL,
    settled_at         timestamptz NOT NULL DEFAULT now(),
    cancel_request_id  uuid UNIQUE,
    cancel_response    bytea,
    cancelled_at       timestamptz,
    -- The invariant of SPEC §5.2 step 7, checked again by the database.
    CHECK (fund_pay_fen + psn_pay_fen = total_fen),
    CHECK (fund_pay_fen = hifp_fen + hifmi_fen + maf_fen),
    CHECK ((status = 'cancelled') = (cancel_request_id IS NOT NULL))
);
CREATE INDEX settlements_member_year ON settlements (member_id, year);

-- Idempotency of the other mutating calls (RegisterMember, RecordFiling).
CREATE TABLE requests (
    request_id  uuid PRIMARY KEY,
    rpc         text NOT NULL,
    request     bytea NOT NULL,
    response    bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
