//! RevenueCat webhooks: the shared `Authorization` value, each event type's meaning, and the
//! REST sync enqueued after each applied event.

mod samples;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use super::model::{
    from_millis, valid_id, BillingEvent, Effect, Environment, Invalid, Provider, SubscriptionState,
};
use super::provider::{AuthHeaders, BillingProvider, Ownership};
use super::BillingError;
use crate::billing::{BillingSettings, WebhookProvider};
use crate::crypto::constant_time_eq;
use crate::jobs::JobSpec;

/// The job kind that asks RevenueCat's REST API for a subscriber after a webhook.
pub const SYNC_KIND: &str = "billing.revenuecat.sync";

/// The prefix of the ids RevenueCat makes up for users the app has not identified yet.
const ANONYMOUS: &str = "$RCAnonymousID:";

/// The header RevenueCat sends the configured authorization value in.
const AUTHORIZATION: &str = "authorization";

/// RevenueCat as a [`BillingProvider`].
#[derive(Debug, Clone, Copy)]
pub struct RevenueCat;

impl BillingProvider for RevenueCat {
    fn id(&self) -> Provider {
        Provider::RevenueCat
    }

    fn webhook_path(&self) -> &'static str {
        "/webhooks/revenuecat"
    }

    fn auth_headers(&self) -> &'static [&'static str] {
        &[AUTHORIZATION]
    }

    fn enabled(&self, billing: &BillingSettings) -> bool {
        billing.providers.contains(&WebhookProvider::RevenueCat)
    }

    fn authenticate(
        &self,
        billing: &BillingSettings,
        headers: &AuthHeaders<'_>,
        _body: &[u8],
        _now: DateTime<Utc>,
    ) -> Result<(), BillingError> {
        let secret = billing
            .revenuecat_webhook_secret
            .as_ref()
            .ok_or(BillingError::NotConfigured("REVENUECAT_WEBHOOK_SECRET"))?;
        if authorized(headers.get(AUTHORIZATION), secret) {
            Ok(())
        } else {
            Err(BillingError::Unauthorized("authorization mismatch"))
        }
    }

    fn parse(&self, billing: &BillingSettings, body: &[u8]) -> Result<BillingEvent, Vec<Invalid>> {
        parse(body, &billing.products)
    }

    fn ownership(&self) -> Ownership {
        Ownership::UserIds {
            anonymous: Some(ANONYMOUS),
        }
    }

    fn follow_up(&self, billing: &BillingSettings, user: &str) -> Option<JobSpec> {
        billing.revenuecat_api_key.as_ref()?;
        let spec = JobSpec::new(SYNC_KIND, serde_json::json!({ "user_id": user }))
            .unique_key(format!("{SYNC_KIND}:{user}"))
            .max_attempts(8);
        Some(spec)
    }

    fn sample_types(&self) -> &'static [&'static str] {
        samples::TYPES
    }

    fn sample_product(&self) -> &'static str {
        "premium_monthly"
    }

    fn sample(&self, kind: &str, user: &str, product: &str, now: DateTime<Utc>) -> Option<Value> {
        samples::event(kind, user, product, now)
    }

    fn sign(
        &self,
        billing: &BillingSettings,
        _body: &[u8],
        _now: DateTime<Utc>,
    ) -> Result<Vec<(&'static str, String)>, BillingError> {
        let secret = billing
            .revenuecat_webhook_secret
            .as_ref()
            .ok_or(BillingError::NotConfigured("REVENUECAT_WEBHOOK_SECRET"))?;
        Ok(vec![(AUTHORIZATION, secret.expose_secret().to_string())])
    }
}

/// RevenueCat sends back the configured value verbatim; a `Bearer ` prefix on either side is
/// accepted. Compared in constant time.
pub fn authorized(header: Option<&str>, secret: &SecretString) -> bool {
    let strip = |v: &str| v.strip_prefix("Bearer ").unwrap_or(v).trim().to_string();
    let Some(given) = header else { return false };
    constant_time_eq(
        strip(given).as_bytes(),
        strip(secret.expose_secret()).as_bytes(),
    )
}

#[derive(Debug, Deserialize)]
struct Envelope {
    event: Option<Event>,
}

#[derive(Debug, Deserialize)]
struct Event {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    event_timestamp_ms: Option<i64>,
    app_user_id: Option<String>,
    original_app_user_id: Option<String>,
    aliases: Option<Vec<String>>,
    product_id: Option<String>,
    entitlement_ids: Option<Vec<String>>,
    expiration_at_ms: Option<i64>,
    grace_period_expiration_at_ms: Option<i64>,
    store: Option<String>,
    environment: Option<String>,
    cancel_reason: Option<String>,
    transaction_id: Option<String>,
    original_transaction_id: Option<String>,
    transferred_from: Option<Vec<String>>,
    transferred_to: Option<Vec<String>>,
}

