-- A closed clearing month and its frozen result (SPEC §7). Closing again returns `response`.
CREATE TABLE month_closings (
    month      text PRIMARY KEY,
    closed_at  timestamptz NOT NULL DEFAULT now(),
    response   bytea NOT NULL
);
