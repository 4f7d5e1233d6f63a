//! Stripe webhooks: the `Stripe-Signature` scheme over the raw body, and the subscription,
//! checkout and invoice events that decide access.

mod samples;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ring::hmac;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use super::model::{
    valid_id, BillingEvent, Effect, Environment, Invalid, Provider, SubscriptionState,
};
use super::provider::{AuthHeaders, BillingProvider, Ownership};
use super::BillingError;
use crate::billing::{BillingSettings, WebhookProvider};
use crate::crypto::constant_time_eq;

/// The header Stripe signs deliveries in.
const SIGNATURE_HEADER: &str = "stripe-signature";

/// Stripe as a [`BillingProvider`].
#[derive(Debug, Clone, Copy)]
pub struct Stripe;

impl BillingProvider for Stripe {
    fn id(&self) -> Provider {
        Provider::Stripe
    }

    fn webhook_path(&self) -> &'static str {
        "/webhooks/stripe"
    }

    fn auth_headers(&self) -> &'static [&'static str] {
        &[SIGNATURE_HEADER]
    }

    fn enabled(&self, billing: &BillingSettings) -> bool {
        billing.providers.contains(&WebhookProvider::Stripe)
    }

    fn authenticate(
        &self,
        billing: &BillingSettings,
        headers: &AuthHeaders<'_>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), BillingError> {
        verify(
            headers.get(SIGNATURE_HEADER),
            body,
            &billing.stripe_webhook_secrets,
            now,
        )
        .map_err(|e| {
            BillingError::Unauthorized(match e {
                SignatureError::Missing => "signature missing",
                SignatureError::Malformed => "signature malformed",
                SignatureError::Stale => "timestamp outside tolerance",
                SignatureError::Mismatch => "signature mismatch",
            })
        })
    }

    fn parse(&self, billing: &BillingSettings, body: &[u8]) -> Result<BillingEvent, Vec<Invalid>> {
        let rules = StripeRules {
            products: &billing.products,
            past_due_grace: billing.stripe_past_due_grace,
        };
        parse(body, &rules)
    }

    fn ownership(&self) -> Ownership {
        Ownership::Customers
    }

    fn sample_types(&self) -> &'static [&'static str] {
        samples::TYPES
    }

    fn sample_product(&self) -> &'static str {
        "prod_premium"
    }

    fn sample(&self, kind: &str, user: &str, product: &str, now: DateTime<Utc>) -> Option<Value> {
        samples::event(kind, user, product, now)
    }

    fn sign(
        &self,
        billing: &BillingSettings,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<(&'static str, String)>, BillingError> {
        let secret = billing
            .stripe_webhook_secrets
            .first()
            .ok_or(BillingError::NotConfigured("STRIPE_WEBHOOK_SECRET"))?;
        let t = now.timestamp();
        let value = format!("t={t},v1={}", sign(secret.expose_secret(), t, body));
        Ok(vec![(SIGNATURE_HEADER, value)])
    }
}

/// How far a signature's timestamp may be from now, either way.
pub const TOLERANCE: Duration = Duration::from_secs(300);

/// Why a signature is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    #[error("the signature timestamp is outside the tolerance")]
    Stale,
    #[error("no v1 signature matches a configured secret")]
    Mismatch,
}

/// Verifies `header` over the raw `body`: any `v1` signature matching any secret, with its `t`
/// within [`TOLERANCE`] of `now`. Other schemes (`v0`) are ignored.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[SecretString],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.push(sig),
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now.timestamp() - t).unsigned_abs() > TOLERANCE.as_secs() {
        return Err(SignatureError::Stale);
    }
    for secret in secrets {
        let expected = sign(secret.expose_secret(), t, body);
        if signatures
            .iter()
            .any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes()))
        {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// The lowercase hex `v1` signature of `body` at `timestamp` under `secret` (the whole `whsec_…`
/// string is the key).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    ctx.sign()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, Deserialize)]
struct Event {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    created: Option<i64>,
    #[serde(default)]
    livemode: bool,
    data: Option<Data>,
}

#[derive(Debug, Deserialize)]
struct Data {
    object: Value,
}

/// How Stripe events are interpreted.
#[derive(Debug, Clone)]
pub struct StripeRules<'a> {
    pub products: &'a BTreeMap<String, Vec<String>>,
    /// How long a `past_due` subscription keeps access after its period ends.
    pub past_due_grace: Duration,
}

