-- Signed-in sessions of the operations console: only a hash of each session id is stored.
CREATE TABLE console_sessions (
    id_hash     TEXT PRIMARY KEY,
    actor       TEXT NOT NULL,
    read_only   BOOLEAN NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);
