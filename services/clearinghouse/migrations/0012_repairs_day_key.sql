-- Which day of a settlement a repair's `day` is; the repairs of before were by discharge day.
ALTER TABLE repairs ADD COLUMN day_key text NOT NULL DEFAULT 'discharge'
    CHECK (day_key IN ('settlement', 'discharge'));
ALTER TABLE repairs ALTER COLUMN day_key DROP DEFAULT;
