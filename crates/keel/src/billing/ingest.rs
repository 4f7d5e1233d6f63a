//! One webhook event into the database, in one transaction: the event (sealed), its effect on
//! subscriptions, the audit row and the follow-up sync job.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::fused::{self, on_behalf_of, Fused};
use super::model::{BillingEvent, Effect, Environment, Provider, SubscriptionState};
use super::provider::{BillingProvider, Ownership};
use super::registry;
use super::{Billing, BillingError};
use crate::jobs::JobError;
use crate::store::audit::AuditEntry;
use crate::store::billing::EventRow;
use crate::store::{StoreError, Tx};

/// The answer to a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ingested {
    pub duplicate: bool,
    pub outcome: &'static str,
}

/// Transfers are followed at most this far (A to B to C ...).
const MAX_TRANSFER_CHAIN: usize = 16;

/// Binds a sealed payload to its event, so it cannot be moved to another row.
pub fn payload_aad(provider: &str, event_id: &str) -> Vec<u8> {
    format!("billing_events:{provider}:{event_id}").into_bytes()
}

impl Billing {
    /// Stores and applies one verified event. A second delivery of the same event id changes
    /// nothing and answers `duplicate: true`.
    pub async fn ingest(&self, event: BillingEvent, raw: &[u8]) -> Result<Ingested, BillingError> {
        let source =
            registry::get(event.provider).ok_or(BillingError::NotConfigured("a manual event"))?;
        self.ingest_with(source, event, raw).await
    }

