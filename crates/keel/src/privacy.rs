//! Privacy and retention: a user's export, erasure on request (by job, leaving audit rows under a
//! keyed pseudonym), and the built-in schedules `retention.events` (drop old sealed raw webhook
//! payloads, keep the projection) and `privacy.maintenance` (erase marked users, expire old audit
//! detail).

use serde_json::{json, Value};

use crate::billing::ingest::payload_aad;
use crate::jobs::{Enqueued, JobError, JobFailure, JobSpec, Registry};
pub use crate::schedule::{MAINTENANCE_KIND, RETENTION_KIND};
use crate::services::Services;
use crate::storage::StorageError;
use crate::store::audit::AuditEntry;
use crate::store::StoreError;

/// The job that erases every user marked for deletion.
pub const ERASE_KIND: &str = "privacy.erase";
const BATCH: i64 = 100;

/// A raw payload as an export shows it, and the form it takes: `json` (the payload as a value),
/// `text` (the stored text as a string, when it is not a JSON value this process can rebuild, such
/// as one nested deeper than the parser's limit) or `base64` (bytes that are not UTF-8).
fn exported_payload(plain: Vec<u8>) -> (&'static str, Value) {
    if let Ok(value) = serde_json::from_slice::<Value>(&plain) {
        return ("json", value);
    }
    match String::from_utf8(plain) {
        Ok(text) => ("text", Value::String(text)),
        Err(e) => {
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD.encode(e.into_bytes());
            ("base64", Value::String(encoded))
        }
    }
}

/// Everything stored about `user_id`, as JSON; raw webhook payloads opened. Each event says in
/// `payload_form` how its payload is shown: `json`, `text`, `base64`, `dropped` (after
/// `RETENTION_RAW_EVENT_DAYS`) or `unreadable` (sealed under a key no longer configured).
/// The user's stored objects are listed with signed URLs (see [`export_linked`]).
pub async fn export(services: &Services, user_id: &str) -> Result<Value, StorageError> {
    export_linked(services, user_id, None).await
}

/// [`export`], with the filesystem backend's links built on `base` when `PUBLIC_URL` is unset.
pub async fn export_linked(
    services: &Services,
    user_id: &str,
    base: Option<&str>,
) -> Result<Value, StorageError> {
    let files = services.storage.export(user_id, base).await?;
    let mut tx = services.db.begin().await?;
    let rows = tx.export_user(user_id).await?;
    tx.commit().await?;
    let sealer = services.billing.sealer();
    let events: Vec<Value> = rows
        .events
        .into_iter()
        .map(|(mut event, payload)| {
            let provider = event["provider"].as_str().unwrap_or_default().to_string();
            let id = event["event_id"].as_str().unwrap_or_default().to_string();
            let opened = payload.map(|p| sealer.open(&p, &payload_aad(&provider, &id)));
            let (form, payload) = match opened {
                None => ("dropped", Value::Null),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, %provider, event_id = %id, "a stored payload could not be opened for an export");
                    ("unreadable", Value::Null)
                }
                Some(Ok(plain)) => exported_payload(plain),
            };
            event["payload"] = payload;
            event["payload_form"] = json!(form);
            event
        })
        .collect();
    let app_events: Vec<Value> = services
        .db
        .app_events_of(user_id)
        .await?
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id,
                "type": e.event_type,
                "sequence": e.sequence,
                "created_at": e.created_at,
                "delivered_at": e.delivered_at,
                "data": serde_json::from_str::<Value>(&e.data).unwrap_or(Value::Null),
            })
        })
        .collect();
    let holdings = services.db.holdings(user_id).await?;
    let entitlements = crate::billing::entitlements::view(
        &holdings,
        services.clock.now(),
        services.settings.billing.accept_sandbox,
    );
    Ok(json!({
        "user_id": user_id,
        "exported_at": services.clock.now(),
        "user": rows.user,
        "entitlements": entitlements,
        "subscriptions": rows.subscriptions,
        "entitlement_overrides": rows.overrides,
        "billing_events": events,
        "billing_links": rows.links,
        "audit": rows.audit,
        "jobs": rows.jobs,
        "app_events": app_events,
        "files": files,
    }))
}

