//! The components no handler says: the security schemes, the shared problem responses and their
//! headers. The schemas come from the types the handlers read and answer.

use serde_json::{json, Map, Value};

pub(super) fn build() -> Value {
    json!({
        "schemas": {},
        "securitySchemes": security_schemes(),
        "responses": responses(),
        "headers": {
            "RequestId": {
                "description": "The request's id: an inbound value of at most 128 characters of \
                    `[A-Za-z0-9._-]` is kept, otherwise a new one is made. Every response carries \
                    it; every problem quotes it.",
                "schema": { "type": "string", "maxLength": 128 }
            },
            "RetryAfter": {
                "description": "Seconds to wait before trying again.",
                "schema": { "type": "integer", "minimum": 0 }
            },
            "RateLimit": {
                "description": "What is left of the limit (IETF httpapi draft): \
                    `\"default\";r=REMAINING;t=SECONDS_TO_RESET`.",
                "schema": { "type": "string" }
            },
            "RateLimitPolicy": {
                "description": "The limit that applies (IETF httpapi draft): \
                    `\"default\";q=300;w=60`.",
                "schema": { "type": "string" }
            },
            "WwwAuthenticate": {
                "description": "`Bearer` when no token was sent, `Bearer error=\"invalid_token\"` \
                    when one was sent but did not verify.",
                "schema": { "type": "string" }
            }
        }
    })
}

fn security_schemes() -> Value {
    json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A user's token from the identity provider (`AUTH_JWKS_URL`, \
                `AUTH_HS256_SECRET`, or `keel dev token` in development)."
        },
        "adminToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "`ADMIN_TOKEN`. A user token of an admin (`ADMIN_USER_IDS`) is accepted \
                too."
        },
        "metricsToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "`METRICS_TOKEN`, required whenever it is set."
        },
        "serviceToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "A secret of `SERVICE_TOKENS` (the app's backend; not a user token)."
        },
        "schedulerSecret": {
            "type": "http",
            "scheme": "bearer",
            "description": "`SCHEDULER_SECRET_KEY`."
        },
        "revenuecatWebhook": {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`REVENUECAT_WEBHOOK_SECRET`, with or without `Bearer `."
        },
        "stripeSignature": {
            "type": "apiKey",
            "in": "header",
            "name": "Stripe-Signature",
            "description": "`t=UNIX_SECONDS,v1=HEX` (HMAC-SHA256 over `t.body` under a secret of \
                `STRIPE_WEBHOOK_SECRET`)."
        },
        "whopStandardWebhooks": {
            "type": "apiKey",
            "in": "header",
            "name": "webhook-signature",
            "description": "Standard Webhooks: `v1,BASE64` (HMAC-SHA256 over \
                `webhook-id.webhook-timestamp.body` under a secret of `WHOP_WEBHOOK_SECRET`), with \
                the `webhook-id` and `webhook-timestamp` headers."
        },
        "whopLegacySignature": {
            "type": "apiKey",
            "in": "header",
            "name": "x-whop-signature",
            "description": "Whop's legacy scheme: `t=UNIX_SECONDS,v1=HEX` (HMAC-SHA256 over `t.body` \
                under a secret of `WHOP_WEBHOOK_SECRET`)."
        }
    })
}

/// The shared problem answers, referenced by status from every operation (which may give its
/// own description of when it happens there).
pub(super) const PROBLEMS: [(u16, &str, &str); 11] = [
    (
        400,
        "BadRequest",
        "Malformed request (`malformed-request`): the body is not JSON, or a parameter cannot \
         be read.",
    ),
    (
        401,
        "Unauthorized",
        "No valid credentials (`unauthorized` without a token, `invalid-token` with one that \
         does not verify).",
    ),
    (
        403,
        "Forbidden",
        "The caller is authenticated but may not do this.",
    ),
    (404, "NotFound", "Not found (`not-found`)."),
    (409, "Conflict", "The resource's state does not allow this."),
    (
        413,
        "PayloadTooLarge",
        "The body is larger than `BODY_LIMIT_BYTES` (`payload-too-large`).",
    ),
    (
        415,
        "UnsupportedMediaType",
        "The body is not `application/json` (`unsupported-media-type`).",
    ),
    (
        422,
        "ValidationFailed",
        "A field is missing, of the wrong type or out of range (`validation-failed`); `errors` \
         names each field.",
    ),
    (
        429,
        "TooManyRequests",
        "Rate limited (`rate-limited`): the route's limit is used up; `retry-after` says when to \
         try again.",
    ),
    (
        502,
        "BadGateway",
        "A provider Keel asked on the caller's behalf failed or did not answer \
         (`revenuecat-unavailable`).",
    ),
    (
        503,
        "Unavailable",
        "The service cannot answer now: the database or the issuer's keys are unavailable, the \
         rate limiter cannot be reached (with `RATE_LIMIT_FAIL_CLOSED=true`), or the request \
         timed out.",
    ),
];

fn responses() -> Value {
    let mut all = Map::new();
    for (status, name, description) in PROBLEMS {
        let mut headers = Map::new();
        headers.insert(
            "x-request-id".into(),
            json!({ "$ref": "#/components/headers/RequestId" }),
        );
        let mut add = |name: &str, component: &str| {
            let reference = format!("#/components/headers/{component}");
            headers.insert(name.into(), json!({ "$ref": reference }));
        };
        if status == 401 {
            add("www-authenticate", "WwwAuthenticate");
        }
        if status == 429 {
            add("retry-after", "RetryAfter");
            add("ratelimit", "RateLimit");
            add("ratelimit-policy", "RateLimitPolicy");
        }
        all.insert(
            name.into(),
            json!({
                "description": description,
                "headers": headers,
                "content": {
                    "application/problem+json": {
                        "schema": { "$ref": "#/components/schemas/Problem" }
                    }
                }
            }),
        );
    }
    Value::Object(all)
}
