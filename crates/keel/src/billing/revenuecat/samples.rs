//! Realistic RevenueCat webhook bodies, for `keel dev webhook`, benchmarks and tests.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use super::ANONYMOUS;

/// The RevenueCat event types `event` knows how to make.
pub const TYPES: &[&str] = &[
    "INITIAL_PURCHASE",
    "RENEWAL",
    "CANCELLATION",
    "UNCANCELLATION",
    "NON_RENEWING_PURCHASE",
    "SUBSCRIPTION_PAUSED",
    "EXPIRATION",
    "BILLING_ISSUE",
    "PRODUCT_CHANGE",
    "TRANSFER",
    "SUBSCRIPTION_EXTENDED",
    "TEMPORARY_ENTITLEMENT_GRANT",
    "TEST",
];

/// The store's id of `user`'s subscription to `product` in samples: the same for every sample
/// event of that pair, so a purchase and a later expiration describe one subscription.
fn original_transaction_of(user: &str, product: &str) -> String {
    let input = format!("{user}\n{product}");
    let digest = ring::digest::digest(&ring::digest::SHA256, input.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    format!("2000000{:09}", u64::from_be_bytes(first) % 1_000_000_000)
}

/// A RevenueCat webhook body of `kind` for `user` buying `product`, happening `now`.
pub fn event(kind: &str, user: &str, product: &str, now: DateTime<Utc>) -> Option<Value> {
    if !TYPES.contains(&kind) {
        return None;
    }
    let ms = |t: DateTime<Utc>| t.timestamp_millis();
    let id = uuid::Uuid::new_v4().to_string().to_uppercase();
    if kind == "TRANSFER" {
        return Some(json!({
            "api_version": "1.0",
            "event": {
                "app_id": "app1234567890",
                "event_timestamp_ms": ms(now),
                "id": id,
                "store": "APP_STORE",
                "transferred_from": [format!("{ANONYMOUS}{}", uuid::Uuid::new_v4().simple())],
                "transferred_to": [user],
                "type": "TRANSFER",
                "environment": "SANDBOX"
            }
        }));
    }
    let expires = match kind {
        "EXPIRATION" => Some(now),
        "NON_RENEWING_PURCHASE" => None,
        "TEMPORARY_ENTITLEMENT_GRANT" => Some(now + Duration::hours(24)),
        _ => Some(now + Duration::days(30)),
    };
    let mut event = json!({
        "event_timestamp_ms": ms(now),
        "product_id": product,
        "period_type": "NORMAL",
        "purchased_at_ms": ms(now),
        "expiration_at_ms": expires.map(ms),
        "environment": "SANDBOX",
        "entitlement_id": null,
        "entitlement_ids": null,
        "presented_offering_id": null,
        "transaction_id": "2000000123456789",
        "original_transaction_id": original_transaction_of(user, product),
        "is_family_share": false,
        "country_code": "US",
        "app_user_id": user,
        "aliases": [user],
        "original_app_user_id": user,
        "currency": "USD",
        "price": 4.99,
        "price_in_purchased_currency": 4.99,
        "subscriber_attributes": {},
        "store": "APP_STORE",
        "takehome_percentage": 0.7,
        "tax_percentage": 0.0,
        "commission_percentage": 0.3,
        "offer_code": null,
        "type": kind,
        "id": id,
        "app_id": "app1234567890"
    });
    let extra = match kind {
        "CANCELLATION" => json!({ "cancel_reason": "UNSUBSCRIBE" }),
        "EXPIRATION" => json!({ "expiration_reason": "UNSUBSCRIBE", "price": 0.0 }),
        "BILLING_ISSUE" => json!({
            "grace_period_expiration_at_ms": ms(now + Duration::days(6))
        }),
        "PRODUCT_CHANGE" => json!({ "new_product_id": format!("{product}.yearly") }),
        "RENEWAL" => json!({ "is_trial_conversion": false, "renewal_number": 2 }),
        _ => json!({}),
    };
    if let (Some(event), Value::Object(extra)) = (event.as_object_mut(), extra) {
        event.extend(extra);
    }
    Some(json!({ "api_version": "1.0", "event": event }))
}
