//! Erasure, retention and export on Postgres.

use chrono::{DateTime, Utc};
use sqlx::{Executor, PgConnection, Row};

use crate::store::privacy::{Erased, ExportRows};

pub(crate) async fn mark_deleted(
    conn: &mut PgConnection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    conn.execute(
        sqlx::query(
            "INSERT INTO users (id, created_at, last_seen_at, deleted_at) VALUES ($1, $2, $2, $2)
             ON CONFLICT (id) DO UPDATE SET deleted_at = COALESCE(users.deleted_at, excluded.deleted_at)",
        )
        .bind(id)
        .bind(now),
    )
    .await
    .map(|_| ())
}

pub(crate) async fn marked(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let rows = conn
        .fetch_all(
            sqlx::query(
                "SELECT id FROM users WHERE deleted_at IS NOT NULL ORDER BY deleted_at, id LIMIT $1",
            )
            .bind(limit),
        )
        .await?;
    rows.iter().map(|r| r.try_get("id")).collect()
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

pub(crate) async fn erase(
    conn: &mut PgConnection,
    id: &str,
    hash: &str,
) -> Result<Erased, sqlx::Error> {
    let mut erased = Erased::default();
    let statements: [(&str, &str); 7] = [
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
               AND (args::text LIKE $2 ESCAPE '\\' OR unique_key LIKE '%:' || $1)",
        ),
        ("users", "DELETE FROM users WHERE id = $1"),
    ];
    for (table, sql) in statements {
        let done = conn
            .execute(sqlx::query(sql).bind(id).bind(json_pattern(id)))
            .await?;
        erased.rows.insert(table.to_string(), done.rows_affected());
    }
    let pseudonym = conn
        .execute(
            sqlx::query(
                "UPDATE audit_log SET
                    target = CASE WHEN target = $1 THEN $2 ELSE target END,
                    actor = CASE WHEN actor = 'user:' || $1 THEN 'user:' || $2 ELSE actor END
                 WHERE target = $1 OR actor = 'user:' || $1",
            )
            .bind(id)
            .bind(hash),
        )
        .await?;
    erased
        .rows
        .insert("audit_log".into(), pseudonym.rows_affected());
    conn.execute(
        sqlx::query("UPDATE flags SET updated_by = 'user:' || $2 WHERE updated_by = 'user:' || $1")
            .bind(id)
            .bind(hash),
    )
    .await?;
    Ok(erased)
}

pub(crate) async fn drop_payloads(
    conn: &mut PgConnection,
    before: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let done = conn
        .execute(
            sqlx::query(
                "UPDATE billing_events SET payload = NULL, key_id = NULL
                 WHERE received_at <= $1 AND payload IS NOT NULL",
            )
            .bind(before),
        )
        .await?;
    Ok(done.rows_affected())
}

pub(crate) async fn expire_audit(
    conn: &mut PgConnection,
    before: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let done = conn
        .execute(
            sqlx::query("UPDATE audit_log SET metadata = '{}' WHERE at <= $1 AND metadata <> '{}'")
                .bind(before),
        )
        .await?;
    Ok(done.rows_affected())
}

