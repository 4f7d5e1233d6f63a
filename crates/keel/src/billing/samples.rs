//! Realistic sample events in each provider's wire format, for `keel dev webhook` and benchmarks.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

/// The RevenueCat event types `revenuecat` knows how to make.
pub const REVENUECAT_TYPES: &[&str] = &[
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

/// The Stripe event types `stripe` knows how to make.
pub const STRIPE_TYPES: &[&str] = &[
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
];

/// A RevenueCat webhook body of `kind` for `user` buying `product`, happening `now`.
pub fn revenuecat(kind: &str, user: &str, product: &str, now: DateTime<Utc>) -> Option<Value> {
    if !REVENUECAT_TYPES.contains(&kind) {
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
                "transferred_from": [format!("$RCAnonymousID:{}", uuid::Uuid::new_v4().simple())],
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
        "original_transaction_id": format!("2000000{}", &uuid::Uuid::new_v4().simple().to_string()[..9]),
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

/// The Stripe customer id samples use for `user`.
pub fn stripe_customer(user: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, user.as_bytes());
    let hex: String = digest.as_ref()[..7]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("cus_{hex}")
}

/// A Stripe event of `kind` (API version 2025-03-31.basil) for `user` subscribed to the price
/// whose product is `product`, happening `now`.
pub fn stripe(kind: &str, user: &str, product: &str, now: DateTime<Utc>) -> Option<Value> {
    if !STRIPE_TYPES.contains(&kind) {
        return None;
    }
    let customer = stripe_customer(user);
    let subscription = format!("sub_{}", &customer[4..]);
    let start = now.timestamp();
    let end = (now + Duration::days(30)).timestamp();
    let status = match kind {
        "customer.subscription.deleted" => "canceled",
        "customer.subscription.updated" => "past_due",
        _ => "active",
    };
    let price = json!({
        "id": format!("price_{}", &customer[4..]),
        "object": "price",
        "active": true,
        "currency": "usd",
        "lookup_key": null,
        "product": product,
        "recurring": { "interval": "month", "interval_count": 1 },
        "type": "recurring",
        "unit_amount": 999
    });
    let object = match kind {
        "checkout.session.completed" => json!({
            "id": format!("cs_test_{}", uuid::Uuid::new_v4().simple()),
            "object": "checkout.session",
            "client_reference_id": user,
            "customer": customer,
            "subscription": subscription,
            "mode": "subscription",
            "status": "complete",
            "payment_status": "paid",
            "currency": "usd",
            "amount_total": 999,
            "livemode": false,
            "metadata": {}
        }),
        "invoice.paid" | "invoice.payment_failed" => json!({
            "id": format!("in_{}", uuid::Uuid::new_v4().simple()),
            "object": "invoice",
            "customer": customer,
            "status": if kind == "invoice.paid" { "paid" } else { "open" },
            "currency": "usd",
            "amount_due": 999,
            "amount_paid": if kind == "invoice.paid" { 999 } else { 0 },
            "billing_reason": "subscription_cycle",
            "livemode": false,
            "parent": {
                "type": "subscription_details",
                "subscription_details": { "subscription": subscription, "metadata": {} }
            },
            "lines": {
                "object": "list",
                "data": [{
                    "id": format!("il_{}", uuid::Uuid::new_v4().simple()),
                    "object": "line_item",
                    "amount": 999,
                    "currency": "usd",
                    "period": { "start": start, "end": end },
                    "pricing": {
                        "type": "price_details",
                        "price_details": { "price": price["id"], "product": product }
                    },
                    "quantity": 1
                }],
                "has_more": false
            }
        }),
        _ => json!({
            "id": subscription,
            "object": "subscription",
            "customer": customer,
            "status": status,
            "cancel_at_period_end": false,
            "canceled_at": if status == "canceled" { json!(start) } else { Value::Null },
            "ended_at": if status == "canceled" { json!(start) } else { Value::Null },
            "created": start,
            "currency": "usd",
            "livemode": false,
            "metadata": { "user_id": user },
            "items": {
                "object": "list",
                "data": [{
                    "id": format!("si_{}", &customer[4..]),
                    "object": "subscription_item",
                    "current_period_start": start,
                    "current_period_end": end,
                    "price": price,
                    "quantity": 1
                }],
                "has_more": false
            }
        }),
    };
    Some(json!({
        "id": format!("evt_{}", uuid::Uuid::new_v4().simple()),
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": start,
        "data": { "object": object },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": kind
    }))
}
