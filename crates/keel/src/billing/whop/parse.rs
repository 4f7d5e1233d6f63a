//! Whop webhook bodies into what they mean: the current (`api_version: "v1"`) envelope
//! `{id, type, timestamp, company_id, data}` and the legacy (`v5`) `{action, data}`.
//!
//! A membership event carries the whole membership, so it becomes the membership's complete
//! state: held by the Whop user it names, in the company it belongs to (the tenant), granting the
//! entitlements `[products]` maps its product and plan ids to. Payments, refunds and disputes are
//! stored against the member and product without changing access: Whop follows each change of
//! access with a membership event.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::billing::model::{
    valid_id, BillingEvent, Effect, Environment, Invalid, Provider, SubscriptionState,
};

/// Membership statuses in which the member has access.
const GRANTING: &[&str] = &["trialing", "active", "past_due", "completed", "canceling"];
/// Statuses that renew on their own.
const RENEWING: &[&str] = &["trialing", "active", "past_due"];

/// Parses and interprets one (verified) Whop body.
pub fn parse(
    body: &[u8],
    products: &BTreeMap<String, Vec<String>>,
) -> Result<BillingEvent, Vec<Invalid>> {
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| vec![Invalid::new("body", format!("is not a Whop event: {e}"))])?;
    let legacy = root.get("action").is_some() && root.get("type").is_none();
    let mut problems = Vec::new();
    let kind = if legacy {
        text(&root, "action")
    } else {
        text(&root, "type")
    };
    if kind.is_none() {
        problems.push(Invalid::new(
            if legacy { "action" } else { "type" },
            "is required",
        ));
    }
    let data = root.get("data").filter(|d| d.is_object());
    if data.is_none() {
        problems.push(Invalid::new("data", "is required"));
    }
    let id = match text(&root, "id") {
        Some(id) => Some(id.to_string()),
        None if legacy => Some(body_digest(body)),
        None => {
            problems.push(Invalid::new("id", "is required"));
            None
        }
    };
    let at = event_time(&root, data, legacy);
    if at.is_none() {
        problems.push(Invalid::new(
            "timestamp",
            "is required (ISO 8601, or Unix seconds in a legacy event)",
        ));
    }
    let (Some(id), Some(kind), Some(data), Some(at)) = (id, kind, data, at) else {
        return Err(problems);
    };
    let mut event = BillingEvent {
        provider: Provider::Whop,
        id,
        kind: kind.to_string(),
        user_id: reference(data, "user"),
        subject: None,
        product_id: reference(data, "product").or_else(|| reference(data, "plan")),
        environment: Environment::Production,
        at,
        aliases: Vec::new(),
        effects: Vec::new(),
    };
    if event.kind.starts_with("membership.") {
        let company =
            reference(data, "company").or_else(|| text(&root, "company_id").map(str::to_string));
        let state = membership(data, &event.kind, company, products)?;
        event.effects.push(Effect::Subscription(state));
    }
    Ok(event)
}

/// The membership's state after `kind`.
fn membership(
    data: &Value,
    kind: &str,
    company: Option<String>,
    products: &BTreeMap<String, Vec<String>>,
) -> Result<SubscriptionState, Vec<Invalid>> {
    let (Some(key), Some(user)) = (text(data, "id"), reference(data, "user")) else {
        return Err(vec![Invalid::new(
            "data",
            "a membership needs its id and its user",
        )]);
    };
    let product = reference(data, "product");
    let plan = reference(data, "plan");
    let status = text(data, "status").unwrap_or("");
    let grants = match kind {
        "membership.activated" | "membership.went_valid" => true,
        "membership.deactivated" | "membership.went_invalid" => false,
        _ => match data.get("valid").and_then(Value::as_bool) {
            Some(valid) => valid,
            None => GRANTING.contains(&status),
        },
    };
    let cancel_at_period_end = data
        .get("cancel_at_period_end")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut entitlements: Vec<String> = Vec::new();
    for grant in [&product, &plan]
        .into_iter()
        .flatten()
        .filter_map(|id| products.get(id))
        .flatten()
    {
        if !entitlements.contains(grant) {
            entitlements.push(grant.clone());
        }
    }
    Ok(SubscriptionState {
        key: key.to_string(),
        subject: user.clone(),
        environment: Environment::Production,
        platform: "whop".into(),
        product_id: product.or(plan).unwrap_or_else(|| "unknown".into()),
        entitlements,
        grants,
        expires_at: data.get("renewal_period_end").and_then(time),
        grace_until: None,
        will_renew: grants && RENEWING.contains(&status) && !cancel_at_period_end,
        rank: 0,
        recovered: matches!(status, "active" | "trialing"),
        tenant: company,
    })
}

/// When the event happened: the envelope's `timestamp`; in a legacy event, which has none, the
/// membership's or payment's own last change.
fn event_time(root: &Value, data: Option<&Value>, legacy: bool) -> Option<DateTime<Utc>> {
    if let Some(at) = root.get("timestamp").and_then(time) {
        return Some(at);
    }
    if !legacy {
        return None;
    }
    let data = data?;
    ["updated_at", "canceled_at", "created_at"]
        .iter()
        .find_map(|k| data.get(*k).and_then(time))
}

/// A time written as ISO 8601 or as Unix seconds.
fn time(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .or_else(|| {
                s.parse::<i64>()
                    .ok()
                    .and_then(|s| DateTime::from_timestamp(s, 0))
            }),
        Value::Number(n) => n.as_i64().and_then(|s| DateTime::from_timestamp(s, 0)),
        _ => None,
    }
}

/// A string field that may be stored and logged.
fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| valid_id(s))
}

/// The id of a related object: `{key: {id}}` (v1), `{key: "id"}` or `{key_id: "id"}` (v5).
fn reference(data: &Value, key: &str) -> Option<String> {
    let direct = match data.get(key) {
        Some(Value::Object(_)) => data.get(key).and_then(|o| text(o, "id")),
        Some(Value::String(_)) => text(data, key),
        _ => None,
    };
    direct
        .or_else(|| text(data, &format!("{key}_id")))
        .map(str::to_string)
}

/// The id of a legacy event, which carries none of its own: the same body delivered again is the
/// same event.
fn body_digest(body: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    let hex: String = digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v5_{hex}")
}
