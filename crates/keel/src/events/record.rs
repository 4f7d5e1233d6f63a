//! Writing events in the caller's transaction. Entitlement events come from comparing the active
//! entitlements the app was last told of with those the transaction now sees: one event per name
//! that appears or disappears, none when nothing changed (a duplicate or out-of-order webhook that
//! changes nothing writes nothing).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{
    new_id, AppEvents, ENTITLEMENT_ACTIVATED, ENTITLEMENT_DEACTIVATED, USER_CREATED, USER_ERASED,
};
use crate::billing::entitlements::{self, Entitlement, Holdings};
use crate::store::app_events::{EventUser, NewAppEvent};
use crate::store::{StoreError, Tx};

/// Compares each user's entitlements with what the app was last told and writes an event per
/// change. `users` in any order; they are locked in sorted order, so two transactions about the
/// same users cannot deadlock here.
pub async fn check_entitlements<'a>(
    events: AppEvents,
    tx: &mut Tx,
    users: impl IntoIterator<Item = &'a str>,
    now: DateTime<Utc>,
) -> Result<u32, StoreError> {
    if !events.enabled {
        return Ok(0);
    }
    let users: BTreeSet<&str> = users.into_iter().collect();
    let mut written = 0;
    for user in users {
        // The lock first: the holdings are read after any other transaction about this user
        // committed.
        let mut state = tx.lock_event_user(user).await?;
        let holdings = tx.holdings(user).await?;
        let view = entitlements::view(&holdings, now, events.include_sandbox);
        let active = entitlements::active_names(&view);
        let before: BTreeSet<&String> = state.entitlements.iter().collect();
        let after: BTreeSet<&String> = active.iter().collect();
        let mut changes = Vec::new();
        for name in before.difference(&after) {
            changes.push((ENTITLEMENT_DEACTIVATED, json!({ "entitlement": name })));
        }
        for name in after.difference(&before) {
            changes.push((ENTITLEMENT_ACTIVATED, activated(name, view.get(*name))));
        }
        for (event_type, data) in &changes {
            write(tx, user, &mut state, event_type, data, now).await?;
            written += 1;
        }
        state.entitlements = active.clone();
        tx.save_event_user(user, &state, next_check(&holdings, now))
            .await?;
    }
    Ok(written)
}

/// `user.created`, in the transaction that created the user's row.
pub async fn user_created(
    events: AppEvents,
    tx: &mut Tx,
    user: &str,
    tenant_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if !events.enabled {
        return Ok(());
    }
    let mut state = tx.lock_event_user(user).await?;
    write(
        tx,
        user,
        &mut state,
        USER_CREATED,
        &json!({ "tenant_id": tenant_id }),
        now,
    )
    .await?;
    tx.save_event_user(user, &state, None).await
}

/// Erasure, in the erasing transaction: the user's undelivered events lose their `data` (they
/// are still delivered, in order, so the sequence has no gap), delivered ones are deleted, and
/// `user.erased` is the last event of the user's history. Redaction happens whether or not events
/// are enabled now; `user.erased` only when they are.
pub async fn erase_user(
    events: AppEvents,
    tx: &mut Tx,
    user: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut state = tx.lock_event_user(user).await?;
    let redacted = tx.redact_app_events(user).await?;
    if events.enabled {
        write(tx, user, &mut state, USER_ERASED, &json!({}), now).await?;
    }
    tx.forget_event_user(user).await?;
    Ok(redacted)
}

async fn write(
    tx: &mut Tx,
    user: &str,
    state: &mut EventUser,
    event_type: &str,
    data: &Value,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    state.sequence += 1;
    let id = new_id();
    let data = data.to_string();
    tx.insert_app_event(&NewAppEvent {
        id: &id,
        user_id: user,
        sequence: state.sequence,
        event_type,
        data: &data,
        created_at: now,
    })
    .await?;
    Ok(())
}

fn activated(name: &str, e: Option<&Entitlement>) -> Value {
    match e {
        Some(e) => json!({
            "entitlement": name,
            "expires_at": e.expires_at,
            "source": e.source.as_str(),
            "product_id": e.product_id,
            "will_renew": e.will_renew,
            "in_grace_period": e.in_grace_period,
        }),
        None => json!({ "entitlement": name }),
    }
}

/// The earliest moment time alone may change the active set: the next end of a subscription,
/// its grace period or paid-through time, or of a manual grant or revocation.
fn next_check(holdings: &Holdings, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let subscriptions = holdings
        .subscriptions
        .iter()
        .flat_map(|h| [h.expires_at, h.grace_until, h.paid_through]);
    let overrides = holdings.overrides.iter().map(|o| o.expires_at);
    subscriptions
        .chain(overrides)
        .flatten()
        .filter(|t| *t > now)
        .min()
}
