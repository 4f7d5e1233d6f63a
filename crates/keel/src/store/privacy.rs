//! Rows for privacy and retention: marking users for erasure, erasing them, dropping old raw
//! payloads and old audit detail, and reading everything stored about one user.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::tx::Tx;
use super::{postgres, sqlite, StoreError};

/// Rows removed or pseudonymized per table by one erasure.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Erased {
    pub rows: BTreeMap<String, u64>,
}

/// Everything stored about one user, per table; event payloads still sealed.
#[derive(Debug, Clone, Default)]
pub struct ExportRows {
    pub user: Option<serde_json::Value>,
    pub subscriptions: Vec<serde_json::Value>,
    pub events: Vec<(serde_json::Value, Option<Vec<u8>>)>,
    pub links: Vec<serde_json::Value>,
    pub overrides: Vec<serde_json::Value>,
    pub audit: Vec<serde_json::Value>,
    pub jobs: Vec<serde_json::Value>,
}

macro_rules! on_tx {
    ($tx:expr, $f:ident $(, $arg:expr)*) => {
        match $tx {
            Tx::Sqlite(tx) => sqlite::privacy::$f(&mut *tx $(, $arg)*).await,
            Tx::Postgres(tx) => postgres::privacy::$f(&mut *tx $(, $arg)*).await,
        }
    };
}

impl Tx {
    /// Marks the user for erasure (creating the row if the user was never seen).
    pub async fn mark_user_deleted(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Ok(on_tx!(self, mark_deleted, id, now)?)
    }

    /// Users marked for erasure, oldest mark first.
    pub async fn users_marked_deleted(&mut self, limit: i64) -> Result<Vec<String>, StoreError> {
        Ok(on_tx!(self, marked, limit)?)
    }

    /// Deletes every row about the user and replaces the id by `hash` in audit rows and flags.
    pub async fn erase_user(&mut self, id: &str, hash: &str) -> Result<Erased, StoreError> {
        Ok(on_tx!(self, erase, id, hash)?)
    }

    /// Drops sealed raw payloads received before `before`; the projection stays.
    pub async fn drop_raw_payloads(&mut self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(on_tx!(self, drop_payloads, before)?)
    }

    /// Empties the metadata of audit rows written before `before`.
    pub async fn expire_audit_detail(&mut self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(on_tx!(self, expire_audit, before)?)
    }

    /// Everything stored about the user.
    pub async fn export_user(&mut self, id: &str) -> Result<ExportRows, StoreError> {
        Ok(on_tx!(self, export, id)?)
    }
}
