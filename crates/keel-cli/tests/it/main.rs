//! The `keel` command's integration tests, in one binary: the built binary run as separate
//! processes. Run one area with `cargo test -p keel-cli --test it <module>`.

// Shared set-up, used by the test modules below.
mod common;
mod deploy_support;
mod gateway_support;
mod pooler_support;

// Tests, one module per area.
mod backup_cli;
mod bench_http;
mod bench_http_jobs;
mod config_check;
mod db_copy_cli;
mod demo;
mod deploy_commands;
mod deploy_files;
mod deploy_monitoring;
mod dev_webhook;
mod dot_env;
mod example_apps;
mod gateway;
mod gateway_docs;
mod gateway_failures;
mod gateway_pool;
mod gateway_streams;
mod http_jobs_process;
mod jobs_process;
mod logs;
mod migrate_cli;
mod multi_process;
mod pooler;
mod queue_cli;
mod queue_cli_support;
mod queue_guards;
mod quick_start;
mod runbooks;
mod sentry;
mod shutdown;
mod storage_cli;
mod webhooks_cli;
