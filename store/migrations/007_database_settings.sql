-- What the operator saved on Settings → Database, and what the last deploy
-- or redeploy applied: kept apart, so that saving never touches the running
-- database and the page can list what waits for a redeploy. No row: nothing
-- saved yet (the recommendation, PgBouncer off).
CREATE TABLE database_settings (
    environment_id bigint PRIMARY KEY REFERENCES environments (id) ON DELETE CASCADE,
    -- Overrides of the recommended postgresql.conf values: {"work_mem": "8MB"}.
    parameters     jsonb NOT NULL DEFAULT '{}',
    -- {"enabled", "pool_size", "pool_mode", "max_client_conn"}; {} = defaults.
    pgbouncer      jsonb NOT NULL DEFAULT '{}',
    read_replica   boolean NOT NULL DEFAULT false,
    -- The settings the last successful deploy or redeploy applied (the
    -- provisioner's snapshot); NULL before the first one that recorded it.
    applied        jsonb,
    applied_at     timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
