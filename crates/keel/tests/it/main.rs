//! The library's integration tests, in one binary: the app over real HTTP (`TestApp`) and the
//! store on each engine. Run one area with `cargo test -p keel --test it <module>`.

// Shared set-up, used by the test modules below.
mod admin_support;
mod auth_support;
mod billing_support;
mod console_support;
mod http_jobs_support;
mod jobs_support;
mod openapi_support;
mod rate_limit_support;

// Tests, one module per area.
mod admin_api;
mod app_events;
mod app_library;
mod app_migrations;
mod auth;
mod auth_jwks;
mod auth_whop;
mod backup;
mod billing_api;
mod billing_delivery;
mod billing_events;
mod billing_smoke;
mod billing_whop;
mod billing_whop_parse;
mod claim_cursor;
mod config;
mod console;
mod console_browser;
mod console_browser_ops;
mod console_ops;
mod db_copy;
mod db_outage;
mod deep_health;
mod edge_input;
mod health;
mod http_edge;
mod http_jobs;
mod http_jobs_signature;
mod jobs;
mod jobs_api;
mod jobs_arg_filter;
mod jobs_kinds;
mod jobs_worker;
mod metrics;
mod metrics_docs;
mod migrations;
mod openapi;
mod privacy;
mod rate_limit;
mod rate_limit_redis;
mod rate_limit_redis_tls;
mod schedule_cron;
mod schedules;
mod schedules_missed;
mod schedules_timezone;
mod sentry;
mod storage;
