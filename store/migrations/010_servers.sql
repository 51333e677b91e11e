-- Servers: where environments' instances run. The built-in one is this
-- host's runtime as PGDECK_RUNTIME configures it (processes, or the Docker
-- engine of PGDECK_DOCKER_HOST); the others are Docker hosts an owner or
-- admin registered. TLS client material is sealed like passwords. A
-- capacity of 0 is not counted (no limit). status, reason and checked_at
-- are the monitor's.
CREATE TABLE servers (
    name          text PRIMARY KEY,
    runtime       text NOT NULL CHECK (runtime IN ('local', 'docker')),
    docker_host   text NOT NULL DEFAULT '',
    tls_ca        bytea,
    tls_cert      bytea,
    tls_key       bytea,
    memory_bytes  bigint NOT NULL DEFAULT 0 CHECK (memory_bytes >= 0),
    cpus          integer NOT NULL DEFAULT 0 CHECK (cpus >= 0),
    storage_bytes bigint NOT NULL DEFAULT 0 CHECK (storage_bytes >= 0),
    builtin       boolean NOT NULL DEFAULT false,
    status        text NOT NULL DEFAULT 'unknown' CHECK (status IN ('unknown', 'online', 'offline')),
    reason        text NOT NULL DEFAULT '',
    checked_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- At most one built-in server. It exists from the start; pgdeck makes it
-- what PGDECK_RUNTIME says at each start.
CREATE UNIQUE INDEX servers_builtin_key ON servers (builtin) WHERE builtin;
INSERT INTO servers (name, runtime, builtin) VALUES ('local', 'local', true);

-- The server an environment lives on, chosen when it is created. Those
-- made before servers existed live on the built-in one. A server with
-- environments cannot be deleted.
ALTER TABLE environments ADD COLUMN server text NOT NULL DEFAULT 'local' REFERENCES servers (name) ON DELETE RESTRICT;
CREATE INDEX environments_server_idx ON environments (server);
