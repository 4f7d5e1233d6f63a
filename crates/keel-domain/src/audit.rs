//! Audit rows: who did what to which target. Written in the same transaction as the action.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// One admin action, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub metadata: serde_json::Value,
}

impl AuditEntry {
    pub fn new(
        actor: &str,
        action: &str,
        target: Option<String>,
        metadata: serde_json::Value,
    ) -> Self {
        Self {
            actor: actor.to_string(),
            action: action.to_string(),
            target,
            metadata,
        }
    }
}

// An audit row as read back. (A plain comment: a doc comment here would become the schema's
// description.)
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditRow {
    pub at: DateTime<Utc>,
    /// `admin-token`, `user:ID`, `cli`, `scheduler-trigger` …
    pub actor: String,
    /// e.g. `flag.set`, `job.enqueue`.
    pub action: String,
    /// e.g. `flag:workers`.
    #[schema(required = true)]
    pub target: Option<String>,
    /// What the action changed (JSON).
    pub metadata: serde_json::Value,
}
