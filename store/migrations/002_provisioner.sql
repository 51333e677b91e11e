-- Each environment's own PostgreSQL: where it listens, its database and role
-- (passwords sealed with AES-GCM), jobs that change it, and its health.
ALTER TABLE environments
    ADD COLUMN port           int UNIQUE,
    ADD COLUMN db_name        text NOT NULL DEFAULT '',
    ADD COLUMN db_user        text NOT NULL DEFAULT '',
    ADD COLUMN db_password    bytea,
    ADD COLUMN admin_password bytea,
    ADD COLUMN deployed_at    timestamptz;

CREATE TABLE jobs (
    id             bigserial PRIMARY KEY,
    environment_id bigint REFERENCES environments (id) ON DELETE SET NULL,
    env_name       text NOT NULL,
    kind           text NOT NULL,
    state          text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    step           text NOT NULL DEFAULT '',
    progress       int NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    error          text NOT NULL DEFAULT '',
    requested_by   text NOT NULL DEFAULT '',
    attempts       int NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- One job at a time per environment: a second active job is refused.
CREATE UNIQUE INDEX jobs_one_active_per_env ON jobs (env_name) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_queued_idx ON jobs (created_at) WHERE state = 'queued';
CREATE INDEX jobs_env_idx ON jobs (env_name, created_at DESC);

CREATE TABLE job_logs (
    id     bigserial PRIMARY KEY,
    job_id bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    at     timestamptz NOT NULL DEFAULT now(),
    line   text NOT NULL
);
CREATE INDEX job_logs_job_idx ON job_logs (job_id, id);

-- The latest health result per environment (written by the monitor).
CREATE TABLE health (
    environment_id  bigint PRIMARY KEY REFERENCES environments (id) ON DELETE CASCADE,
    status          text NOT NULL CHECK (status IN ('running', 'stopped', 'error')),
    reason          text NOT NULL DEFAULT '',
    checked_at      timestamptz NOT NULL,
    duration_ms     int NOT NULL DEFAULT 0,
    stale           boolean NOT NULL DEFAULT false,
    figures_at      timestamptz,
    pg_version      text NOT NULL DEFAULT '',
    db_size_bytes   bigint NOT NULL DEFAULT 0,
    connections     int NOT NULL DEFAULT 0,
    max_connections int NOT NULL DEFAULT 0,
    server_started_at timestamptz
);

-- A short history of checks, pruned after 24 hours.
CREATE TABLE health_history (
    id             bigserial PRIMARY KEY,
    environment_id bigint NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    checked_at     timestamptz NOT NULL,
    status         text NOT NULL,
    reason         text NOT NULL DEFAULT '',
    duration_ms    int NOT NULL DEFAULT 0
);
CREATE INDEX health_history_env_idx ON health_history (environment_id, checked_at DESC);
CREATE INDEX health_history_at_idx ON health_history (checked_at);
