-- The organisation a subscription is held in (a Whop company), for checking that a member
-- belongs to the company a request names.
ALTER TABLE subscriptions ADD COLUMN tenant_id TEXT;
CREATE INDEX subscriptions_tenant_idx ON subscriptions (tenant_id, user_id);
