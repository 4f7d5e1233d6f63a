//! The common event on Postgres in one statement (see `keel_store::billing_ingest`): one that
//! names users (RevenueCat) and asks for at most one subscription state. Other events, and every
//! event on SQLite, take the step-by-step path in `ingest.rs`; both paths write the same rows.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::model::{BillingEvent, Effect, SubscriptionState};
use super::provider::Ownership;
use crate::store::audit::AuditEntry;
use crate::store::billing::EventRow;
use crate::store::billing_ingest::{FusedEvent, FusedOutcome};
use crate::store::{StoreError, Tx};

/// What the fused path did.
pub(super) enum Fused {
    /// Not an event it takes, or not Postgres: nothing was written.
    Unsupported,
    Duplicate,
    /// Stored and applied; the users whose holdings it may have changed.
    Stored(BTreeSet<String>),
}

/// Whether the fused statement can take `event`: it names users, and its effects are at most
/// one subscription state.
fn fusable(ownership: Ownership, event: &BillingEvent) -> bool {
    matches!(ownership, Ownership::UserIds { .. })
        && event.effects.len() <= 1
        && event
            .effects
            .iter()
            .all(|e| matches!(e, Effect::Subscription(_)))
}

/// Stores `row` and, when the event `applies`, its links and subscription state, with the audit
/// row, in one statement (after the locks).
#[allow(clippy::too_many_arguments)]
pub(super) async fn store_and_apply(
    tx: &mut Tx,
    ownership: Ownership,
    event: &BillingEvent,
    row: &EventRow<'_>,
    user_id: Option<&str>,
    applies: bool,
    audit: &AuditEntry,
    now: DateTime<Utc>,
) -> Result<Fused, StoreError> {
    if tx.engine() != crate::store::Engine::Postgres || !fusable(ownership, event) {
        return Ok(Fused::Unsupported);
    }
    let links: Vec<&str> = match (applies, user_id) {
        (true, Some(user)) => event
            .aliases
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(user))
            .collect(),
        _ => Vec::new(),
    };
    let subscription = match (applies, event.effects.first()) {
        (true, Some(effect)) => match on_behalf_of(effect, ownership, user_id) {
            Effect::Subscription(state) => Some(state),
            _ => None,
        },
        _ => None,
    };
    let fused = FusedEvent {
        row,
        links: &links,
        link_user: user_id,
        subscription: subscription.as_ref(),
        audit,
        now,
    };
    Ok(
        match tx.ingest_billing_event(event.provider, &fused).await? {
            FusedOutcome::Unsupported => Fused::Unsupported,
            FusedOutcome::Duplicate => Fused::Duplicate,
            FusedOutcome::Stored {
                before_owner,
                owner,
            } => {
                let mut touched = BTreeSet::new();
                if subscription.is_some() {
                    touched.extend(before_owner);
                    touched.extend(owner);
                }
                Fused::Stored(touched)
            }
        },
    )
}

/// Where events name users, a subscription belongs to the Keel user its ids resolve to, not to
/// whichever alias (an anonymous id, say) the event happens to name.
pub(super) fn on_behalf_of(effect: &Effect, ownership: Ownership, user_id: Option<&str>) -> Effect {
    match (effect, ownership, user_id) {
        (Effect::Subscription(state), Ownership::UserIds { .. }, Some(user)) => {
            Effect::Subscription(SubscriptionState {
                subject: user.to_string(),
                ..state.clone()
            })
        }
        _ => effect.clone(),
    }
}
