-- The order in which the agency recorded settlements and undid them (policy what-if, SPEC §12.5): a stay is
-- adjudicated on the accumulators its member's earlier recordings left, and a cancel (撤销) or reversal (冲正)
-- takes its delta back where it happened. Both take the member's accumulator lock first, so numbers drawn from one
-- sequence while the lock is held order every event of a member exactly (settled_at is the transaction's start:
-- a batch shares one, and a transaction can wait for the lock behind a later one).
CREATE SEQUENCE settlement_events AS bigint;
ALTER TABLE settlements ADD COLUMN sequence bigint, ADD COLUMN undone_sequence bigint;
-- Rows recorded before this migration: the nearest order known (the time, then the id), and their undoing after
-- every recording, by its time.
UPDATE settlements s SET sequence = o.n
FROM (SELECT settlement_id, row_number() OVER (ORDER BY settled_at, settlement_id) AS n FROM settlements) o
WHERE s.settlement_id = o.settlement_id;
UPDATE settlements s SET undone_sequence = (SELECT count(*) FROM settlements) + o.n
FROM (SELECT settlement_id, row_number() OVER (ORDER BY coalesce(cancelled_at, reversed_at), settlement_id) AS n
      FROM settlements WHERE status <> 'settled') o
WHERE s.settlement_id = o.settlement_id;
SELECT setval('settlement_events', 2 * (SELECT count(*) FROM settlements) + 1, false);
ALTER TABLE settlements ALTER COLUMN sequence SET DEFAULT nextval('settlement_events'),
    ALTER COLUMN sequence SET NOT NULL,
    ADD CONSTRAINT settlements_undone_sequence CHECK ((status = 'settled') = (undone_sequence IS NULL));
ALTER SEQUENCE settlement_events OWNED BY settlements.sequence;
CREATE UNIQUE INDEX settlements_sequence ON settlements (sequence);
