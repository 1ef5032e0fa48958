-- The database enforces what the code promises (SPEC §6, issue 9 item 10). The clearing house's ledger gets
-- the treating agency's guards (treating/migrations/0003_ledger.sql), and the month aggregates and closings
-- become writable only by the posting and close paths:
--
--   ledger_postings      amount ≠ 0; a transaction has ≥ 2 postings (at commit); no TRUNCATE; no posting into
--                        a closed month; no new posting on a transaction an earlier transaction committed
--   ledger_transactions  no TRUNCATE
--   ledger_balances      written only by the posting trigger; no TRUNCATE
--   claims               once settled, the obligation and the statement line of a claim are fixed; its cancel
--                        or reversal clears in `undo_month`
--   clearing_aggregates  written only by the claims trigger (a claim settling, or its cancel/reversal), never
--                        in a closed month; no DELETE or TRUNCATE
--   month_closings       inserted only under the close lock; no UPDATE, DELETE or TRUNCATE
--
-- Triggers, not a restricted role: privileges do not bind a superuser (the embedded Postgres runs the
-- services as `postgres`) nor a table's owner (who runs the migrations and could grant itself back), a role
-- is cluster-wide (shared by every stack on one server, and creating it needs CREATEROLE, which a
-- DATABASE_URL server need not give), and the posting path must UPDATE clearing_aggregates anyway. Triggers
-- bind every role, the owner and superusers included; only a superuser's session_replication_role = replica
-- (the bulk loader of services/bench_close.py) or the owner's ALTER TABLE … DISABLE TRIGGER get around them.

-- Migrations run in one transaction: check the ledger postings an earlier migration wrote (deferred balance
-- trigger) now, since a table with pending trigger events cannot be altered (as 0006 does).
SET CONSTRAINTS ALL IMMEDIATE;

-- ---------------------------------------------------------------------------------------------------------
-- Which database transaction wrote a row
-- ---------------------------------------------------------------------------------------------------------

-- A ledger transaction and a month's closing carry the id of the database transaction that wrote them
-- (`creating_xact`, the full 64-bit id of the top-level transaction, the same inside its savepoints), stamped
-- by a trigger whatever the INSERT says; the rows are never updated. Rows from before this migration have
-- none: an earlier transaction wrote them. (Not the row's xmin: it is 32 bits, a savepoint's differs from its
-- transaction's, and telling one's own savepoint from a row frozen long ago would need the next xid.)
ALTER TABLE ledger_transactions ADD COLUMN creating_xact xid8;
ALTER TABLE month_closings ADD COLUMN creating_xact xid8;

CREATE FUNCTION stamp_creating_xact() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.creating_xact := pg_current_xact_id();
    RETURN NEW;
END;
$$;
CREATE TRIGGER ledger_transactions_stamp BEFORE INSERT ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION stamp_creating_xact();

-- A month is closed once a row of month_closings committed it. The close itself (the transaction that
-- inserts the row) still sees its month open, so the close path may book into the month it closes.
CREATE FUNCTION month_is_closed(month text) RETURNS boolean LANGUAGE sql VOLATILE AS $$
    SELECT EXISTS (SELECT 1 FROM month_closings c
                   WHERE c.month = $1 AND c.creating_xact IS DISTINCT FROM pg_current_xact_id())
$$;

-- A direct write (trigger depth 0) to a table only a trigger writes.
CREATE FUNCTION refuse_direct_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is written only by its trigger: a direct % is refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- ---------------------------------------------------------------------------------------------------------
-- The ledger: no zero amount, at least two legs, no TRUNCATE, balances only by the trigger
-- ---------------------------------------------------------------------------------------------------------

-- A zero amount is never posted: a claim the funds pay nothing for (fund_pay 0) posts no transaction, as at
-- the treating agency. Only a database from before this migration can hold zero postings (the ledger is
-- append-only, they stay); the constraint then binds new postings and is left unvalidated.
ALTER TABLE ledger_postings ADD CONSTRAINT ledger_postings_amount_nonzero CHECK (amount_fen <> 0) NOT VALID;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ledger_postings WHERE amount_fen = 0) THEN
        ALTER TABLE ledger_postings VALIDATE CONSTRAINT ledger_postings_amount_nonzero;
    END IF;
