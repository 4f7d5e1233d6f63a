-- Billing: provider events (raw payload sealed), the subscriptions they describe, links from
-- provider-side ids to users, and manual entitlement grants and revocations.
CREATE TABLE billing_events (
    provider     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    user_id      TEXT,
    product_id   TEXT,
    environment  TEXT NOT NULL,
    event_at     TIMESTAMPTZ NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL,
    outcome      TEXT NOT NULL,
    key_id       TEXT,
    payload      BYTEA,
    PRIMARY KEY (provider, event_id)
);
CREATE INDEX billing_events_user_idx ON billing_events (user_id, event_at);
CREATE INDEX billing_events_received_idx ON billing_events (received_at);
CREATE INDEX billing_events_key_idx ON billing_events (key_id);

CREATE TABLE billing_links (
    provider     TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    PRIMARY KEY (provider, external_id)
);
CREATE INDEX billing_links_user_idx ON billing_links (user_id);

CREATE TABLE billing_transfers (
    provider   TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    from_user  TEXT NOT NULL,
    to_user    TEXT NOT NULL,
    event_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, event_id, from_user)
);
CREATE INDEX billing_transfers_from_idx ON billing_transfers (provider, from_user, event_at);

CREATE TABLE subscriptions (
    provider      TEXT NOT NULL,
    key           TEXT NOT NULL,
    user_id       TEXT,
    subject       TEXT NOT NULL,
    environment   TEXT NOT NULL,
    platform      TEXT NOT NULL,
    product_id    TEXT NOT NULL,
    entitlements  TEXT NOT NULL,
    grants        BOOLEAN NOT NULL,
    expires_at    TIMESTAMPTZ,
    grace_until   TIMESTAMPTZ,
    grace_at      TIMESTAMPTZ,
    reset_at      TIMESTAMPTZ,
    paid_through  TIMESTAMPTZ,
    will_renew    BOOLEAN NOT NULL,
    state_rank    INTEGER NOT NULL,
    state_at      TIMESTAMPTZ NOT NULL,
    state_event   TEXT NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, key)
);
CREATE INDEX subscriptions_user_idx ON subscriptions (user_id);
CREATE INDEX subscriptions_subject_idx ON subscriptions (provider, subject);

CREATE TABLE entitlement_overrides (
    user_id      TEXT NOT NULL,
    entitlement  TEXT NOT NULL,
    revoked      BOOLEAN NOT NULL,
    expires_at   TIMESTAMPTZ,
    reason       TEXT NOT NULL,
    actor        TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, entitlement)
);
