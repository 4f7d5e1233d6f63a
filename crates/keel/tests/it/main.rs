//! The library's integration tests, in one binary: the app over real HTTP (`TestApp`) and the
//! store on each engine. Run one area with `cargo test -p keel --test it <module>`.

// Shared set-up, used by the test modules below.
mod admin_support;
mod auth_support;
mod billing_support;
mod console_support;
mod jobs_support;
mod openapi_support;
mod rate_limit_support;

// Tests, one module per area.
mod admin_api;
mod app_library;
mod app_migrations;
mod auth;
mod auth_jwks;
mod backup;
mod billing_api;
mod billing_delivery;
mod billing_events;
mod billing_smoke;
mod claim_cursor;
mod config;
mod console;
mod console_browser;
mod db_copy;
mod deep_health;
mod health;
mod http_edge;
mod jobs;
mod jobs_worker;
mod metrics;
mod migrations;
mod openapi;
mod privacy;
mod rate_limit;
mod rate_limit_redis;
mod schedules;
mod schedules_missed;
mod sentry;
