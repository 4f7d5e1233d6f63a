-- Events for the app: an outbox written in the transaction of the change each event describes,
-- delivered in order per user; and per user, the last sequence number and the entitlements the
-- app was last told of.
CREATE TABLE app_events (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL,
    sequence         BIGINT NOT NULL,
    event_type       TEXT NOT NULL,
    data             TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    delivered_at     TIMESTAMPTZ,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    leased_until     TIMESTAMPTZ,
    last_error       TEXT,
    UNIQUE (user_id, sequence)
);
CREATE INDEX app_events_due_idx ON app_events (next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX app_events_delivered_idx ON app_events (delivered_at) WHERE delivered_at IS NOT NULL;

CREATE TABLE app_event_users (
    user_id       TEXT PRIMARY KEY,
    sequence      BIGINT NOT NULL,
    entitlements  TEXT NOT NULL,
    check_at      TIMESTAMPTZ
);
CREATE INDEX app_event_users_check_idx ON app_event_users (check_at);
