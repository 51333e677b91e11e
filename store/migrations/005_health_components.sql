-- Health per (environment, component): the primary, its pooler and its
-- replica each have their own latest result and history. Existing rows are
-- the primary's. Each component has its own status words; a replica also
-- has a severity and its lag, kept in the history for the one-hour chart;
-- details holds figures only one component has (the pooler's pools).
ALTER TABLE health DROP CONSTRAINT health_pkey;
ALTER TABLE health DROP CONSTRAINT health_status_check;
ALTER TABLE health
    ADD COLUMN component   text NOT NULL DEFAULT 'primary',
    ADD COLUMN severity    text NOT NULL DEFAULT '',
    ADD COLUMN lag_bytes   bigint,
    ADD COLUMN lag_seconds double precision,
    ADD COLUMN details     jsonb NOT NULL DEFAULT '{}';
ALTER TABLE health ALTER COLUMN component DROP DEFAULT;
ALTER TABLE health ADD PRIMARY KEY (environment_id, component);
ALTER TABLE health ADD CONSTRAINT health_status_check CHECK (
       (component = 'primary' AND status IN ('running', 'stopped', 'error'))
    OR (component = 'pooler'  AND status IN ('running', 'stopped', 'error', 'disabled'))
    OR (component = 'replica' AND status IN ('online', 'lagging', 'offline', 'error')));
ALTER TABLE health ADD CONSTRAINT health_severity_check CHECK (severity IN ('', 'ok', 'warning', 'critical'));

-- The history keeps what each check observed, with its lag.
ALTER TABLE health_history
    ADD COLUMN component   text NOT NULL DEFAULT 'primary',
    ADD COLUMN severity    text NOT NULL DEFAULT '',
    ADD COLUMN lag_bytes   bigint,
    ADD COLUMN lag_seconds double precision;
ALTER TABLE health_history ALTER COLUMN component DROP DEFAULT;
DROP INDEX health_history_env_idx;
CREATE INDEX health_history_env_idx ON health_history (environment_id, component, checked_at DESC);

-- The monitoring role (member of pg_monitor) that probes log in as, made by
-- the deploy; empty until an environment is deployed or redeployed with it.
ALTER TABLE environments
    ADD COLUMN monitor_user     text NOT NULL DEFAULT '',
    ADD COLUMN monitor_password bytea;
