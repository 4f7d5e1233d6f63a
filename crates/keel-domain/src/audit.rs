//! Audit rows: who did what to which target. Written in the same transaction as the action.

use chrono::{DateTime, Utc};
use serde::Serialize;

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

/// An audit row as read back.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub metadata: serde_json::Value,
}
