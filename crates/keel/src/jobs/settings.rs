//! The jobs section of the settings: the kill switches' defaults, the worker's concurrency and
//! lease, retention, and the per-queue overrides of `keel.toml`.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone)]
pub struct JobSettings {
    pub scheduler_enabled: bool,
    pub worker_enabled: bool,
    pub enqueue_enabled: bool,
    pub concurrency: u32,
    pub lease: Duration,
    pub retention: Duration,
    /// How long sealed raw webhook payloads are kept.
    pub raw_event_retention: Duration,
    /// How long audit rows keep their metadata.
    pub audit_retention: Duration,
    pub poll_only: bool,
    pub scheduler_secret_key: Option<SecretString>,
    /// The HTTP kinds of `keel.toml`, checked and resolved.
    pub http_kinds: BTreeMap<String, super::HttpKind>,
}

/// One `[queues.NAME]` table of `keel.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    pub concurrency: Option<u32>,
}