/// Parses and interprets one webhook body. `products` maps product ids to entitlements, used when
/// the event carries no `entitlement_ids`.
pub fn parse(
    body: &[u8],
    products: &BTreeMap<String, Vec<String>>,
) -> Result<BillingEvent, Vec<Invalid>> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        vec![Invalid::new(
            "body",
            format!("is not a RevenueCat event: {e}"),
        )]
    })?;
    let event = envelope
        .event
        .ok_or_else(|| vec![Invalid::new("event", "is required")])?;
    let mut problems = Vec::new();
    let id = required(&mut problems, "event.id", event.id.as_deref());
    let kind = required(&mut problems, "event.type", event.kind.as_deref());
    let at = event.event_timestamp_ms.and_then(from_millis);
    if at.is_none() {
        problems.push(Invalid::new(
            "event.event_timestamp_ms",
            "is required (milliseconds since the epoch)",
        ));
    }
    let ids = user_ids(&event);
    if ids.iter().any(|i| !valid_id(i)) {
        problems.push(Invalid::new(
            "event.app_user_id",
            "user ids must be 1 to 255 characters without control characters",
        ));
    }
    let (Some(id), Some(kind), Some(at), true) = (id, kind, at, problems.is_empty()) else {
        return Err(problems);
    };
    let user_id = ids
        .iter()
        .find(|i| !i.starts_with(ANONYMOUS))
        .or(ids.first())
        .cloned();
    let environment = match event.environment.as_deref() {
        Some("SANDBOX") => Environment::Sandbox,
        _ => Environment::Production,
    };
    let effects = effects(&event, &kind, user_id.as_deref(), environment, products)?;
    let aliases = ids
        .into_iter()
        .filter(|i| Some(i) != user_id.as_ref())
        .collect();
    Ok(BillingEvent {
        provider: Provider::RevenueCat,
        id,
        kind,
        user_id,
        subject: None,
        product_id: event.product_id.clone(),
        environment,
        at,
        aliases,
        effects,
    })
}

fn required(problems: &mut Vec<Invalid>, field: &'static str, v: Option<&str>) -> Option<String> {
    match v {
        Some(v) if valid_id(v) => Some(v.to_string()),
        _ => {
            problems.push(Invalid::new(
                field,
                "is required: 1 to 255 characters without control characters",
            ));
            None
        }
    }
}

/// Every id the event knows the user by, the current one first, without repeats.
fn user_ids(event: &Event) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let candidates = event
        .app_user_id
        .iter()
        .chain(event.original_app_user_id.iter())
        .chain(event.aliases.iter().flatten());
    for id in candidates {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids
}

/// What the event type means for the subscription it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meaning {
    /// Access until expiry, renewing.
    Active,
    /// Access until expiry, not renewing.
    Ending,
    /// Payment failed: access through the grace period, still renewing.
    Grace,
    /// Access removed.
    Revoked,
}

fn meaning(kind: &str, event: &Event) -> Option<Meaning> {
    Some(match kind {
        "INITIAL_PURCHASE" | "RENEWAL" | "UNCANCELLATION" | "SUBSCRIPTION_EXTENDED" => {
            Meaning::Active
        }
        "NON_RENEWING_PURCHASE" | "TEMPORARY_ENTITLEMENT_GRANT" | "SUBSCRIPTION_PAUSED" => {
            Meaning::Ending
        }
        // A refund ends access now; any other cancellation lets it run to expiry.
        "CANCELLATION" if event.cancel_reason.as_deref() == Some("CUSTOMER_SUPPORT") => {
            Meaning::Revoked
        }
        "CANCELLATION" => Meaning::Ending,
        "BILLING_ISSUE" => Meaning::Grace,
        "EXPIRATION" => Meaning::Revoked,
        _ => return None,
    })
}

