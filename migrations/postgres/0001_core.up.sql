-- Users seen through verified tokens, and the audit trail of admin actions.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ
);
CREATE INDEX users_tenant_idx ON users (tenant_id);

CREATE TABLE audit_log (
    id        UUID PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT,
    metadata  JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_target_idx ON audit_log (target, at);
