-- Idempotency of Cancel and ImportCatalogue: the first request and answer under each request id.
CREATE TABLE requests (
    request_id  uuid PRIMARY KEY,
    rpc         text NOT NULL,
    request     bytea NOT NULL,
    response    bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
