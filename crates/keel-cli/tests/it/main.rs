//! The `keel` command's integration tests, in one binary: the built binary run as separate
//! processes. Run one area with `cargo test -p keel-cli --test it <module>`.

// Shared set-up, used by the test modules below.
mod common;
mod deploy_support;

// Tests, one module per area.
mod backup_cli;
mod bench_http;
mod config_check;
mod db_copy_cli;
mod deploy_commands;
mod deploy_files;
mod dev_webhook;
mod dot_env;
mod example_apps;
mod jobs_process;
mod migrate_cli;
mod multi_process;
mod queue_cli;
mod queue_guards;
mod quick_start;
mod runbooks;
mod webhooks_cli;
