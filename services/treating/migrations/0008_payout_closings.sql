-- Payout months (拨付) by the agency's own commit time, and their close (issue 9 item 4).
--
-- Before, a settlement's payout month was the month of its `settled_at`, which for a cross-region stay is the
-- clearing house's time: a settlement recorded here on 2 April that the clearing house settled on 31 March
-- landed in March's list, which may have been paid already. Now:
--
--   settlements.payout_month       the month this agency recorded the settlement in (its own clock, Asia/Shanghai),
--                                  or the first open month after it when that month was closed
--   settlements.undo_payout_month  the same for its cancel (撤销) or reversal (冲正), never before payout_month
--   payout_closings                one row per closed month: the frozen payout list (a ListPayoutsResponse)
--
-- The database keeps a closed list closed, whoever writes:
--
--   ledger_postings   no posting into a closed payout month
--   settlements       no payout month set to a closed month; once set, a settlement's payout (hospital, local,
--                     fund share, month) is fixed, its cancel or reversal too, and it is never deleted
--   payout_closings   inserted only under the close lock; no UPDATE, DELETE or TRUNCATE
--
-- Serialisation, as the clearing house does it with clearing_aggregates (its 0008): whatever chooses a payout
-- month takes ROW EXCLUSIVE on payout_closings first, a close takes SHARE ROW EXCLUSIVE, so a close waits for
-- the posts in flight and every later post sees it (the triggers below take the posting lock themselves, so
-- raw SQL waits too).

-- Migrations run in one transaction: check the ledger postings an earlier migration wrote (deferred balance
-- trigger) now, since a table with pending trigger events cannot be altered (as 0004 does).
SET CONSTRAINTS ALL IMMEDIATE;

