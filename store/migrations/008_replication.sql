-- The replication role each environment's replica logs in to its primary
-- as, with its sealed password (made by the redeploy that prepares the
-- primary for a replica).
ALTER TABLE environments
    ADD COLUMN replication_user text NOT NULL DEFAULT '',
    ADD COLUMN replication_password bytea;