/// Marks the user for erasure and enqueues the job that erases them, in one transaction.
pub async fn request_erasure(services: &Services, user_id: &str) -> Result<Enqueued, JobError> {
    let now = services.clock.now();
    let mut tx = services.db.begin().await?;
    tx.mark_user_deleted(user_id, now).await?;
    let pseudonym = services.billing.sealer().pseudonym(user_id);
    tx.audit(
        &AuditEntry::new(
            &format!("user:{pseudonym}"),
            "user.erasure_requested",
            Some(pseudonym.clone()),
            json!({}),
        ),
        now,
    )
    .await?;
    // No id in the job: it erases every marked user, so its row names no one.
    let spec = JobSpec::new(ERASE_KIND, json!({})).unique_key(ERASE_KIND);
    let enqueued = services.queue.enqueue_in(&mut tx, spec).await?;
    tx.commit().await?;
    Ok(enqueued)
}

/// Erases every user marked for deletion; returns how many.
pub async fn erase_marked(services: &Services) -> Result<u64, StorageError> {
    let mut erased = 0;
    loop {
        let mut tx = services.db.begin().await?;
        let users = tx.users_marked_deleted(BATCH).await?;
        if users.is_empty() {
            tx.commit().await?;
            return Ok(erased);
        }
        for user in &users {
            services.storage.erase_user(user).await?;
        }
        let now = services.clock.now();
        for user in &users {
            let pseudonym = services.billing.sealer().pseudonym(user);
            let rows = tx.erase_user(user, &pseudonym).await?;
            crate::events::erase_user(services.events, &mut tx, user, now).await?;
            tx.audit(
                &AuditEntry::new(
                    "privacy",
                    "user.erased",
                    Some(pseudonym),
                    json!({ "rows": rows.rows }),
                ),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        for user in &users {
            services.billing.forget(user);
        }
        erased += users.len() as u64;
    }
}

/// Drops sealed raw payloads older than `RETENTION_RAW_EVENT_DAYS`; returns how many.
pub async fn drop_old_payloads(services: &Services) -> Result<u64, StoreError> {
    let age =
        chrono::Duration::from_std(services.settings.jobs.raw_event_retention).unwrap_or_default();
    let mut tx = services.db.begin().await?;
    let dropped = tx.drop_raw_payloads(services.clock.now() - age).await?;
    tx.commit().await?;
    Ok(dropped)
}

/// Empties the metadata of audit rows older than `RETENTION_AUDIT_DAYS`; returns how many.
pub async fn expire_audit_detail(services: &Services) -> Result<u64, StoreError> {
    let age =
        chrono::Duration::from_std(services.settings.jobs.audit_retention).unwrap_or_default();
    let mut tx = services.db.begin().await?;
    let expired = tx.expire_audit_detail(services.clock.now() - age).await?;
    tx.commit().await?;
    Ok(expired)
}

/// Registers the erasure, retention and maintenance jobs.
pub fn register(registry: &mut Registry, services: &Services) {
    let s = services.clone();
    registry.register_fn(ERASE_KIND, move |_, _| {
        let s = s.clone();
        async move {
            let erased = erase_marked(&s)
                .await
                .map_err(|e| JobFailure::retry(e.to_string()))?;
            tracing::info!(erased, "users erased");
            Ok(())
        }
    });
    let s = services.clone();
    registry.register_fn(RETENTION_KIND, move |_, _| {
        let s = s.clone();
        async move {
            let dropped = drop_old_payloads(&s).await.map_err(retry)?;
            tracing::info!(dropped, "old raw webhook payloads dropped");
            Ok(())
        }
    });
    let s = services.clone();
    registry.register_fn(MAINTENANCE_KIND, move |_, _| {
        let s = s.clone();
        async move {
            let erased = erase_marked(&s)
                .await
                .map_err(|e| JobFailure::retry(e.to_string()))?;
            let expired = expire_audit_detail(&s).await.map_err(retry)?;
            tracing::info!(erased, expired, "privacy maintenance done");
            Ok(())
        }
    });
}

fn retry(e: StoreError) -> JobFailure {
    JobFailure::retry(e.to_string())
}