ALTER TABLE settlements
    ADD COLUMN payout_month text CHECK (payout_month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    ADD COLUMN undo_payout_month text CHECK (undo_payout_month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$');

-- What the payout lists said before: the month of settled_at, and of the cancel's or reversal's time, for a
-- settlement that completed here (the ledger's payout_month is the same month).
UPDATE settlements SET payout_month = to_char(settled_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')
    WHERE settled_at IS NOT NULL;
UPDATE settlements SET undo_payout_month = to_char(coalesce(cancelled_at, reversed_at) AT TIME ZONE 'Asia/Shanghai',
                                                   'YYYY-MM')
    WHERE settled_at IS NOT NULL AND status IN ('cancelled', 'reversed');

ALTER TABLE settlements
    ADD CONSTRAINT settlements_settled_in_a_payout_month
        CHECK (status NOT IN ('settled', 'cancelled') OR payout_month IS NOT NULL),
    ADD CONSTRAINT settlements_undone_in_a_payout_month
        CHECK (status NOT IN ('cancelled', 'reversed') OR payout_month IS NULL OR undo_payout_month IS NOT NULL),
    ADD CONSTRAINT settlements_undone_after_paying
        CHECK (undo_payout_month IS NULL OR (payout_month IS NOT NULL AND status IN ('cancelled', 'reversed')
                                             AND undo_payout_month >= payout_month));
CREATE INDEX settlements_payout_month ON settlements (payout_month) WHERE payout_month IS NOT NULL;
CREATE INDEX settlements_undo_payout_month ON settlements (undo_payout_month) WHERE undo_payout_month IS NOT NULL;

-- A closed month and its frozen payout list (the serialized ListPayoutsResponse, closed = true).
CREATE TABLE payout_closings (
    month       text PRIMARY KEY CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    closed_at   timestamptz NOT NULL,
    response    bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION payout_month_is_closed(month text) RETURNS boolean LANGUAGE sql VOLATILE AS $$
    SELECT EXISTS (SELECT 1 FROM payout_closings c WHERE c.month = $1)
$$;

-- ---------------------------------------------------------------------------------------------------------
-- payout_closings: inserted by a close only, then never changed
-- ---------------------------------------------------------------------------------------------------------

-- The close holds SHARE ROW EXCLUSIVE on payout_closings (store.lock_payouts_for_close), which waits for every
-- post in flight and keeps new ones out until it commits; a closing inserted without it could miss a
-- settlement about to commit into its month.
CREATE FUNCTION payout_closings_insert_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_locks l
                   WHERE l.locktype = 'relation' AND l.relation = 'payout_closings'::regclass
                     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                     AND l.pid = pg_backend_pid() AND l.granted
                     AND l.mode IN ('ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')) THEN
        RAISE EXCEPTION 'payout month % is closed only by the close path, which locks payout_closings first',
            NEW.month USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER payout_closings_by_close_only BEFORE INSERT ON payout_closings
    FOR EACH ROW EXECUTE FUNCTION payout_closings_insert_guard();

CREATE FUNCTION payout_closings_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a closed payout month is never reopened or edited: % on payout_closings refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER payout_closings_append_only BEFORE UPDATE OR DELETE ON payout_closings
    FOR EACH ROW EXECUTE FUNCTION payout_closings_refuse_change();
CREATE TRIGGER payout_closings_no_truncate BEFORE TRUNCATE ON payout_closings
    FOR EACH STATEMENT EXECUTE FUNCTION payout_closings_refuse_change();

-- ---------------------------------------------------------------------------------------------------------
-- The ledger: no posting into a closed payout month
-- ---------------------------------------------------------------------------------------------------------

CREATE FUNCTION ledger_payout_month_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    month text;
BEGIN
    LOCK TABLE payout_closings IN ROW EXCLUSIVE MODE;  -- a close in flight first commits, then is seen
    SELECT t.payout_month INTO month FROM ledger_transactions t WHERE t.tx_id = NEW.tx_id;
    IF FOUND AND payout_month_is_closed(month) THEN
        RAISE EXCEPTION 'payout month % is closed: ledger transaction % cannot post into it', month, NEW.tx_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER ledger_postings_payout_month_guard BEFORE INSERT ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_payout_month_guard();

-- ---------------------------------------------------------------------------------------------------------
-- Settlements: a payout month is set once, never to a closed month; a settlement's payout is then fixed
-- ---------------------------------------------------------------------------------------------------------

CREATE FUNCTION settlements_payout_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.payout_month IS NOT NULL THEN
            RAISE EXCEPTION 'settlement % counts in the payout list of %: it is never deleted', OLD.settlement_id,
                OLD.payout_month USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.payout_month IS NOT NULL AND (
            NEW.status NOT IN ('settled', 'cancelled', 'reversed')
            OR (OLD.settlement_id, OLD.hospital_code, OLD.local, OLD.fund_pay_fen, OLD.payout_month)
               IS DISTINCT FROM (NEW.settlement_id, NEW.hospital_code, NEW.local, NEW.fund_pay_fen, NEW.payout_month)) THEN
        RAISE EXCEPTION 'settlement % is in the payout list of %: its payout is fixed (% refused)', OLD.settlement_id,
            OLD.payout_month, TG_OP USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.undo_payout_month IS NOT NULL
            AND (OLD.status, OLD.undo_payout_month) IS DISTINCT FROM (NEW.status, NEW.undo_payout_month) THEN
        RAISE EXCEPTION 'settlement % is %: its cancel or reversal is fixed (% refused)', OLD.settlement_id,
            OLD.status, TG_OP USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.payout_month IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.payout_month IS NULL) THEN
        LOCK TABLE payout_closings IN ROW EXCLUSIVE MODE;  -- a close in flight first commits, then is seen
        IF payout_month_is_closed(NEW.payout_month) THEN
            RAISE EXCEPTION 'payout month % is closed: settlement % cannot count in it', NEW.payout_month,
                NEW.settlement_id USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
    END IF;
    IF NEW.undo_payout_month IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.undo_payout_month IS NULL) THEN
        LOCK TABLE payout_closings IN ROW EXCLUSIVE MODE;
        IF payout_month_is_closed(NEW.undo_payout_month) THEN
            RAISE EXCEPTION 'payout month % is closed: the % of settlement % cannot count in it',
                NEW.undo_payout_month, NEW.status, NEW.settlement_id USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER settlements_payout_guard BEFORE INSERT OR UPDATE OR DELETE ON settlements
    FOR EACH ROW EXECUTE FUNCTION settlements_payout_guard();
CREATE FUNCTION settlements_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'settlements count in payout lists: TRUNCATE refused' USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER settlements_no_truncate BEFORE TRUNCATE ON settlements
    FOR EACH STATEMENT EXECUTE FUNCTION settlements_refuse_truncate();
