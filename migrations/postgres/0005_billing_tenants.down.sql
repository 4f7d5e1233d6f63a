DROP INDEX subscriptions_tenant_idx;
ALTER TABLE subscriptions DROP COLUMN tenant_id;