END;
$$;

-- Σ debits = Σ credits per transaction, and at least two legs, checked by the database at commit.
CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
    legs  integer;
BEGIN
    SELECT coalesce(sum(amount_fen), 0), count(*) INTO total, legs FROM ledger_postings WHERE tx_id = NEW.tx_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced by % fen', NEW.tx_id, total
            USING ERRCODE = 'check_violation';
    END IF;
    IF legs < 2 THEN
        RAISE EXCEPTION 'ledger transaction % has % postings: at least two are needed', NEW.tx_id, legs
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;
-- Fired per transaction row too, so a transaction committed without any posting is refused as well.
CREATE CONSTRAINT TRIGGER ledger_transactions_have_postings
    AFTER INSERT ON ledger_transactions DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();

-- TRUNCATE fires no row trigger; refuse it per statement (0001 refuses UPDATE and DELETE per row).
CREATE TRIGGER ledger_postings_no_truncate BEFORE TRUNCATE ON ledger_postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transactions_no_truncate BEFORE TRUNCATE ON ledger_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Only the posting trigger (0002 ledger_apply_posting) writes a balance: a direct INSERT, UPDATE or DELETE
-- (trigger depth 0) is refused.
CREATE TRIGGER ledger_balances_by_postings_only BEFORE INSERT OR UPDATE OR DELETE ON ledger_balances
    FOR EACH ROW WHEN (pg_trigger_depth() = 0) EXECUTE FUNCTION refuse_direct_write();
CREATE TRIGGER ledger_balances_no_truncate BEFORE TRUNCATE ON ledger_balances
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_direct_write();

-- ---------------------------------------------------------------------------------------------------------
-- A posting: only into an open month, only on a transaction created by the same database transaction
-- ---------------------------------------------------------------------------------------------------------

-- A ledger transaction is written whole by one database transaction: its row and all its legs. A posting
-- for a tx_id whose row another database transaction wrote is refused (its `creating_xact` is not the
-- current transaction's id; another's uncommitted row is invisible, so it was committed earlier), and a
-- transaction checked balanced at its commit stays as it was checked. A posting is also refused when its
-- transaction clears in a closed month (the services book late postings into the first open month:
-- services/clearinghouse/closing.py first_open_month). The posting path takes ROW EXCLUSIVE on
-- clearing_aggregates before it chooses its month, and a close takes SHARE ROW EXCLUSIVE (month_closings
-- below insists): taking the same lock here makes any other writer wait for a close in flight, and the next
-- statement (READ COMMITTED) then sees it.
CREATE FUNCTION ledger_posting_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    creator xid8;
    month   text;
BEGIN
    LOCK TABLE clearing_aggregates IN ROW EXCLUSIVE MODE;
    SELECT t.creating_xact, t.clearing_month INTO creator, month
    FROM ledger_transactions t WHERE t.tx_id = NEW.tx_id;
    IF NOT FOUND THEN
        RETURN NEW;  -- the foreign key refuses it
    END IF;
    IF creator IS DISTINCT FROM pg_current_xact_id() THEN
        RAISE EXCEPTION 'ledger transaction % was committed earlier: it takes no new postings', NEW.tx_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF month_is_closed(month) THEN
        RAISE EXCEPTION 'month % is closed: ledger transaction % cannot post into it', month, NEW.tx_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER ledger_postings_guard BEFORE INSERT ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_posting_guard();

-- ---------------------------------------------------------------------------------------------------------
-- Claims: the month a cancel or reversal clears in; a settled claim's obligation is fixed
-- ---------------------------------------------------------------------------------------------------------