/// Parses and interprets one (verified) event body.
pub fn parse(body: &[u8], rules: &StripeRules<'_>) -> Result<BillingEvent, Vec<Invalid>> {
    let event: Event = serde_json::from_slice(body)
        .map_err(|e| vec![Invalid::new("body", format!("is not a Stripe event: {e}"))])?;
    let mut problems = Vec::new();
    let id = event.id.filter(|i| valid_id(i));
    if id.is_none() {
        problems.push(Invalid::new("id", "is required"));
    }
    let kind = event.kind.filter(|k| valid_id(k));
    if kind.is_none() {
        problems.push(Invalid::new("type", "is required"));
    }
    let at = event
        .created
        .and_then(|c| DateTime::<Utc>::from_timestamp(c, 0));
    if at.is_none() {
        problems.push(Invalid::new("created", "is required (Unix seconds)"));
    }
    let object = event.data.map(|d| d.object);
    if object.as_ref().is_none_or(|o| !o.is_object()) {
        problems.push(Invalid::new("data.object", "is required"));
    }
    let (Some(id), Some(kind), Some(at), Some(object)) = (id, kind, at, object) else {
        return Err(problems);
    };
    let environment = if event.livemode {
        Environment::Production
    } else {
        Environment::Sandbox
    };
    let mut parsed = BillingEvent {
        provider: Provider::Stripe,
        id,
        kind,
        user_id: None,
        subject: None,
        product_id: None,
        environment,
        at,
        aliases: Vec::new(),
        effects: Vec::new(),
    };
    match parsed.kind.as_str() {
        "checkout.session.completed" => checkout(&object, &mut parsed),
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted"
        | "customer.subscription.paused"
        | "customer.subscription.resumed" => subscription(&object, rules, &mut parsed)?,
        "invoice.paid" | "invoice.payment_succeeded" => invoice(&object, rules, &mut parsed, true),
        "invoice.payment_failed" => invoice(&object, rules, &mut parsed, false),
        _ => {}
    }
    Ok(parsed)
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = v;
    for key in path {
        v = v.get(key)?;
    }
    // Expandable fields arrive either as an id or as the object itself.
    match v {
        Value::String(s) => Some(s.as_str()),
        Value::Object(_) => v.get("id").and_then(Value::as_str),
        _ => None,
    }
    .filter(|s| valid_id(s))
}

fn user_from_metadata(object: &Value) -> Option<String> {
    ["user_id", "keel_user_id"]
        .iter()
        .find_map(|k| text(object, &["metadata", k]))
        .map(str::to_string)
}

fn link(parsed: &mut BillingEvent, customer: Option<&str>, user: Option<String>) {
    parsed.subject = customer.map(str::to_string);
    if let (Some(customer), Some(user)) = (customer, &user) {
        parsed.effects.push(Effect::Link {
            external_id: customer.to_string(),
            user_id: user.clone(),
        });
    }
    parsed.user_id = user;
}

fn checkout(object: &Value, parsed: &mut BillingEvent) {
    let user = text(object, &["client_reference_id"])
        .map(str::to_string)
        .or_else(|| user_from_metadata(object));
    link(parsed, text(object, &["customer"]), user);
}

fn entitlements_of(ids: &[&str], products: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for grant in ids.iter().filter_map(|id| products.get(*id)).flatten() {
        if !out.contains(grant) {
            out.push(grant.clone());
        }
    }
    out
}

