-- Month partitions (issue 11 item 6, SPEC §11): claims, the ledger and the request log are partitioned by month
-- (declarative RANGE partitions), so a month's close, statement and reconciliation read one partition and an old,
-- closed month can be detached and archived (docs/architecture.md "Month partitions", "Sharding by insured
-- region").
--
--   claims               by settlement_day (the treating agency's day, carried in the claim: a first try and its
--                        retries know it, whatever time they reach here), key (insured_region, settlement_day,
--                        settlement_id)
--   ledger_transactions  by clearing_month (fixed when the transaction is written), key (insured_region,
--                        clearing_month, tx_id)
--   ledger_postings      by its transaction's clearing_month, copied onto each leg with the transaction's insured
--                        region, key (insured_region, clearing_month, tx_id, account)
--   requests             by `month`, the month the caller derives from what a first try and its retries both know
--                        (services/clearinghouse/servicer.py request_key), key (insured_region, month, request_id)
--   statement_lines      (new, below) by the month a settlement or its undo clears in, key (insured_region, month,
--                        settlement_id, kind)
--
-- Every primary and unique key starts with the insured region and holds the month: Postgres needs the partition
-- key in every unique key of a partitioned table, and Citus needs the distribution column (insured region) in
-- it. A key without the month (settlement_id, tx_id, request_id alone) is no longer enforced by the database
-- across months: the services look a key up under its advisory lock before writing it (lock_settlement_key,
-- lock_request), which is what made them unique under concurrency before too.
--
-- The rows are copied into new partitioned tables (a table cannot be turned into a partitioned one in place);
-- the triggers of 0001–0008 are created on the new tables after the copy, so copying moves no balance and no
-- aggregate twice, and the running balances and aggregates stay as they were.

SET CONSTRAINTS ALL IMMEDIATE;  -- no pending deferred trigger events on the tables replaced below

-- ---------------------------------------------------------------------------------------------------------
-- Months and their partitions
-- ---------------------------------------------------------------------------------------------------------

-- Claims were kept from TRUNCATE by the ledger's foreign key to them (TRUNCATE … CASCADE reached the ledger,
-- which refuses it); that key is gone (below), so they refuse it themselves: a settled claim is never deleted.
CREATE FUNCTION claims_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'claims carry the ledger''s obligations: TRUNCATE on % refused', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE FUNCTION month_after(month text) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT to_char(to_date($1 || '-01', 'YYYY-MM-DD') + interval '1 month', 'YYYY-MM')
$$;

-- The partitioned tables of the clearing house, with the kind of their partition key (a day or a month text).
CREATE FUNCTION month_partitioned_tables() RETURNS TABLE (parent text, by_day boolean) LANGUAGE sql IMMUTABLE AS $$
    VALUES ('claims', true), ('ledger_transactions', false), ('ledger_postings', false), ('requests', false)
$$;

CREATE FUNCTION month_partition_name(parent text, month text) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT $1 || '_p' || replace($2, '-', '_')
$$;

-- Create `month`'s partition of `parent` unless it exists; true when created. Safe under concurrency: an advisory
-- lock per (table, month) serialises two creators, and the second finds the first's table (catalog lookups see
-- committed tables at once). CREATE TABLE … PARTITION OF locks the parent (ACCESS EXCLUSIVE) until the creating
-- transaction ends, so the services make each partition in a transaction of its own, before the request that
-- needs the month and ahead of time (services/clearinghouse/partitions.py): a transaction that holds one such
-- lock and waits for nothing else joins no deadlock, whatever order the requests take their locks in.
CREATE FUNCTION ensure_month_partition_of(parent text, month text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    name   text := month_partition_name(parent, month);
    by_day boolean := (SELECT t.by_day FROM month_partitioned_tables() t WHERE t.parent = ensure_month_partition_of.parent);
BEGIN
    IF month !~ '^[0-9]{4}-(0[1-9]|1[0-2])$' THEN
        RAISE EXCEPTION 'month % is not YYYY-MM', month USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF by_day IS NULL THEN
        RAISE EXCEPTION '% is not partitioned by month', parent USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(727100002, hashtext(name));
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    IF by_day THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', name, parent,
                       (month || '-01')::date, (month_after(month) || '-01')::date);
    ELSE
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', name, parent,
                       month, month_after(month));
    END IF;
    -- A statement trigger is not cloned onto partitions: TRUNCATE of a partition is refused here.
    IF parent IN ('ledger_transactions', 'ledger_postings') THEN
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT '
                       'EXECUTE FUNCTION ledger_refuse_change()', name || '_no_truncate', name);
    ELSIF parent = 'claims' THEN
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT '
                       'EXECUTE FUNCTION claims_refuse_truncate()', name || '_no_truncate', name);
    ELSIF parent = 'statement_lines' THEN
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT '
                       'EXECUTE FUNCTION statement_lines_refuse_change()', name || '_no_truncate', name);
    END IF;
    RETURN true;
