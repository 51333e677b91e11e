-- One record per instance of an environment (its primary, its pooler, its
-- replica, the replica's pooler): where pgdeck placed it. It replaces
-- environments.port; existing environments keep their primary's port.
CREATE TABLE instances (
    environment_id bigint NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    role           text NOT NULL CHECK (role IN ('primary', 'pooler', 'replica', 'replica_pooler')),
    port           int UNIQUE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment_id, role)
);

INSERT INTO instances (environment_id, role, port)
SELECT id, 'primary', port FROM environments WHERE port IS NOT NULL;

ALTER TABLE environments DROP COLUMN port;
