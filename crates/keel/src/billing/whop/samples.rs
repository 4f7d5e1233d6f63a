//! Realistic Whop webhook bodies (API version v1), for `keel dev webhook` and tests.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};

/// The Whop event types `event` knows how to make.
pub const TYPES: &[&str] = &[
    "membership.activated",
    "membership.deactivated",
    "membership.cancel_at_period_end_changed",
    "payment.succeeded",
    "payment.failed",
];

/// A short stable id with `prefix`, derived from `seed`.
fn derived(prefix: &str, seed: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, seed.as_bytes());
    let hex: String = digest.as_ref()[..7]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{prefix}{hex}")
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The company samples sell `product` in.
pub fn company_of(product: &str) -> String {
    derived("biz_", product)
}

/// A Whop v1 event of `kind` for the Whop user `user` holding `product`, happening `now`.
pub fn event(kind: &str, user: &str, product: &str, now: DateTime<Utc>) -> Option<Value> {
    if !TYPES.contains(&kind) {
        return None;
    }
    let company =
        json!({ "id": company_of(product), "title": "Sample Company", "route": "sample-company" });
    let membership_id = derived("mem_", &format!("{user}:{product}"));
    let plan = json!({ "id": derived("plan_", product) });
    let product_ref = json!({ "id": product, "title": "Pro" });
    let member = json!({
        "id": user,
        "username": "sample-member",
        "name": "Sample Member",
        "email": null
    });
    let data = match kind {
        "payment.succeeded" | "payment.failed" => {
            let paid = kind == "payment.succeeded";
            json!({
                "id": derived("pay_", &format!("{user}:{product}:{}", now.timestamp())),
                "status": if paid { "paid" } else { "open" },
                "substatus": if paid { "succeeded" } else { "failed" },
                "created_at": iso(now),
                "paid_at": if paid { json!(iso(now)) } else { Value::Null },
                "currency": "usd",
                "subtotal": 19.0,
                "total": 19.0,
                "usd_total": 19.0,
                "billing_reason": "subscription_cycle",
                "failure_message": if paid { Value::Null } else { json!("Your card was declined.") },
                "user": member,
                "membership": { "id": membership_id, "status": if paid { "active" } else { "past_due" } },
                "product": product_ref,
                "plan": plan,
                "company": company,
                "metadata": {}
            })
        }
        _ => {
            let (status, cancel_at_period_end) = match kind {
                "membership.deactivated" => ("canceled", false),
                "membership.cancel_at_period_end_changed" => ("canceling", true),
                _ => ("active", false),
            };
            json!({
                "id": membership_id,
                "status": status,
                "created_at": iso(now - Duration::days(1)),
                "updated_at": iso(now),
                "manage_url": format!("https://whop.com/billing/manage/{membership_id}"),
                "member": { "id": derived("mber_", user) },
                "user": member,
                "renewal_period_start": iso(now),
                "renewal_period_end": iso(now + Duration::days(30)),
                "cancel_at_period_end": cancel_at_period_end,
                "canceled_at": if status == "canceled" { json!(iso(now)) } else { Value::Null },
                "company": company,
                "plan": plan,
                "product": product_ref,
                "promo_code": null,
                "currency": "usd",
                "license_key": null,
                "metadata": {},
                "payment_collection_paused": false
            })
        }
    };
    Some(json!({
        "id": format!("msg_{}", uuid::Uuid::new_v4().simple()),
        "api_version": "v1",
        "timestamp": iso(now),
        "type": kind,
        "company_id": company["id"],
        "data": data
    }))
}