END;
$$;

-- Every table's partition of `month` (the migration's and the tests' way, in one transaction); returns how many
-- were created.
CREATE FUNCTION ensure_month_partition(month text) RETURNS integer LANGUAGE sql AS $$
    SELECT count(*) FILTER (WHERE ensure_month_partition_of(t.parent, $1))::integer FROM month_partitioned_tables() t
$$;

-- The tables still without a partition of `month`.
CREATE FUNCTION missing_month_partitions(month text) RETURNS SETOF text LANGUAGE sql STABLE AS $$
    SELECT t.parent FROM month_partitioned_tables() t WHERE to_regclass(month_partition_name(t.parent, $1)) IS NULL
$$;

-- Which month's partitions exist (for every table), oldest first.
CREATE FUNCTION month_partitions() RETURNS TABLE (parent text, month text, partition text) LANGUAGE sql STABLE AS $$
    SELECT t.parent, translate(substr(c.relname, length(t.parent) + 3), '_', '-'), c.relname::text
    FROM month_partitioned_tables() t
    JOIN pg_inherits i ON i.inhparent = t.parent::regclass
    JOIN pg_class c ON c.oid = i.inhrelid
    ORDER BY 2, 1
$$;

-- ---------------------------------------------------------------------------------------------------------
-- The old tables make way
-- ---------------------------------------------------------------------------------------------------------

-- A foreign key to a partitioned table must hold its partition key; these are replaced by checks (below).
ALTER TABLE month_clearings DROP CONSTRAINT month_clearings_tx_id_fkey;
ALTER TABLE ledger_postings DROP CONSTRAINT ledger_postings_tx_id_fkey;
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_settlement_id_fkey;
ALTER SEQUENCE ledger_transactions_tx_id_seq OWNED BY NONE;

ALTER TABLE claims RENAME TO claims_before_0014;
ALTER TABLE ledger_transactions RENAME TO ledger_transactions_before_0014;
ALTER TABLE ledger_postings RENAME TO ledger_postings_before_0014;
ALTER TABLE requests RENAME TO requests_before_0014;

-- ---------------------------------------------------------------------------------------------------------
-- The partitioned tables (same columns, in the same order, then the new ones)
-- ---------------------------------------------------------------------------------------------------------

CREATE TABLE claims (LIKE claims_before_0014 INCLUDING DEFAULTS) PARTITION BY RANGE (settlement_day);

CREATE TABLE ledger_transactions (LIKE ledger_transactions_before_0014 INCLUDING DEFAULTS,
                                  insured_region text NOT NULL)
    PARTITION BY RANGE (clearing_month);
ALTER SEQUENCE ledger_transactions_tx_id_seq OWNED BY ledger_transactions.tx_id;

-- A leg carries its transaction's insured region and month: the leg lives in the transaction's partition (and
-- shard), and the balance check of one transaction reads one partition.
CREATE TABLE ledger_postings (LIKE ledger_postings_before_0014 INCLUDING DEFAULTS,
                              insured_region text NOT NULL, clearing_month text NOT NULL)
    PARTITION BY RANGE (clearing_month);

