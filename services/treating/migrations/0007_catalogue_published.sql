-- A catalogue version becomes current only once the clearing house has it (issue 9, item 14): until then a
-- claim classified with it would be refused there. Import inserts the version unpublished, publishes it to the
-- clearing house, then stamps `published_at`; the current version is the newest published one.
ALTER TABLE catalogue_versions ADD COLUMN published_at timestamptz;
UPDATE catalogue_versions SET published_at = imported_at;
CREATE INDEX catalogue_versions_published ON catalogue_versions (version) WHERE published_at IS NOT NULL;
