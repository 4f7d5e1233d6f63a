//! Realistic Stripe webhook bodies, for `keel dev webhook` and tests.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

/// The Stripe event types `event` knows how to make.
pub const TYPES: &[&str] = &[
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
];

/// The Stripe customer id samples use for `user`.
fn customer_of(user: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, user.as_bytes());
    let hex: String = digest.as_ref()[..7]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("cus_{hex}")
}

/// A Stripe event of `kind` (API version 2025-03-31.basil) for `user` subscribed to the price
/// whose product is `product`, happening `now`.
pub fn event(kind: &str, user: &str, product: &str, now: DateTime<Utc>) -> Option<Value> {
    if !TYPES.contains(&kind) {
        return None;
    }
    let customer = customer_of(user);
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
