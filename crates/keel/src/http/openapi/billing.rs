//! Billing's paths and schemas: the webhooks (`http::webhooks`), the caller's entitlements
//! (`http::entitlements`) and the admin user routes (`http::admin::users`).

use serde_json::{json, Map, Value};

use super::op::{json_answer, nullable, path_param, query_param, schema_ref, Op};

pub(super) fn add(paths: &mut Map<String, Value>) {
    paths.insert(
        "/v1/me/entitlements".into(),
        json!({ "get": entitlements() }),
    );
    paths.insert("/v1/me/entitlements/sync".into(), json!({ "post": sync() }));
    paths.insert(
        "/webhooks/revenuecat".into(),
        json!({ "post": webhook("revenuecat", "RevenueCat", "revenuecatWebhook", REVENUECAT) }),
    );
    paths.insert(
        "/webhooks/stripe".into(),
        json!({ "post": webhook("stripe", "Stripe", "stripeSignature", STRIPE) }),
    );
    paths.insert("/admin/api/users/{id}".into(), json!({ "get": user() }));
    paths.insert(
        "/admin/api/users/{id}/entitlements".into(),
        json!({ "get": user_entitlements() }),
    );
    paths.insert(
        "/admin/api/users/{id}/grants".into(),
        json!({ "post": grant() }),
    );
    paths.insert(
        "/admin/api/users/{id}/grants/{entitlement}".into(),
        json!({ "delete": revoke() }),
    );
}

pub(super) fn schemas(all: &mut Map<String, Value>) {
    all.insert("Entitlement".into(), entitlement());
    all.insert(
        "Entitlements".into(),
        json!({
            "type": "object",
            "required": ["entitlements"],
            "properties": {
                "entitlements": {
                    "type": "object",
                    "additionalProperties": schema_ref("Entitlement"),
                    "description": "Every entitlement the user holds or held, by name."
                }
            }
        }),
    );
    all.insert(
        "WebhookReceived".into(),
        json!({
            "type": "object",
            "required": ["received", "duplicate"],
            "properties": {
                "received": { "type": "boolean", "const": true },
                "duplicate": {
                    "type": "boolean",
                    "description": "The provider delivered this event id before; nothing changed."
                }
            }
        }),
    );
    all.insert(
        "Grant".into(),
        json!({
            "type": "object",
            "required": ["entitlement", "reason"],
            "additionalProperties": false,
            "properties": {
                "entitlement": { "type": "string", "minLength": 1, "maxLength": 255 },
                "expires_at": nullable(json!({ "type": "string", "format": "date-time" })),
                "reason": { "type": "string", "minLength": 1, "maxLength": 500 }
            }
        }),
    );
}

/// `billing::Entitlement`.
fn entitlement() -> Value {
    json!({
        "type": "object",
        "required": ["active", "expires_at", "source", "product_id", "will_renew", "in_grace_period"],
        "properties": {
            "active": { "type": "boolean" },
            "expires_at": nullable(json!({
                "type": "string",
                "format": "date-time",
                "description": "When access ends (the grace period's end while in grace); null: never."
            })),
            "source": { "type": "string", "enum": ["revenuecat", "stripe", "manual"] },
            "product_id": nullable(json!({ "type": "string" })),
            "will_renew": { "type": "boolean" },
            "in_grace_period": {
                "type": "boolean",
                "description": "A payment failed and access continues through the store's grace period."
            }
        }
    })
}

const REVENUECAT: &str = "`Authorization` must equal `REVENUECAT_WEBHOOK_SECRET` (a `Bearer ` \
    prefix is accepted), compared in constant time. Every documented event type is handled; \
    unknown types are stored and acknowledged without effect.";
const STRIPE: &str = "`Stripe-Signature` is verified over the raw body: any `v1` signature under \
    any secret of `STRIPE_WEBHOOK_SECRET`, its timestamp within 300 s. Handles \
    checkout.session.completed, customer.subscription.*, invoice.paid and \
    invoice.payment_failed; other types are stored and acknowledged without effect.";