-- insured_region is '' for a request of no region (CloseMonth: the whole country's month).
CREATE TABLE requests (LIKE requests_before_0014 INCLUDING DEFAULTS,
                       insured_region text NOT NULL DEFAULT '', month text NOT NULL)
    PARTITION BY RANGE (month);

-- Partitions: every month that has rows, this month and the next.
SELECT ensure_month_partition(month) FROM (
    SELECT to_char(settlement_day, 'YYYY-MM') AS month FROM claims_before_0014
    UNION SELECT clearing_month FROM ledger_transactions_before_0014
    UNION SELECT to_char(created_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') FROM requests_before_0014
    UNION SELECT to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')
    UNION SELECT to_char(now() AT TIME ZONE 'Asia/Shanghai' + interval '1 month', 'YYYY-MM')) AS months
ORDER BY month;

-- ---------------------------------------------------------------------------------------------------------
-- Copy the rows
-- ---------------------------------------------------------------------------------------------------------

INSERT INTO claims SELECT * FROM claims_before_0014;

-- A journal's insured region: the claim's (a settlement, cancel or reversal), the region topped up (its
-- prepayment leg), the region cleared.
INSERT INTO ledger_transactions
SELECT t.*, CASE WHEN t.kind = 'clearing' THEN t.cleared_region
                 WHEN t.kind = 'topup' THEN (SELECT split_part(p.account, '/', 2) FROM ledger_postings_before_0014 p
                                            WHERE p.tx_id = t.tx_id AND p.account LIKE 'insured/%/prepayment'
                                            LIMIT 1)
                 ELSE (SELECT c.insured_region FROM claims_before_0014 c WHERE c.settlement_id = t.settlement_id)
            END
FROM ledger_transactions_before_0014 t;

INSERT INTO ledger_postings
SELECT p.*, t.insured_region, t.clearing_month FROM ledger_postings_before_0014 p JOIN ledger_transactions t USING (tx_id);

-- A stored request's month: when it was recorded (the requests of before carry nothing better).
INSERT INTO requests
SELECT r.*, '', to_char(r.created_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') FROM requests_before_0014 r;

-- The CHECK constraints as they were, added after the copy: NOT VALID ones stay so (they bind new rows only,
-- and rows of before may not meet them).
DO $$
DECLARE
    item record;
BEGIN
    FOR item IN SELECT replace(c.conrelid::regclass::text, '_before_0014', '') AS target, c.conname,
                       pg_get_constraintdef(c.oid) AS definition
                FROM pg_constraint c
                WHERE c.contype = 'c' AND c.conrelid IN ('claims_before_0014'::regclass,
                      'ledger_transactions_before_0014'::regclass, 'ledger_postings_before_0014'::regclass,
                      'requests_before_0014'::regclass)
                ORDER BY c.conname LOOP
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', item.target, item.conname, item.definition);
    END LOOP;
END;
$$;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_month_format
    CHECK (clearing_month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$');
ALTER TABLE requests ADD CONSTRAINT requests_month_format CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$');

DROP TABLE claims_before_0014, ledger_transactions_before_0014, ledger_postings_before_0014, requests_before_0014;

-- ---------------------------------------------------------------------------------------------------------
-- Keys and indexes
-- ---------------------------------------------------------------------------------------------------------

ALTER TABLE claims ADD PRIMARY KEY (insured_region, settlement_day, settlement_id),
    ADD CONSTRAINT claims_cancel_request_id_key UNIQUE (insured_region, settlement_day, cancel_request_id);
CREATE INDEX claims_settlement_id ON claims (settlement_id);  -- a lookup by id alone probes each partition
CREATE INDEX claims_month ON claims (clearing_month, insured_region, treating_region);
CREATE INDEX claims_undo_month ON claims (undo_month) WHERE undo_month IS NOT NULL;
CREATE INDEX claims_discharged_on ON claims (discharged_on);
CREATE INDEX claims_settlement_day ON claims (settlement_day);

ALTER TABLE ledger_transactions ADD PRIMARY KEY (insured_region, clearing_month, tx_id),
    ADD CONSTRAINT ledger_transactions_settlement_id_kind_key UNIQUE (insured_region, clearing_month, settlement_id, kind);
CREATE INDEX ledger_transactions_settlement ON ledger_transactions (settlement_id, kind);
CREATE INDEX ledger_transactions_tx_id ON ledger_transactions (tx_id);
CREATE UNIQUE INDEX ledger_transactions_one_clearing
    ON ledger_transactions (insured_region, clearing_month, cleared_month, cleared_region) WHERE kind = 'clearing';

ALTER TABLE ledger_postings ADD PRIMARY KEY (insured_region, clearing_month, tx_id, account);

ALTER TABLE requests ADD PRIMARY KEY (insured_region, month, request_id);
CREATE INDEX requests_request_id ON requests (request_id);

-- ---------------------------------------------------------------------------------------------------------
-- Triggers (as 0001–0008 made them), created after the copy
-- ---------------------------------------------------------------------------------------------------------

-- Σ debits = Σ credits and ≥ 2 legs per journal at commit, as 0008 — the legs looked up in the journal's own
-- partition (and, distributed, on its own shard: every leg carries the journal's insured region and month).
CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
    legs  integer;
BEGIN
    SELECT coalesce(sum(amount_fen), 0), count(*) INTO total, legs FROM ledger_postings
    WHERE insured_region = NEW.insured_region AND clearing_month = NEW.clearing_month AND tx_id = NEW.tx_id;
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
CREATE CONSTRAINT TRIGGER ledger_postings_balanced
    AFTER INSERT ON ledger_postings DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();
CREATE CONSTRAINT TRIGGER ledger_transactions_have_postings
    AFTER INSERT ON ledger_transactions DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();

-- The posting guard of 0008, which also stands in for the foreign key to ledger_transactions: a leg's journal
-- must exist with the leg's insured region and month (a foreign key between the two partitioned tables would
-- need the month in it, and is one more lookup of the row this trigger reads anyway).
CREATE OR REPLACE FUNCTION ledger_posting_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    creator xid8;
BEGIN
    LOCK TABLE clearing_aggregates IN ROW EXCLUSIVE MODE;
    SELECT t.creating_xact INTO creator FROM ledger_transactions t
    WHERE t.insured_region = NEW.insured_region AND t.clearing_month = NEW.clearing_month AND t.tx_id = NEW.tx_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'ledger posting for transaction % of % in %: no such transaction', NEW.tx_id,
            NEW.insured_region, NEW.clearing_month USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF creator IS DISTINCT FROM pg_current_xact_id() THEN
        RAISE EXCEPTION 'ledger transaction % was committed earlier: it takes no new postings', NEW.tx_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF month_is_closed(NEW.clearing_month) THEN
        RAISE EXCEPTION 'month % is closed: ledger transaction % cannot post into it', NEW.clearing_month, NEW.tx_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER ledger_postings_guard BEFORE INSERT ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_posting_guard();
CREATE TRIGGER ledger_postings_balance AFTER INSERT ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_apply_posting();
CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_postings_no_truncate BEFORE TRUNCATE ON ledger_postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

CREATE TRIGGER ledger_transactions_stamp BEFORE INSERT ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION stamp_creating_xact();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transactions_no_truncate BEFORE TRUNCATE ON ledger_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- The claim a settlement, cancel or reversal journal books (was a foreign key to claims, whose key now holds the
-- settlement day the journal does not carry): the posting path changes the claim's status in the same database
-- transaction (store.mark_settled, mark_cancelled, mark_reversed, each asserting one row), and the claim is never
-- deleted (claims_move_aggregates refuses deleting a settled claim).
CREATE TRIGGER claims_move_aggregates AFTER INSERT OR UPDATE OR DELETE ON claims
    FOR EACH ROW EXECUTE FUNCTION claims_move_aggregates();
CREATE TRIGGER claims_no_truncate BEFORE TRUNCATE ON claims
    FOR EACH STATEMENT EXECUTE FUNCTION claims_refuse_truncate();
-- The TRUNCATE triggers of the partitions made above were made by ensure_month_partition with them.

-- ---------------------------------------------------------------------------------------------------------
-- Statement lines: a month's settlements, cancels and reversals, in the month they clear in
-- ---------------------------------------------------------------------------------------------------------

-- A statement (SPEC §7) lists the claims that settle in its month (clearing_month) and those undone in it
-- (undo_month). Claims are partitioned by settlement day, which neither month follows (a claim pending over
-- midnight, a cancel months later), so the statement read every claims partition. Each settlement and each undo
-- is now also written, by the claims trigger below and in the same database transaction, as a line of its
-- month's partition here: a statement and a year's totals read their months' partitions only. The lines are
-- the claim's fields when it settled, which the claims trigger of 0008 then keeps fixed; insert-only.
CREATE TABLE statement_lines (
    month           text NOT NULL,
    insured_region  text NOT NULL,
    settlement_id   uuid NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('settlement', 'cancel', 'reversal')),
    committed_at    timestamptz,
    treating_region text NOT NULL,
    hospital_code   text NOT NULL,
    admitted_on     date,
    discharged_on   date,
    total_fen       bigint,
    hifp_fen        bigint,
    hifmi_fen       bigint,
    maf_fen         bigint,
    fund_pay_fen    bigint,
    psn_pay_fen     bigint,
    PRIMARY KEY (insured_region, month, settlement_id, kind)
) PARTITION BY RANGE (month);
CREATE INDEX statement_lines_treating ON statement_lines (month, treating_region);

CREATE OR REPLACE FUNCTION month_partitioned_tables() RETURNS TABLE (parent text, by_day boolean)
LANGUAGE sql IMMUTABLE AS $$
    VALUES ('claims', true), ('ledger_transactions', false), ('ledger_postings', false), ('requests', false),
           ('statement_lines', false)
$$;

CREATE FUNCTION claims_write_statement_lines() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_settled boolean := TG_OP = 'UPDATE' AND OLD.clearing_month IS NOT NULL
                           AND OLD.status IN ('settled', 'cancelled', 'reversed');
    new_settled boolean := NEW.clearing_month IS NOT NULL AND NEW.status IN ('settled', 'cancelled', 'reversed');
    old_undone  boolean := old_settled AND OLD.status IN ('cancelled', 'reversed');
    new_undone  boolean := new_settled AND NEW.status IN ('cancelled', 'reversed');
BEGIN
    IF new_settled AND NOT old_settled THEN
        INSERT INTO statement_lines VALUES (NEW.clearing_month, NEW.insured_region, NEW.settlement_id, 'settlement',
            NEW.settled_at, NEW.treating_region, NEW.hospital_code, NEW.admitted_on, NEW.discharged_on, NEW.total_fen,
            NEW.hifp_fen, NEW.hifmi_fen, NEW.maf_fen, NEW.fund_pay_fen, NEW.psn_pay_fen);
    END IF;
    IF new_undone AND NOT old_undone THEN
        INSERT INTO statement_lines VALUES (NEW.undo_month, NEW.insured_region, NEW.settlement_id,
            CASE NEW.status WHEN 'cancelled' THEN 'cancel' ELSE 'reversal' END,
            coalesce(NEW.cancelled_at, NEW.reversed_at), NEW.treating_region, NEW.hospital_code, NEW.admitted_on,
            NEW.discharged_on, NEW.total_fen, NEW.hifp_fen, NEW.hifmi_fen, NEW.maf_fen, NEW.fund_pay_fen,
            NEW.psn_pay_fen);
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION statement_lines_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'statement lines are insert-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- Every month with partitions gets its statement lines' one, as does every month a claim clears or is undone in.
SELECT ensure_month_partition(month) FROM (
    SELECT month FROM month_partitions()
    UNION SELECT clearing_month FROM claims WHERE clearing_month IS NOT NULL
    UNION SELECT undo_month FROM claims WHERE undo_month IS NOT NULL) AS months
ORDER BY month;

-- The lines of the claims of before, as the statement query of before read them from the claims.
INSERT INTO statement_lines
SELECT c.clearing_month, c.insured_region, c.settlement_id, 'settlement', c.settled_at, c.treating_region,
       c.hospital_code, c.admitted_on, c.discharged_on, c.total_fen, c.hifp_fen, c.hifmi_fen, c.maf_fen,
       c.fund_pay_fen, c.psn_pay_fen
FROM claims c WHERE c.clearing_month IS NOT NULL AND c.status IN ('settled', 'cancelled', 'reversed')
UNION ALL
SELECT c.undo_month, c.insured_region, c.settlement_id, CASE c.status WHEN 'cancelled' THEN 'cancel' ELSE 'reversal' END,
       coalesce(c.cancelled_at, c.reversed_at), c.treating_region, c.hospital_code, c.admitted_on, c.discharged_on,
       c.total_fen, c.hifp_fen, c.hifmi_fen, c.maf_fen, c.fund_pay_fen, c.psn_pay_fen
FROM claims c WHERE c.clearing_month IS NOT NULL AND c.undo_month IS NOT NULL AND c.status IN ('cancelled', 'reversed');

CREATE TRIGGER claims_statement_lines AFTER INSERT OR UPDATE ON claims
    FOR EACH ROW EXECUTE FUNCTION claims_write_statement_lines();
CREATE TRIGGER statement_lines_by_claims_only BEFORE INSERT OR UPDATE OR DELETE ON statement_lines
    FOR EACH ROW WHEN (pg_trigger_depth() = 0) EXECUTE FUNCTION refuse_direct_write();
CREATE TRIGGER statement_lines_insert_only BEFORE UPDATE OR DELETE ON statement_lines
    FOR EACH ROW EXECUTE FUNCTION statement_lines_refuse_change();
CREATE TRIGGER statement_lines_no_truncate BEFORE TRUNCATE ON statement_lines
    FOR EACH STATEMENT EXECUTE FUNCTION statement_lines_refuse_change();

-- ---------------------------------------------------------------------------------------------------------
-- Archiving (归档) a closed month: its partitions detached, what they add up to kept
-- ---------------------------------------------------------------------------------------------------------

-- What a detached month's rows add up to, so the running balances and the month aggregates stay derivable from
-- what is attached plus these (SPEC §6; services/clearinghouse/audit.py adds them in): per account, the
-- month's postings; per cell, the moves of the claims of the month's settlement days (which may clear in a later
-- month). Insert-only, written by archive_month only.
CREATE TABLE archived_postings (
    clearing_month text NOT NULL,
    account        text NOT NULL,
    amount_fen     bigint NOT NULL,
    PRIMARY KEY (clearing_month, account)
);
CREATE TABLE archived_claim_moves (
    settlement_month text NOT NULL,
    clearing_month   text NOT NULL,
    insured_region   text NOT NULL,
    treating_region  text NOT NULL,
    settlements      integer NOT NULL,
    cancels          integer NOT NULL,
    fund_pay_fen     bigint NOT NULL,
    PRIMARY KEY (settlement_month, clearing_month, insured_region, treating_region)
);
CREATE TRIGGER archived_postings_insert_only BEFORE UPDATE OR DELETE ON archived_postings
    FOR EACH ROW EXECUTE FUNCTION statement_lines_refuse_change();
CREATE TRIGGER archived_claim_moves_insert_only BEFORE UPDATE OR DELETE ON archived_claim_moves
    FOR EACH ROW EXECUTE FUNCTION statement_lines_refuse_change();

-- Detach `month`'s partitions (the caller has checked the month may go: services/clearinghouse/partitions.py)
-- and return their names; they stay in the database as plain tables until the operator has dumped and dropped
-- them (docs/architecture.md "Archiving a month").
CREATE FUNCTION archive_month(month text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    item record;
BEGIN
    INSERT INTO archived_postings (clearing_month, account, amount_fen)
    SELECT p.clearing_month, p.account, sum(p.amount_fen) FROM ledger_postings p WHERE p.clearing_month = month
    GROUP BY 1, 2;
    INSERT INTO archived_claim_moves
    SELECT month, m.clearing_month, m.insured_region, m.treating_region, sum(m.settlements), sum(m.cancels),
           sum(m.fund_pay_fen)
    FROM (SELECT c.clearing_month, c.insured_region, c.treating_region, 1 AS settlements, 0 AS cancels, c.fund_pay_fen
          FROM claims c WHERE c.settlement_day >= (month || '-01')::date
           AND c.settlement_day < (month_after(month) || '-01')::date
           AND c.clearing_month IS NOT NULL AND c.status IN ('settled', 'cancelled', 'reversed')
          UNION ALL
          SELECT c.undo_month, c.insured_region, c.treating_region, 0, 1, -c.fund_pay_fen
          FROM claims c WHERE c.settlement_day >= (month || '-01')::date
           AND c.settlement_day < (month_after(month) || '-01')::date
           AND c.clearing_month IS NOT NULL AND c.status IN ('cancelled', 'reversed')) AS m
    GROUP BY 2, 3, 4;
    FOR item IN SELECT p.parent, p.partition FROM month_partitions() p WHERE p.month = archive_month.month
                ORDER BY p.parent LOOP
        EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', item.parent, item.partition);
        RETURN NEXT item.partition;
    END LOOP;
END;
$$;
