DROP TABLE entitlement_overrides;
DROP TABLE subscriptions;
DROP TABLE billing_transfers;
DROP TABLE billing_links;
DROP TABLE billing_events;