fn webhook(id: &str, provider: &str, scheme: &str, text: &str) -> Value {
    Op::new(
        "Webhooks",
        &format!("{id}Webhook"),
        &format!("{provider} webhook"),
    )
    .text(&format!(
        "{text} The event is stored once per event id with its raw payload sealed; deliveries \
             in any order end as if each event were applied once in event-time order. The route \
             exists only when the provider is enabled (`BILLING_PROVIDERS`)."
    ))
    .security(json!([{ scheme: [] }]))
    .body(json!({ "type": "object" }))
    .answer(
        200,
        json_answer("Durably stored.", schema_ref("WebhookReceived")),
    )
    .problem(
        400,
        "The body is not JSON, or lacks the event's id, type or time.",
    )
    .problem(
        401,
        "`webhook-unauthorized`: the authentication does not match.",
    )
    .problem(413, "The body is larger than `BODY_LIMIT_BYTES`.")
    .problem(415, "The body is not `application/json`.")
    .problem(503, "`database-unavailable` or `timeout`.")
    .build()
}

fn entitlements() -> Value {
    Op::new("Users", "getEntitlements", "The caller's entitlements")
        .text(
            "From RevenueCat and Stripe webhooks and manual grants. Changes show in every \
             process within 5 seconds.",
        )
        .security(json!([{ "bearer": [] }]))
        .answer(
            200,
            json_answer("The entitlements.", schema_ref("Entitlements")),
        )
        .problem(401, "No bearer token, or one that does not verify.")
        .problem(
            503,
            "`auth-unavailable`, `database-unavailable` or `timeout`.",
        )
        .build()
}

fn sync() -> Value {
    Op::new("Users", "syncEntitlements", "Sync from RevenueCat now")
        .text(
            "Asks RevenueCat's REST API (`GET /v1/subscribers/{id}`, 10 s timeout) for the \
             caller, records what it says and answers the entitlements.",
        )
        .security(json!([{ "bearer": [] }]))
        .answer(
            200,
            json_answer("The entitlements.", schema_ref("Entitlements")),
        )
        .problem(401, "No bearer token, or one that does not verify.")
        .problem(404, "`not-configured`: `REVENUECAT_API_KEY` is not set.")
        .problem(429, "The `sensitive` rate limit is used up.")
        .problem(
            502,
            "`revenuecat-unavailable`: RevenueCat failed or did not answer.",
        )
        .problem(503, "`database-unavailable` or `timeout`.")
        .build()
}

fn admin(id: &str, summary: &str) -> Op {
    Op::new("Billing", id, summary)
        .security(json!([{ "adminToken": [] }, { "bearer": [] }]))
        .param(path_param(
            "id",
            "The user id.",
            json!({ "type": "string" }),
        ))
        .problem(401, "Neither `ADMIN_TOKEN` nor a user token that verifies.")
        .problem(
            403,
            "`admin-required`: the user is not in `ADMIN_USER_IDS`.",
        )
        .problem(503, "`database-unavailable` or `timeout`.")
}

fn user() -> Value {
    admin("getUser", "Look a user up")
        .text("The user row (null when only a purchase names the id) and the entitlements.")
        .answer(200, json_answer("The user.", json!({ "type": "object" })))
        .problem(404, "No user row and no purchase with this id.")
        .build()
}

fn user_entitlements() -> Value {
    admin("getUserEntitlements", "A user's entitlements")
        .answer(
            200,
            json_answer("The entitlements.", schema_ref("Entitlements")),
        )
        .build()
}

fn grant() -> Value {
    admin("grantEntitlement", "Grant an entitlement")
        .text("A manual grant (source `manual`) until `expires_at` or forever; audited.")
        .body(schema_ref("Grant"))
        .answer(
            200,
            json_answer("The entitlements now.", schema_ref("Entitlements")),
        )
        .problem(400, "The body is not JSON.")
        .problem(413, "The body is larger than `BODY_LIMIT_BYTES`.")
        .problem(415, "The body is not `application/json`.")
        .problem(422, "A field is missing or invalid; `errors` names it.")
        .build()
}

fn revoke() -> Value {
    admin("revokeEntitlement", "Revoke an entitlement")
        .text(
            "Revokes the entitlement whatever grants it (a purchase or a manual grant) until \
             `until`, or until the next manual grant; audited.",
        )
        .param(path_param(
            "entitlement",
            "The entitlement.",
            json!({ "type": "string" }),
        ))
        .param(query_param(
            "until",
            "When the revocation ends (RFC 3339).",
            json!({ "type": "string", "format": "date-time" }),
        ))
        .param(query_param(
            "reason",
            "Why, for the audit trail.",
            json!({ "type": "string" }),
        ))
        .answer(
            200,
            json_answer("The entitlements now.", schema_ref("Entitlements")),
        )
        .problem(400, "`until` is not RFC 3339.")
        .problem(422, "The id, entitlement or reason is invalid.")
        .build()
}
