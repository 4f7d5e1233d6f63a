//! Rows for privacy and retention: marking users for erasure, erasing them, dropping old raw
//! payloads and old audit detail, and reading everything stored about one user.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::sql::{map_rows, on_tx, Cols, Ts};
use super::{StoreError, Tx};

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

/// The LIKE pattern matching `id` as a JSON string inside a document.
fn json_pattern(id: &str) -> String {
    let quoted = serde_json::to_string(id).unwrap_or_default();
    let escaped = quoted
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// What erasure deletes, per table; `$1` is the user id, `$2` its JSON-string LIKE pattern.
const ERASE: [(&str, &str); 8] = [
    (
        "subscriptions",
        "DELETE FROM subscriptions WHERE user_id = $1 OR subject = $1",
    ),
    (
        "billing_events",
        "DELETE FROM billing_events WHERE user_id = $1",
    ),
    (
        "billing_links",
        "DELETE FROM billing_links WHERE user_id = $1 OR external_id = $1",
    ),
    (
        "billing_transfers",
        "DELETE FROM billing_transfers WHERE from_user = $1 OR to_user = $1",
    ),
    (
        "entitlement_overrides",
        "DELETE FROM entitlement_overrides WHERE user_id = $1",
    ),
    (
        "jobs",
        "DELETE FROM jobs WHERE state <> 'running'
           AND (CAST(args AS TEXT) LIKE $2 ESCAPE '\\' OR unique_key LIKE '%:' || $1)",
    ),
    ("users", "DELETE FROM users WHERE id = $1"),
    (
        "storage_objects",
        "DELETE FROM storage_objects WHERE user_id = $1",
    ),
];

const PSEUDONYMIZE_AUDIT: &str = "UPDATE audit_log SET
        target = CASE WHEN target = $1 THEN $2 ELSE target END,
        actor = CASE WHEN actor = 'user:' || $1 THEN 'user:' || $2 ELSE actor END
     WHERE target = $1 OR actor = 'user:' || $1";

const PSEUDONYMIZE_FLAGS: &str =
    "UPDATE flags SET updated_by = 'user:' || $2 WHERE updated_by = 'user:' || $1";

const EXPORT_USER: &str =
    "SELECT id, tenant_id, created_at, last_seen_at, deleted_at FROM users WHERE id = $1";
const EXPORT_SUBSCRIPTIONS: &str = "SELECT provider, key, environment, platform, product_id,
        entitlements, grants, expires_at, grace_until, paid_through, will_renew, state_at, updated_at
     FROM subscriptions WHERE user_id = $1 OR subject = $1 ORDER BY provider, key";
const EXPORT_EVENTS: &str = "SELECT provider, event_id, event_type, product_id, environment,
        event_at, received_at, outcome, payload
     FROM billing_events WHERE user_id = $1 ORDER BY event_at, event_id";
const EXPORT_LINKS: &str = "SELECT provider, external_id FROM billing_links WHERE user_id = $1
     ORDER BY provider, external_id";
const EXPORT_OVERRIDES: &str = "SELECT entitlement, revoked, expires_at, reason, created_at
     FROM entitlement_overrides WHERE user_id = $1 ORDER BY entitlement";
const EXPORT_AUDIT: &str = "SELECT at, actor, action, target, metadata FROM audit_log
     WHERE target = $1 OR actor = 'user:' || $1 ORDER BY at, id";
const EXPORT_JOBS: &str = "SELECT id, queue, kind, state, args, created_at FROM jobs
     WHERE CAST(args AS TEXT) LIKE $2 ESCAPE '\\' OR unique_key LIKE '%:' || $1 ORDER BY id";

fn user_json(r: &impl Cols) -> Result<serde_json::Value, sqlx::Error> {
    Ok(serde_json::json!({
        "id": r.text("id")?,
        "tenant_id": r.text_opt("tenant_id")?,
        "created_at": r.at("created_at")?,
        "last_seen_at": r.at("last_seen_at")?,
        "deleted_at": r.at_opt("deleted_at")?,
    }))
}

fn subscription_json(r: &impl Cols) -> Result<serde_json::Value, sqlx::Error> {
    let entitlements = r.text("entitlements")?;
    Ok(serde_json::json!({
        "provider": r.text("provider")?,
        "key": r.text("key")?,
        "environment": r.text("environment")?,
        "platform": r.text("platform")?,
        "product_id": r.text("product_id")?,
        "entitlements": serde_json::from_str::<serde_json::Value>(&entitlements).unwrap_or_default(),
        "grants": r.flag("grants")?,
        "expires_at": r.at_opt("expires_at")?,
        "grace_until": r.at_opt("grace_until")?,
        "paid_through": r.at_opt("paid_through")?,
        "will_renew": r.flag("will_renew")?,
        "state_at": r.at("state_at")?,
        "updated_at": r.at("updated_at")?,
    }))
}

fn event_json(r: &impl Cols) -> Result<(serde_json::Value, Option<Vec<u8>>), sqlx::Error> {
    Ok((
        serde_json::json!({
            "provider": r.text("provider")?,
            "event_id": r.text("event_id")?,
            "type": r.text("event_type")?,
            "product_id": r.text_opt("product_id")?,
            "environment": r.text("environment")?,
            "event_at": r.at("event_at")?,
            "received_at": r.at("received_at")?,
            "outcome": r.text("outcome")?,
        }),
        r.bytes_opt("payload")?,
    ))
}

fn link_json(r: &impl Cols) -> Result<serde_json::Value, sqlx::Error> {
    Ok(serde_json::json!({
        "provider": r.text("provider")?,
        "external_id": r.text("external_id")?,
    }))
}

fn override_json(r: &impl Cols) -> Result<serde_json::Value, sqlx::Error> {
    Ok(serde_json::json!({
        "entitlement": r.text("entitlement")?,
        "revoked": r.flag("revoked")?,
        "expires_at": r.at_opt("expires_at")?,
        "reason": r.text("reason")?,
        "created_at": r.at("created_at")?,
    }))
}

fn audit_json(r: &impl Cols) -> Result<serde_json::Value, sqlx::Error> {
    Ok(serde_json::json!({
        "at": r.at("at")?,
        "actor": r.text("actor")?,
        "action": r.text("action")?,
        "target": r.text_opt("target")?,
        "metadata": r.json("metadata").unwrap_or_default(),
    }))
}

fn job_json(r: &impl Cols) -> Result<serde_json::Value, sqlx::Error> {
    Ok(serde_json::json!({
        "id": r.int("id")?,
        "queue": r.text("queue")?,
        "kind": r.text("kind")?,
        "state": r.text("state")?,
        "args": r.json("args").unwrap_or_default(),
        "created_at": r.at("created_at")?,
    }))
}

impl Tx {
    /// Marks the user for erasure (creating the row if the user was never seen).
    pub async fn mark_user_deleted(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let q = "INSERT INTO users (id, created_at, last_seen_at, deleted_at) VALUES ($1, $2, $2, $2)
                 ON CONFLICT (id) DO UPDATE SET deleted_at = COALESCE(users.deleted_at, excluded.deleted_at)";
        on_tx!(self, |c| {
            sqlx::query(q)
                .bind(id)
                .bind(Ts(now))
                .execute(&mut **c)
                .await?;
        });
        Ok(())
    }

    /// Users marked for erasure, oldest mark first.
    pub async fn users_marked_deleted(&mut self, limit: i64) -> Result<Vec<String>, StoreError> {
        let q =
            "SELECT id FROM users WHERE deleted_at IS NOT NULL ORDER BY deleted_at, id LIMIT $1";
        Ok(on_tx!(self, |c| map_rows(
            &sqlx::query(q).bind(limit).fetch_all(&mut **c).await?,
            |r| r.text("id")
        ))?)
    }

    /// Deletes every row about the user and replaces the id by `hash` in audit rows and flags.
    pub async fn erase_user(&mut self, id: &str, hash: &str) -> Result<Erased, StoreError> {
        let mut erased = Erased::default();
        let pattern = json_pattern(id);
        for (table, q) in ERASE {
            let n = on_tx!(&mut *self, |c| sqlx::query(q)
                .bind(id)
                .bind(&pattern)
                .execute(&mut **c)
                .await?
                .rows_affected());
            erased.rows.insert(table.to_string(), n);
        }
        let n = on_tx!(&mut *self, |c| sqlx::query(PSEUDONYMIZE_AUDIT)
            .bind(id)
            .bind(hash)
            .execute(&mut **c)
            .await?
            .rows_affected());
        erased.rows.insert("audit_log".into(), n);
        on_tx!(self, |c| {
            sqlx::query(PSEUDONYMIZE_FLAGS)
                .bind(id)
                .bind(hash)
                .execute(&mut **c)
                .await?;
        });
        Ok(erased)
    }

    /// Drops sealed raw payloads received before `before`; the projection stays.
    pub async fn drop_raw_payloads(&mut self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let q = "UPDATE billing_events SET payload = NULL, key_id = NULL
                 WHERE received_at <= $1 AND payload IS NOT NULL";
        Ok(on_tx!(self, |c| sqlx::query(q)
            .bind(Ts(before))
            .execute(&mut **c)
            .await?
            .rows_affected()))
    }

    /// Empties the metadata of audit rows written before `before`.
    pub async fn expire_audit_detail(&mut self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let q = "UPDATE audit_log SET metadata = '{}' WHERE at <= $1 AND metadata <> '{}'";
        Ok(on_tx!(self, |c| sqlx::query(q)
            .bind(Ts(before))
            .execute(&mut **c)
            .await?
            .rows_affected()))
    }

    /// Everything stored about the user.
    pub async fn export_user(&mut self, id: &str) -> Result<ExportRows, StoreError> {
        let pattern = json_pattern(id);
        Ok(on_tx!(self, |c| {
            let user = sqlx::query(EXPORT_USER)
                .bind(id)
                .fetch_optional(&mut **c)
                .await?;
            let of_user = |q| sqlx::query(q).bind(id);
            ExportRows {
                user: user.map(|r| user_json(&r)).transpose()?,
                subscriptions: map_rows(
                    &of_user(EXPORT_SUBSCRIPTIONS).fetch_all(&mut **c).await?,
                    subscription_json,
                )?,
                events: map_rows(
                    &of_user(EXPORT_EVENTS).fetch_all(&mut **c).await?,
                    event_json,
                )?,
                links: map_rows(&of_user(EXPORT_LINKS).fetch_all(&mut **c).await?, link_json)?,
                overrides: map_rows(
                    &of_user(EXPORT_OVERRIDES).fetch_all(&mut **c).await?,
                    override_json,
                )?,
                audit: map_rows(
                    &of_user(EXPORT_AUDIT).fetch_all(&mut **c).await?,
                    audit_json,
                )?,
                jobs: map_rows(
                    &of_user(EXPORT_JOBS)
                        .bind(&pattern)
                        .fetch_all(&mut **c)
                        .await?,
                    job_json,
                )?,
            }
        }))
    }
}
