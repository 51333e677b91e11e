-- Account lifecycle, token expiry, and an audit log that cannot be stuffed.
ALTER TABLE users
    ADD COLUMN disabled_at timestamptz,
    -- Sessions signed in before this moment are ended (an owner's "sign out everywhere").
    ADD COLUMN sessions_valid_after timestamptz NOT NULL DEFAULT 'epoch';

ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;

ALTER TABLE audit_log
    -- The address of the connection, beside remote_addr (the client as the trusted proxy saw it).
    ADD COLUMN peer_addr text NOT NULL DEFAULT '',
    -- How many identical entries this one stands for (rate-limited logins are coalesced).
    ADD COLUMN repeats int NOT NULL DEFAULT 1,
    ADD COLUMN last_at timestamptz;
CREATE INDEX audit_log_action_idx ON audit_log (action, at DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (lower(actor), at DESC);
