//! A user as Keel records them: created on first sight of a verified token.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A user row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRow {
    pub id: String,
    pub tenant_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}