fn effects(
    event: &Event,
    kind: &str,
    user_id: Option<&str>,
    environment: Environment,
    products: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<Effect>, Vec<Invalid>> {
    if kind == "TRANSFER" {
        let to = event.transferred_to.clone().unwrap_or_default();
        let from = event.transferred_from.clone().unwrap_or_default();
        let Some(to) = to.into_iter().next().filter(|t| valid_id(t)) else {
            return Err(vec![Invalid::new(
                "event.transferred_to",
                "names no user to transfer to",
            )]);
        };
        if from.is_empty() || from.iter().any(|f| !valid_id(f)) {
            return Err(vec![Invalid::new(
                "event.transferred_from",
                "names no valid user to transfer from",
            )]);
        }
        return Ok(vec![Effect::Transfer { from, to }]);
    }
    let Some(meaning) = meaning(kind, event) else {
        return Ok(Vec::new());
    };
    let (Some(user), Some(product)) = (user_id, event.product_id.as_deref()) else {
        return Err(vec![Invalid::new(
            "event.product_id",
            "a purchase event needs app_user_id and product_id",
        )]);
    };
    if !valid_id(product) {
        return Err(vec![Invalid::new("event.product_id", "is not a valid id")]);
    }
    let transaction = event
        .original_transaction_id
        .as_deref()
        .or(event.transaction_id.as_deref())
        .filter(|t| valid_id(t));
    let key = match transaction {
        Some(t) => format!("{}:{t}", environment.as_str()),
        None => format!("{}:{user}:{product}", environment.as_str()),
    };
    let entitlements = match &event.entitlement_ids {
        Some(ids) if !ids.is_empty() => ids.clone(),
        _ => products.get(product).cloned().unwrap_or_default(),
    };
    let expires_at = event.expiration_at_ms.and_then(from_millis);
    let grace_until = match meaning {
        Meaning::Grace => event.grace_period_expiration_at_ms.and_then(from_millis),
        _ => None,
    };
    Ok(vec![Effect::Subscription(SubscriptionState {
        key,
        subject: user.to_string(),
        environment,
        platform: platform(event.store.as_deref()),
        product_id: product.to_string(),
        entitlements,
        grants: meaning != Meaning::Revoked,
        expires_at,
        grace_until,
        will_renew: matches!(meaning, Meaning::Active | Meaning::Grace),
        rank: 0,
        recovered: matches!(kind, "INITIAL_PURCHASE" | "RENEWAL"),
        tenant: None,
    })])
}

/// The platform a RevenueCat `store` sells on.
pub fn platform(store: Option<&str>) -> String {
    match store {
        Some("APP_STORE") => "ios",
        Some("MAC_APP_STORE") => "macos",
        Some("PLAY_STORE") => "android",
        Some("AMAZON") => "amazon",
        Some("STRIPE" | "RC_BILLING" | "PADDLE") => "web",
        Some("ROKU") => "roku",
        Some("PROMOTIONAL") => "promotional",
        Some("TEST_STORE") => "test",
        Some(other) => return other.to_ascii_lowercase(),
        None => "unknown",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[test]
    fn authorization_accepts_the_value_with_or_without_bearer() {
        let s = secret("s3cret-value");
        assert!(authorized(Some("s3cret-value"), &s));
        assert!(authorized(Some("Bearer s3cret-value"), &s));
        assert!(authorized(
            Some("Bearer s3cret-value"),
            &secret("Bearer s3cret-value")
        ));
        assert!(!authorized(Some("Bearer s3cret-valuE"), &s));
        assert!(!authorized(Some(""), &s));
        assert!(!authorized(None, &s));
    }

    #[test]
    fn stores_map_to_platforms() {
        assert_eq!(platform(Some("APP_STORE")), "ios");
        assert_eq!(platform(Some("PLAY_STORE")), "android");
        assert_eq!(platform(Some("STRIPE")), "web");
        assert_eq!(platform(Some("NEW_STORE")), "new_store");
        assert_eq!(platform(None), "unknown");
    }

    #[test]
    fn malformed_bodies_name_the_field() {
        let products = BTreeMap::new();
        let err = parse(b"{not json", &products).unwrap_err();
        assert_eq!(err[0].field, "body");
        let err = parse(br#"{"api_version":"1.0"}"#, &products).unwrap_err();
        assert_eq!(err[0].field, "event");
        let err = parse(br#"{"event":{"type":"RENEWAL"}}"#, &products).unwrap_err();
        assert!(err.iter().any(|e| e.field == "event.id"));
    }

    #[test]
    fn the_user_is_the_first_id_that_is_not_anonymous() {
        let body = br#"{"event":{"id":"e1","type":"TEST","event_timestamp_ms":1,
            "app_user_id":"$RCAnonymousID:a","original_app_user_id":"user-1",
            "aliases":["$RCAnonymousID:a","user-1"]}}"#;
        let event = parse(body, &BTreeMap::new()).unwrap();
        assert_eq!(event.user_id.as_deref(), Some("user-1"));
        assert_eq!(event.aliases, vec!["$RCAnonymousID:a".to_string()]);
        assert!(event.effects.is_empty());
    }
}
