-- An archived (detached) month stays archived: archive_month records it, and no partition of it is made again —
-- a late claim of one of its settlement days is refused (FAILED_PRECONDITION naming the day) instead of landing in a
-- new, empty partition beside the archive, where a retry of one of the archived claims would not be found.
CREATE TABLE archived_months (
    month       text PRIMARY KEY,
    archived_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER archived_months_insert_only BEFORE UPDATE OR DELETE ON archived_months
    FOR EACH ROW EXECUTE FUNCTION statement_lines_refuse_change();

CREATE OR REPLACE FUNCTION ensure_month_partition_of(parent text, month text) RETURNS boolean LANGUAGE plpgsql AS $$
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
    IF EXISTS (SELECT 1 FROM archived_months a WHERE a.month = ensure_month_partition_of.month) THEN
        RAISE EXCEPTION 'month % is archived: nothing more is filed in it', month
            USING ERRCODE = 'object_not_in_prerequisite_state';
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


CREATE OR REPLACE FUNCTION archive_month(month text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    item record;
BEGIN
    INSERT INTO archived_months (month) VALUES (archive_month.month);
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

