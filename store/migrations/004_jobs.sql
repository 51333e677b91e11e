-- Jobs carry typed parameters and run in lanes. A lane is its own queue of
-- one active job per environment ('ops': the operator's actions on the
-- environment; 'backup': backups), so a scheduled backup never makes an
-- operator's action fail as busy, nor the other way round. Lanes that touch
-- the same primary do not run at once: ClaimJob leaves a queued job waiting
-- while another job of its environment runs.
ALTER TABLE jobs
    ADD COLUMN lane   text  NOT NULL DEFAULT 'ops' CHECK (lane IN ('ops', 'backup')),
    ADD COLUMN params jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(params) = 'object');

DROP INDEX jobs_one_active_per_env;
CREATE UNIQUE INDEX jobs_one_active_per_env_lane ON jobs (env_name, lane) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_running_env_idx ON jobs (env_name) WHERE state = 'running';
