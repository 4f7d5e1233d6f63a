//! Kill switches as stored.

use chrono::{DateTime, Utc};

/// One flag as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FlagRow {
    pub name: String,
    pub enabled: bool,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}