-- `clearing_month` is the month a claim's settlement clears in, `undo_month` the month its cancel (撤销) or
-- reversal (冲正) does. Statements and the month aggregates are built from these two, not from the ledger,
-- since a claim the funds pay nothing for posts no ledger transaction but is still a settlement of its month
-- (SPEC §7: a statement lists every settlement).
ALTER TABLE claims ADD COLUMN undo_month text CHECK (undo_month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$');
UPDATE claims c SET undo_month = t.clearing_month FROM ledger_transactions t
    WHERE t.settlement_id = c.settlement_id AND t.kind IN ('cancel', 'reversal');
CREATE INDEX claims_undo_month ON claims (undo_month) WHERE undo_month IS NOT NULL;
ALTER TABLE claims
    ADD CONSTRAINT claims_settled_in_a_month
        CHECK (status NOT IN ('settled', 'cancelled') OR clearing_month IS NOT NULL),
    ADD CONSTRAINT claims_undone_in_a_month
        CHECK (status NOT IN ('cancelled', 'reversed') OR clearing_month IS NULL OR undo_month IS NOT NULL),
    ADD CONSTRAINT claims_undone_after_settling
        CHECK (undo_month IS NULL OR (clearing_month IS NOT NULL AND undo_month >= clearing_month));

-- The only writer of clearing_aggregates: one cell of (month, insured region, treating region) moves.
CREATE FUNCTION clearing_aggregates_add(month text, insured text, treating text, settlements integer,
                                        cancels integer, fund_pay_fen bigint) RETURNS void LANGUAGE sql AS $$
    INSERT INTO clearing_aggregates AS a (clearing_month, insured_region, treating_region, settlements, cancels,
                                          fund_pay_fen)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (clearing_month, insured_region, treating_region) DO UPDATE
        SET settlements = a.settlements + EXCLUDED.settlements, cancels = a.cancels + EXCLUDED.cancels,
            fund_pay_fen = a.fund_pay_fen + EXCLUDED.fund_pay_fen
$$;

-- A claim contributes to the aggregates once settled — +1 settlement and +fund_pay in `clearing_month` — and
-- once cancelled or reversed after settling — +1 cancel and −fund_pay in `undo_month` — in the database
-- transaction that changes its status, the posting's. These are the only changes allowed to a settled claim's
-- contribution: its regions, fund split, dates, hospital and months are fixed from then on (a closed month's
-- statement cannot change), it cannot be deleted, and its cancel or reversal cannot be taken back.
CREATE FUNCTION claims_move_aggregates() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_settled boolean := TG_OP <> 'INSERT' AND OLD.clearing_month IS NOT NULL
                           AND OLD.status IN ('settled', 'cancelled', 'reversed');
    new_settled boolean := TG_OP <> 'DELETE' AND NEW.clearing_month IS NOT NULL
                           AND NEW.status IN ('settled', 'cancelled', 'reversed');
    old_undone  boolean := old_settled AND OLD.status IN ('cancelled', 'reversed');
    new_undone  boolean := new_settled AND NEW.status IN ('cancelled', 'reversed');
BEGIN
    IF old_settled AND (NOT new_settled OR
            (OLD.settlement_id, OLD.insured_region, OLD.treating_region, OLD.hospital_code, OLD.member_id,
             OLD.total_fen, OLD.fund_pay_fen, OLD.psn_pay_fen, OLD.hifp_fen, OLD.hifmi_fen, OLD.maf_fen,
             OLD.admitted_on, OLD.discharged_on, OLD.settled_at, OLD.clearing_month)
            IS DISTINCT FROM
            (NEW.settlement_id, NEW.insured_region, NEW.treating_region, NEW.hospital_code, NEW.member_id,
             NEW.total_fen, NEW.fund_pay_fen, NEW.psn_pay_fen, NEW.hifp_fen, NEW.hifmi_fen, NEW.maf_fen,
             NEW.admitted_on, NEW.discharged_on, NEW.settled_at, NEW.clearing_month)) THEN
        RAISE EXCEPTION 'claim % is settled: its obligation and statement line are fixed (% refused)',
            OLD.settlement_id, TG_OP USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF old_undone AND (NOT new_undone OR OLD.status <> NEW.status
                       OR OLD.undo_month IS DISTINCT FROM NEW.undo_month) THEN
        RAISE EXCEPTION 'claim % is %: its cancel or reversal is fixed (% refused)', OLD.settlement_id, OLD.status,
            TG_OP USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF new_settled AND NOT old_settled THEN
        PERFORM clearing_aggregates_add(NEW.clearing_month, NEW.insured_region, NEW.treating_region, 1, 0,
                                        NEW.fund_pay_fen);
    END IF;
    IF new_undone AND NOT old_undone THEN
        PERFORM clearing_aggregates_add(NEW.undo_month, NEW.insured_region, NEW.treating_region, 0, 1,
                                        -NEW.fund_pay_fen);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER claims_move_aggregates AFTER INSERT OR UPDATE OR DELETE ON claims
    FOR EACH ROW EXECUTE FUNCTION claims_move_aggregates();

-- ---------------------------------------------------------------------------------------------------------
-- clearing_aggregates: only by the claims trigger, never in a closed month
-- ---------------------------------------------------------------------------------------------------------

CREATE TRIGGER clearing_aggregates_by_claims_only BEFORE INSERT OR UPDATE OR DELETE ON clearing_aggregates
    FOR EACH ROW WHEN (pg_trigger_depth() = 0) EXECUTE FUNCTION refuse_direct_write();
CREATE TRIGGER clearing_aggregates_no_truncate BEFORE TRUNCATE ON clearing_aggregates
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_direct_write();

-- A close froze its month's cells (SPEC §7: a later cancel or reversal is an adjustment of an open month).
CREATE FUNCTION clearing_aggregates_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'clearing_aggregates cells are never deleted (the cell of % %→%)', OLD.clearing_month,
            OLD.insured_region, OLD.treating_region USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF month_is_closed(NEW.clearing_month) OR (TG_OP = 'UPDATE' AND month_is_closed(OLD.clearing_month)) THEN
        RAISE EXCEPTION 'month % is closed: its clearing aggregates are frozen', NEW.clearing_month
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER clearing_aggregates_guard BEFORE INSERT OR UPDATE OR DELETE ON clearing_aggregates
    FOR EACH ROW EXECUTE FUNCTION clearing_aggregates_guard();

-- ---------------------------------------------------------------------------------------------------------
-- month_closings: inserted by a close only, then never changed
-- ---------------------------------------------------------------------------------------------------------

-- The close path holds SHARE ROW EXCLUSIVE on clearing_aggregates (store.lock_aggregates_for_close), which
-- waits for every post in flight and keeps new ones out until it commits; a closing inserted without it could
-- miss a posting about to commit into its month.
CREATE FUNCTION month_closings_insert_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_locks l
                   WHERE l.locktype = 'relation' AND l.relation = 'clearing_aggregates'::regclass
                     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                     AND l.pid = pg_backend_pid() AND l.granted
                     AND l.mode IN ('ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')) THEN
        RAISE EXCEPTION 'month % is closed only by the close path, which locks clearing_aggregates first', NEW.month
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    NEW.creating_xact := pg_current_xact_id();
    RETURN NEW;
END;
$$;
CREATE TRIGGER month_closings_by_close_only BEFORE INSERT ON month_closings
    FOR EACH ROW EXECUTE FUNCTION month_closings_insert_guard();

CREATE FUNCTION month_closings_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a closed month is never reopened or edited: % on month_closings refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER month_closings_append_only BEFORE UPDATE OR DELETE ON month_closings
    FOR EACH ROW EXECUTE FUNCTION month_closings_refuse_change();
CREATE TRIGGER month_closings_no_truncate BEFORE TRUNCATE ON month_closings
    FOR EACH STATEMENT EXECUTE FUNCTION month_closings_refuse_change();
