-- Backups: one archive each, in the backup folder (PGDECK_BACKUP_DIR) at
-- file, a path relative to it. A backup outlives its environment (a
-- pre-delete backup is what is left of a deleted one): env_id is then NULL
-- and env_name says whose it was.
CREATE TABLE backups (
    id           bigserial PRIMARY KEY,
    env_id       bigint REFERENCES environments (id) ON DELETE SET NULL,
    env_name     text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('manual', 'scheduled', 'pre-restore', 'pre-delete', 'imported')),
    format       text NOT NULL CHECK (format IN ('zip', 'dump')),
    state        text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'succeeded', 'failed')),
    file         text NOT NULL,
    size_bytes   bigint NOT NULL DEFAULT 0,
    sha256       text NOT NULL DEFAULT '',
    -- manifest.json as written (or, for an import, as read).
    manifest     jsonb,
    error        text NOT NULL DEFAULT '',
    job_id       bigint REFERENCES jobs (id) ON DELETE SET NULL,
    requested_by text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    verified_at  timestamptz,
    verify_error text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX backups_file_key ON backups (file);
CREATE INDEX backups_env_idx ON backups (env_name, created_at DESC);

-- The daily schedule of each environment's backups and how many the
-- retention keeps of each period. No row: the defaults, disabled.
CREATE TABLE backup_schedules (
    environment_id bigint PRIMARY KEY REFERENCES environments (id) ON DELETE CASCADE,
    enabled        boolean NOT NULL DEFAULT false,
    -- HH:MM, UTC.
    time_of_day    text NOT NULL DEFAULT '02:00' CHECK (time_of_day ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'),
    keep_daily     int NOT NULL DEFAULT 7 CHECK (keep_daily BETWEEN 0 AND 366),
    keep_weekly    int NOT NULL DEFAULT 4 CHECK (keep_weekly BETWEEN 0 AND 520),
    keep_monthly   int NOT NULL DEFAULT 12 CHECK (keep_monthly BETWEEN 0 AND 1200),
    -- The UTC day the scheduler last queued a backup for: at most one a day.
    last_queued_on date,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Scheduled backups wait in a lane of their own: an operator's backup never
-- finds the lane busy with a scheduled one, nor the other way round.
ALTER TABLE jobs DROP CONSTRAINT jobs_lane_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_lane_check CHECK (lane IN ('ops', 'backup', 'schedule'));
