-- Importing the text of an earlier version that is not the newest makes it a new version: the region went
-- back, and the newest import is in force (docs/architecture.md, "Decisions"). One text may therefore be
-- several versions. A version remembers the request that made it, so a retry after a crash between the
-- commit and the reply finds its own version instead of making another.
ALTER TABLE catalogue_versions DROP CONSTRAINT catalogue_versions_sha256_key;
ALTER TABLE catalogue_versions ADD COLUMN request_id uuid UNIQUE;
