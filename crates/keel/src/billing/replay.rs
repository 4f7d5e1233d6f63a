//! Replaying a stored event: its sealed payload parsed and applied again under the current
//! configuration (a product mapping added since, say). Safe to repeat: every effect keeps the
//! newest state, so applying an event twice changes nothing the first time did not.

use std::collections::BTreeSet;

use serde::Serialize;

use super::ingest::{
    apply_all, audit_entry, disposition, lock_subjects, payload_aad, resolve_user,
};
use super::model::{Invalid, Provider};
use super::{registry, Billing, BillingError};

/// What a replay did.
#[derive(Debug, Clone, Serialize)]
pub struct Replayed {
    pub provider: Provider,
    pub event_id: String,
    pub event_type: String,
    pub user_id: Option<String>,
    pub outcome: &'static str,
}

impl Billing {
    /// Applies the stored event `event_id` of `provider` again; audited as `billing.replay` by
    /// `actor`, in the same transaction.
    pub async fn replay(
        &self,
        provider: Provider,
        event_id: &str,
        actor: &str,
    ) -> Result<Replayed, BillingError> {
        let inner = &self.inner;
        let Some((_, payload)) = inner.db.billing_event(provider, event_id).await? else {
            return Err(BillingError::Invalid(vec![Invalid::new(
                "event_id",
                "no stored event of this provider has this id",
            )]));
        };
        let Some(payload) = payload else {
            return Err(BillingError::Invalid(vec![Invalid::new(
                "event_id",
                "the raw payload was dropped by retention (RETENTION_RAW_EVENT_DAYS)",
            )]));
        };
        let raw = inner
            .sealer
            .open(&payload, &payload_aad(provider.as_str(), event_id))?;
        let source =
            registry::get(provider).ok_or(BillingError::NotConfigured("a manual event"))?;
        let event = source
            .parse(&inner.settings, &raw)
            .map_err(BillingError::Invalid)?;
        let ownership = source.ownership();
        let (applies, outcome) = disposition(&event, inner.settings.accept_sandbox);
        let now = inner.clock.now();
        let mut tx = inner.db.begin().await?;
        let user_id = resolve_user(&mut tx, ownership, &event).await?;
        lock_subjects(&mut tx, &event, user_id.as_deref()).await?;
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
        let users = touched.iter().map(String::as_str);
        crate::events::check_entitlements(inner.events, &mut tx, users, now).await?;
        let entry = audit_entry(actor, "billing.replay", &event, &user_id, outcome);
        tx.audit(&entry, now).await?;
        tx.commit().await?;
        for user in &touched {
            inner.cache.forget(user);
        }
        Ok(Replayed {
            provider,
            event_id: event.id,
            event_type: event.kind,
            user_id,
            outcome,
        })
    }
}

impl Billing {
    /// Stored events (what was parsed from them: never the payload), newest received first.
    pub async fn events(
        &self,
        filter: &crate::store::billing::EventFilter,
    ) -> Result<Vec<crate::store::billing::EventSummary>, BillingError> {
        Ok(self.inner.db.billing_events(filter).await?)
    }
}
