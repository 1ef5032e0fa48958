-- The operator audit log (docs/security.md, "Operator audit log"): the same two tables in every party's
-- database — clearing house, each treating and insured agency, HIS simulator — applied by each party's
-- migration `NNNN_operator_audit.py`. This file is frozen once applied: a change is a new file and a new
-- migration per party, never an edit here.
--
-- A call is two rows: `operator_audit` is written before the call's body runs (who, what, the request), and
-- `operator_audit_outcomes` once it has its outcome. So an action whose process died half-way still shows as
-- begun, with no outcome, instead of not at all (services/security/audit_log.py).
--
-- Append-only by trigger, as the ledger is (treating/migrations/0003_ledger.sql): UPDATE, DELETE and TRUNCATE
-- are refused for every role, the table's owner and superusers included; only the owner's ALTER TABLE …
-- DISABLE TRIGGER or a superuser's session_replication_role = replica get around them.

CREATE TABLE operator_audit (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL,                          -- stamped by the trigger below: the database clock
    caller  text NOT NULL CHECK (caller LIKE 'operator/%'),  -- the caller's identity path, from its certificate
    rpc     text NOT NULL CHECK (rpc ~ '^[A-Za-z]+\.[A-Za-z]+$'),  -- Service.Method
    request jsonb NOT NULL CHECK (jsonb_typeof(request) = 'object')  -- redacted: no ID number, no name
);
-- Readers page by (at, id), for every operator or one (services/security/audit_service.py).
CREATE INDEX operator_audit_at ON operator_audit (at, id);
CREATE INDEX operator_audit_caller ON operator_audit (caller, at, id);

-- At most one outcome per call; a call without one began and never ended (in flight, or its process died).
CREATE TABLE operator_audit_outcomes (
    event_id bigint PRIMARY KEY REFERENCES operator_audit (id),
    at       timestamptz NOT NULL,                         -- stamped by the trigger below
    outcome  text NOT NULL CHECK (outcome ~ '^[A-Z_]+$'),  -- the gRPC status code name; OK on success
    message  text NOT NULL DEFAULT ''                      -- the refusal's message, as the caller got it
);

-- The time is the database server's clock at the INSERT, whatever the writer says: a writer cannot backdate
-- (clock_timestamp, not now(): the instant of the row, not of its transaction's start).
CREATE FUNCTION operator_audit_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.at := clock_timestamp();
    RETURN NEW;
END;
$$;
CREATE TRIGGER operator_audit_stamp BEFORE INSERT ON operator_audit
    FOR EACH ROW EXECUTE FUNCTION operator_audit_stamp();
CREATE TRIGGER operator_audit_outcomes_stamp BEFORE INSERT ON operator_audit_outcomes
    FOR EACH ROW EXECUTE FUNCTION operator_audit_stamp();

CREATE FUNCTION operator_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the operator audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER operator_audit_append_only BEFORE UPDATE OR DELETE ON operator_audit
    FOR EACH ROW EXECUTE FUNCTION operator_audit_refuse_change();
CREATE TRIGGER operator_audit_outcomes_append_only BEFORE UPDATE OR DELETE ON operator_audit_outcomes
    FOR EACH ROW EXECUTE FUNCTION operator_audit_refuse_change();
-- TRUNCATE fires no row trigger; refuse it per statement.
CREATE TRIGGER operator_audit_no_truncate BEFORE TRUNCATE ON operator_audit
    FOR EACH STATEMENT EXECUTE FUNCTION operator_audit_refuse_change();
CREATE TRIGGER operator_audit_outcomes_no_truncate BEFORE TRUNCATE ON operator_audit_outcomes
    FOR EACH STATEMENT EXECUTE FUNCTION operator_audit_refuse_change();

-- What a reader sees: one row per call, its outcome NULL while it has none.
CREATE VIEW operator_audit_events AS
    SELECT e.id, e.at, e.caller, e.rpc, e.request, o.outcome, o.message, o.at AS finished_at
    FROM operator_audit e LEFT JOIN operator_audit_outcomes o ON o.event_id = e.id;