    /// [`Billing::ingest`] of an event `source` parsed.
    pub(super) async fn ingest_with(
        &self,
        source: &dyn BillingProvider,
        event: BillingEvent,
        raw: &[u8],
    ) -> Result<Ingested, BillingError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let provider = event.provider;
        let ownership = source.ownership();
        let sealed = inner
            .sealer
            .seal(raw, &payload_aad(provider.as_str(), &event.id))?;
        let (applies, outcome) = disposition(&event, inner.settings.accept_sandbox);
        let mut tx = inner.db.begin().await?;
        let user_id = resolve_user(&mut tx, ownership, &event).await?;
        lock_subjects(&mut tx, &event, user_id.as_deref()).await?;
        let row = EventRow {
            provider,
            event_id: &event.id,
            event_type: &event.kind,
            user_id: user_id.as_deref(),
            product_id: event.product_id.as_deref(),
            environment: event.environment.as_str(),
            event_at: event.at,
            received_at: now,
            outcome,
            key_id: inner.sealer.current_key_id(),
            payload: &sealed,
        };
        let entry = audit_entry(
            provider.as_str(),
            "billing.event",
            &event,
            &user_id,
            outcome,
        );
        let fused = fused::store_and_apply(
            &mut tx,
            ownership,
            &event,
            &row,
            user_id.as_deref(),
            applies,
            &entry,
            now,
        )
        .await?;
        let touched = match fused {
            Fused::Stored(touched) => touched,
            Fused::Duplicate => return duplicate(tx).await,
            Fused::Unsupported => {
                if !tx.insert_billing_event(&row).await? {
                    return duplicate(tx).await;
                }
                let mut touched = BTreeSet::new();
                if applies {
                    apply_all(
                        &mut tx,
                        ownership,
                        &event,
                        user_id.as_deref(),
                        now,
                        &mut touched,
                    )
                    .await?;
                }
                tx.audit(&entry, now).await?;
                touched
            }
        };
        let users = touched.iter().map(String::as_str);
        crate::events::check_entitlements(inner.events, &mut tx, users, now).await?;
        if let (true, Some(user)) = (applies, &user_id) {
            self.enqueue_follow_up(&mut tx, source, user).await?;
        }
        tx.commit().await?;
        for user in &touched {
            inner.cache.forget(user);
        }
        Ok(Ingested {
            duplicate: false,
            outcome,
        })
    }

    async fn enqueue_follow_up(
        &self,
        tx: &mut Tx,
        source: &dyn BillingProvider,
        user: &str,
    ) -> Result<(), BillingError> {
        let Some(spec) = source.follow_up(&self.inner.settings, user) else {
            return Ok(());
        };
        let kind = spec.kind.clone();
        match self.inner.queue.enqueue_in(tx, spec).await {
            Ok(_) => Ok(()),
            // The event is stored either way; a switched-off enqueue must not refuse it.
            Err(JobError::EnqueueDisabled) => {
                tracing::warn!(
                    kind,
                    "enqueue is switched off; the job after a webhook skipped"
                );
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The answer to a second delivery of an event id: nothing written.
async fn duplicate(tx: Tx) -> Result<Ingested, BillingError> {
    tx.rollback().await?;
    Ok(Ingested {
        duplicate: true,
        outcome: "duplicate",
    })
}

/// Whether the event is applied (sandbox events only when accepted), and its outcome.
pub(super) fn disposition(event: &BillingEvent, accept_sandbox: bool) -> (bool, &'static str) {
    let applies = event.environment == Environment::Production || accept_sandbox;
    let outcome = match (applies, event.effects.is_empty()) {
        (false, _) => "sandbox-ignored",
        (true, true) => "ignored",
        (true, false) => "applied",
    };
    (applies, outcome)
}

/// The audit row of an event applied by `actor`.
pub(super) fn audit_entry(
    actor: &str,
    action: &str,
    event: &BillingEvent,
    user_id: &Option<String>,
    outcome: &str,
) -> AuditEntry {
    let metadata = serde_json::json!({
        "event_id": event.id,
        "type": event.kind,
        "outcome": outcome,
    });
    AuditEntry::new(actor, action, user_id.clone(), metadata)
}

/// Links the event's other ids to its user (where events name users) and applies each of its
/// effects.
pub(super) async fn apply_all(
    tx: &mut Tx,
    ownership: Ownership,
    event: &BillingEvent,
    user_id: Option<&str>,
    now: DateTime<Utc>,
    touched: &mut BTreeSet<String>,
) -> Result<(), StoreError> {
    let provider = event.provider;
    if let (Ownership::UserIds { .. }, Some(user)) = (ownership, user_id) {
        for alias in event
            .aliases
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(user))
        {
            tx.insert_billing_link(provider, alias, user).await?;
        }
    }
    for effect in &event.effects {
        let effect = on_behalf_of(effect, ownership, user_id);
        apply(tx, ownership, event, &effect, now, touched).await?;
    }
    Ok(())
}

/// The Keel user an event concerns: the id it names (or, for an anonymous id, the user it was
/// linked to), or the user a provider-side customer was linked to.
pub(super) async fn resolve_user(
    tx: &mut Tx,
    ownership: Ownership,
    event: &BillingEvent,
) -> Result<Option<String>, StoreError> {
    match ownership {
        Ownership::UserIds { anonymous } => {
            let Some(user) = &event.user_id else {
                return Ok(None);
            };
            if !anonymous.is_some_and(|prefix| user.starts_with(prefix)) {
                return Ok(Some(user.clone()));
            }
            for id in std::iter::once(user).chain(event.aliases.iter()) {
                if let Some(linked) = tx.billing_link(event.provider, id).await? {
                    return Ok(Some(linked));
                }
            }
            Ok(Some(user.clone()))
        }
        Ownership::Customers => {
            if event.user_id.is_some() {
                return Ok(event.user_id.clone());
            }
            match &event.subject {
                Some(subject) => tx.billing_link(event.provider, subject).await,
                None => Ok(None),
            }
        }
    }
}

/// Takes the per-owner locks the event's effects need, in a fixed order.
pub(super) async fn lock_subjects(
    tx: &mut Tx,
    event: &BillingEvent,
    user_id: Option<&str>,
) -> Result<(), StoreError> {
    let mut subjects: BTreeSet<&str> = BTreeSet::new();
    subjects.extend(user_id);
    subjects.extend(event.subject.as_deref());
    for effect in &event.effects {
        match effect {
            Effect::Subscription(s) => {
                subjects.insert(&s.subject);
            }
            Effect::PaidThrough { subject, .. } => {
                subjects.insert(subject);
            }
            Effect::Link { external_id, .. } => {
                subjects.insert(external_id);
            }
            Effect::Transfer { from, to } => {
                subjects.extend(from.iter().map(String::as_str));
                subjects.insert(to);
            }
        }
    }
    let subjects: Vec<&str> = subjects.into_iter().collect();
    tx.lock_billing_subjects(event.provider, &subjects).await
}

async fn apply(
    tx: &mut Tx,
    ownership: Ownership,
    event: &BillingEvent,
    effect: &Effect,
    now: DateTime<Utc>,
    touched: &mut BTreeSet<String>,
) -> Result<(), StoreError> {
    let provider = event.provider;
    match effect {
        Effect::Subscription(state) => {
            let owner = owner(tx, ownership, provider, &state.subject, event.at).await?;
            if let Some(before) = tx.subscription_ownership(provider, &state.key).await? {
                touched.extend(before.user_id);
            }
            tx.upsert_subscription(provider, state, owner.as_deref(), event.at, &event.id, now)
                .await?;
            touched.extend(owner);
        }
        Effect::PaidThrough {
            key,
            subject,
            environment,
            product_id,
            entitlements,
            until,
        } => {
            let owner = owner(tx, ownership, provider, subject, event.at).await?;
            let placeholder = SubscriptionState {
                key: key.clone(),
                subject: subject.clone(),
                environment: *environment,
                platform: "web".into(),
                product_id: product_id.clone(),
                entitlements: entitlements.clone(),
                grants: false,
                expires_at: None,
                grace_until: None,
                will_renew: false,
                rank: -1,
                recovered: false,
                tenant: None,
            };
            if let Some(before) = tx.subscription_ownership(provider, key).await? {
                touched.extend(before.user_id);
            }
            tx.raise_paid_through(provider, &placeholder, owner.as_deref(), *until, now)
                .await?;
            touched.extend(owner);
        }
        Effect::Link {
            external_id,
            user_id,
        } => {
            tx.insert_billing_link(provider, external_id, user_id)
                .await?;
            reassign(
                tx,
                ownership,
                provider,
                std::slice::from_ref(external_id),
                touched,
            )
            .await?;
        }
        Effect::Transfer { from, to } => {
            let to = linked(tx, provider, to).await?;
            let mut sources = Vec::new();
            for f in from {
                let f = linked(tx, provider, f).await?;
                tx.insert_billing_transfer(provider, &event.id, &f, &to, event.at)
                    .await?;
                sources.push(f);
            }
            touched.insert(to);
            reassign(tx, ownership, provider, &sources, touched).await?;
        }
    }
    Ok(())
}

/// The user a provider-side id is linked to, or the id itself.
async fn linked(tx: &mut Tx, provider: Provider, id: &str) -> Result<String, StoreError> {
    Ok(tx
        .billing_link(provider, id)
        .await?
        .unwrap_or_else(|| id.to_string()))
}

/// Who holds a subscription whose newest state names `subject` at `at`: the user a customer is
/// linked to, or a user id followed through later transfers.
async fn owner(
    tx: &mut Tx,
    ownership: Ownership,
    provider: Provider,
    subject: &str,
    at: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    if ownership == Ownership::Customers {
        return tx.billing_link(provider, subject).await;
    }
    let (mut user, mut since) = (subject.to_string(), at);
    for _ in 0..MAX_TRANSFER_CHAIN {
        match tx.next_billing_transfer(provider, &user, since).await? {
            Some((to, when)) => (user, since) = (to, when),
            None => break,
        }
    }
    Ok(Some(user))
}

/// Re-resolves the owner of every subscription whose subject or owner is one of `ids`.
async fn reassign(
    tx: &mut Tx,
    ownership: Ownership,
    provider: Provider,
    ids: &[String],
    touched: &mut BTreeSet<String>,
) -> Result<(), StoreError> {
    for sub in tx.subscriptions_touching(provider, ids).await? {
        let owner = owner(tx, ownership, provider, &sub.subject, sub.state_at).await?;
        if owner != sub.user_id {
            tx.set_subscription_owner(provider, &sub.key, owner.as_deref())
                .await?;
            touched.extend(sub.user_id);
            touched.extend(owner);
        }
    }
    Ok(())
}