fn subscription(
    object: &Value,
    rules: &StripeRules<'_>,
    parsed: &mut BillingEvent,
) -> Result<(), Vec<Invalid>> {
    let (Some(key), Some(customer)) = (text(object, &["id"]), text(object, &["customer"])) else {
        return Err(vec![Invalid::new(
            "data.object",
            "a subscription needs id and customer",
        )]);
    };
    let status = object.get("status").and_then(Value::as_str).unwrap_or("");
    let items: Vec<&Value> = object
        .pointer("/items/data")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    // API 2025-03-31 and later keep the period on the items; older versions on the subscription.
    let period_end = items
        .iter()
        .filter_map(|i| i.get("current_period_end").and_then(Value::as_i64))
        .max()
        .or_else(|| object.get("current_period_end").and_then(Value::as_i64))
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0));
    let mut ids: Vec<&str> = Vec::new();
    for item in &items {
        ids.extend(text(item, &["price", "id"]));
        ids.extend(text(item, &["price", "product"]));
        ids.extend(text(item, &["price", "lookup_key"]));
        ids.extend(text(item, &["plan", "id"]));
    }
    let product = items
        .first()
        .and_then(|i| text(i, &["price", "product"]).or_else(|| text(i, &["price", "id"])))
        .unwrap_or("unknown")
        .to_string();
    let (grants, grace_until) = match status {
        "active" | "trialing" => (true, None),
        "past_due" => (
            true,
            period_end.map(|end| {
                end + chrono::Duration::from_std(rules.past_due_grace).unwrap_or_default()
            }),
        ),
        _ => (false, None),
    };
    let cancel_at_period_end = object
        .get("cancel_at_period_end")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let will_renew = matches!(status, "active" | "trialing" | "past_due") && !cancel_at_period_end;
    let terminal = matches!(status, "canceled" | "incomplete_expired");
    link(parsed, Some(customer), user_from_metadata(object));
    parsed.product_id = Some(product.clone());
    parsed.effects.push(Effect::Subscription(SubscriptionState {
        key: key.to_string(),
        subject: customer.to_string(),
        environment: parsed.environment,
        platform: "web".into(),
        product_id: product,
        entitlements: entitlements_of(&ids, rules.products),
        grants,
        expires_at: period_end,
        grace_until,
        will_renew,
        rank: i32::from(terminal),
        recovered: matches!(status, "active" | "trialing"),
        tenant: None,
    }));
    Ok(())
}

fn invoice(object: &Value, rules: &StripeRules<'_>, parsed: &mut BillingEvent, paid: bool) {
    let customer = text(object, &["customer"]);
    link(parsed, customer, user_from_metadata(object));
    let subscription = text(object, &["parent", "subscription_details", "subscription"])
        .or_else(|| text(object, &["subscription"]));
    let lines: Vec<&Value> = object
        .pointer("/lines/data")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut ids: Vec<&str> = Vec::new();
    for line in &lines {
        ids.extend(text(line, &["pricing", "price_details", "product"]));
        ids.extend(text(line, &["pricing", "price_details", "price"]));
        ids.extend(text(line, &["price", "product"]));
        ids.extend(text(line, &["price", "id"]));
    }
    parsed.product_id = ids.first().map(|s| s.to_string());
    let until = lines
        .iter()
        .filter_map(|l| l.pointer("/period/end").and_then(Value::as_i64))
        .max()
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0));
    if let (true, Some(key), Some(customer), Some(until)) = (paid, subscription, customer, until) {
        parsed.effects.push(Effect::PaidThrough {
            key: key.to_string(),
            subject: customer.to_string(),
            environment: parsed.environment,
            product_id: parsed
                .product_id
                .clone()
                .unwrap_or_else(|| "unknown".into()),
            entitlements: entitlements_of(&ids, rules.products),
            until,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(list: &[&str]) -> Vec<SecretString> {
        list.iter()
            .map(|s| SecretString::from(s.to_string()))
            .collect()
    }

    #[test]
    fn any_v1_under_any_secret_verifies() {
        let now = Utc::now();
        let t = now.timestamp();
        let body = br#"{"id":"evt_1"}"#;
        let good = sign("whsec_new", t, body);
        let header = format!("t={t},v1={},v1={good},v0={good}", "0".repeat(64));
        let keys = secrets(&["whsec_old", "whsec_new"]);
        assert_eq!(verify(Some(&header), body, &keys, now), Ok(()));
        assert_eq!(
            verify(Some(&header), br#"{"id":"evt_2"}"#, &keys, now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn v0_alone_and_malformed_headers_are_refused() {
        let now = Utc::now();
        let t = now.timestamp();
        let body = b"{}";
        let v0 = format!("t={t},v0={}", sign("whsec_a", t, body));
        let keys = secrets(&["whsec_a"]);
        assert_eq!(
            verify(Some(&v0), body, &keys, now),
            Err(SignatureError::Malformed)
        );
        assert_eq!(verify(None, body, &keys, now), Err(SignatureError::Missing));
        assert_eq!(
            verify(Some("garbage"), body, &keys, now),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_refused_both_ways() {
        let now = Utc::now();
        let body = b"{}";
        let keys = secrets(&["whsec_a"]);
        for offset in [-301, 301] {
            let t = now.timestamp() + offset;
            let header = format!("t={t},v1={}", sign("whsec_a", t, body));
            assert_eq!(
                verify(Some(&header), body, &keys, now),
                Err(SignatureError::Stale)
            );
        }
        let t = now.timestamp() - 299;
        let header = format!("t={t},v1={}", sign("whsec_a", t, body));
        assert_eq!(verify(Some(&header), body, &keys, now), Ok(()));
    }
}
