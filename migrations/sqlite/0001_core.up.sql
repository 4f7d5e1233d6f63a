-- Users seen through verified tokens, and the audit trail of admin actions.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    deleted_at    INTEGER
);
CREATE INDEX users_tenant_idx ON users (tenant_id);

CREATE TABLE audit_log (
    id        TEXT PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT,
    metadata  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_target_idx ON audit_log (target, at);