pub(crate) async fn export(conn: &mut PgConnection, id: &str) -> Result<ExportRows, sqlx::Error> {
    let mut out = ExportRows::default();
    if let Some(r) = conn
        .fetch_optional(
            sqlx::query(
                "SELECT id, tenant_id, created_at, last_seen_at, deleted_at FROM users WHERE id = $1",
            )
            .bind(id),
        )
        .await?
    {
        out.user = Some(serde_json::json!({
            "id": r.try_get::<String, _>("id")?,
            "tenant_id": r.try_get::<Option<String>, _>("tenant_id")?,
            "created_at": r.try_get::<DateTime<Utc>, _>("created_at")?,
            "last_seen_at": r.try_get::<DateTime<Utc>, _>("last_seen_at")?,
            "deleted_at": r.try_get::<Option<DateTime<Utc>>, _>("deleted_at")?,
        }));
    }
    for r in conn
        .fetch_all(
            sqlx::query(
                "SELECT provider, key, environment, platform, product_id, entitlements, grants,
                    expires_at, grace_until, paid_through, will_renew, state_at, updated_at
                 FROM subscriptions WHERE user_id = $1 OR subject = $1 ORDER BY provider, key",
            )
            .bind(id),
        )
        .await?
    {
        let entitlements: String = r.try_get("entitlements")?;
        out.subscriptions.push(serde_json::json!({
            "provider": r.try_get::<String, _>("provider")?,
            "key": r.try_get::<String, _>("key")?,
            "environment": r.try_get::<String, _>("environment")?,
            "platform": r.try_get::<String, _>("platform")?,
            "product_id": r.try_get::<String, _>("product_id")?,
            "entitlements": serde_json::from_str::<serde_json::Value>(&entitlements).unwrap_or_default(),
            "grants": r.try_get::<bool, _>("grants")?,
            "expires_at": r.try_get::<Option<DateTime<Utc>>, _>("expires_at")?,
            "grace_until": r.try_get::<Option<DateTime<Utc>>, _>("grace_until")?,
            "paid_through": r.try_get::<Option<DateTime<Utc>>, _>("paid_through")?,
            "will_renew": r.try_get::<bool, _>("will_renew")?,
            "state_at": r.try_get::<DateTime<Utc>, _>("state_at")?,
            "updated_at": r.try_get::<DateTime<Utc>, _>("updated_at")?,
        }));
    }
    for r in conn
        .fetch_all(
            sqlx::query(
                "SELECT provider, event_id, event_type, product_id, environment, event_at,
                    received_at, outcome, payload
                 FROM billing_events WHERE user_id = $1 ORDER BY event_at, event_id",
            )
            .bind(id),
        )
        .await?
    {
        out.events.push((
            serde_json::json!({
                "provider": r.try_get::<String, _>("provider")?,
                "event_id": r.try_get::<String, _>("event_id")?,
                "type": r.try_get::<String, _>("event_type")?,
                "product_id": r.try_get::<Option<String>, _>("product_id")?,
                "environment": r.try_get::<String, _>("environment")?,
                "event_at": r.try_get::<DateTime<Utc>, _>("event_at")?,
                "received_at": r.try_get::<DateTime<Utc>, _>("received_at")?,
                "outcome": r.try_get::<String, _>("outcome")?,
            }),
            r.try_get("payload")?,
        ));
    }
    for r in conn
        .fetch_all(
            sqlx::query(
                "SELECT provider, external_id FROM billing_links WHERE user_id = $1
                 ORDER BY provider, external_id",
            )
            .bind(id),
        )
        .await?
    {
        out.links.push(serde_json::json!({
            "provider": r.try_get::<String, _>("provider")?,
            "external_id": r.try_get::<String, _>("external_id")?,
        }));
    }
    for r in conn
        .fetch_all(
            sqlx::query(
                "SELECT entitlement, revoked, expires_at, reason, created_at
                 FROM entitlement_overrides WHERE user_id = $1 ORDER BY entitlement",
            )
            .bind(id),
        )
        .await?
    {
        out.overrides.push(serde_json::json!({
            "entitlement": r.try_get::<String, _>("entitlement")?,
            "revoked": r.try_get::<bool, _>("revoked")?,
            "expires_at": r.try_get::<Option<DateTime<Utc>>, _>("expires_at")?,
            "reason": r.try_get::<String, _>("reason")?,
            "created_at": r.try_get::<DateTime<Utc>, _>("created_at")?,
        }));
    }
    for r in conn
        .fetch_all(
            sqlx::query(
                "SELECT at, actor, action, target, metadata FROM audit_log
                 WHERE target = $1 OR actor = 'user:' || $1 ORDER BY at, id",
            )
            .bind(id),
        )
        .await?
    {
        out.audit.push(serde_json::json!({
            "at": r.try_get::<DateTime<Utc>, _>("at")?,
            "actor": r.try_get::<String, _>("actor")?,
            "action": r.try_get::<String, _>("action")?,
            "target": r.try_get::<Option<String>, _>("target")?,
            "metadata": r.try_get::<serde_json::Value, _>("metadata")?,
        }));
    }
    for r in conn
        .fetch_all(
            sqlx::query(
                "SELECT id, queue, kind, state, args, created_at FROM jobs
                 WHERE args::text LIKE $2 ESCAPE '\\' OR unique_key LIKE '%:' || $1 ORDER BY id",
            )
            .bind(id)
            .bind(json_pattern(id)),
        )
        .await?
    {
        out.jobs.push(serde_json::json!({
            "id": r.try_get::<i64, _>("id")?,
            "queue": r.try_get::<String, _>("queue")?,
            "kind": r.try_get::<String, _>("kind")?,
            "state": r.try_get::<String, _>("state")?,
            "args": r.try_get::<serde_json::Value, _>("args")?,
            "created_at": r.try_get::<DateTime<Utc>, _>("created_at")?,
        }));
    }
    Ok(out)
}
