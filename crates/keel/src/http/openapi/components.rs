//! `components`: the schemas of every body Keel reads or answers, the security schemes, and the
//! shared problem responses. Each schema mirrors the handler or type that produces the body (named
//! beside it), so a change there shows up in the snapshot test as a contract change.

use serde_json::{json, Map, Value};

use super::op::{nullable, schema_ref};

pub(super) fn build() -> Value {
    json!({
        "schemas": schemas(),
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

fn schemas() -> Value {
    let mut all = Map::new();
    let mut add = |name: &str, schema: Value| {
        all.insert(name.to_string(), schema);
    };
    add("Problem", problem());
    add("FieldError", field_error());
    add("HealthReport", health_report());
    add("HealthCheck", health_check());
    add("HealthChecks", health_checks());
    add("Readiness", readiness());
    add("DeepHealthReport", deep_health());
    add("Liveness", liveness());
    add("Me", me());
    add("Fired", fired());
    super::admin_schemas::add(&mut all);
    super::billing::schemas(&mut all);
    Value::Object(all)
}

/// `http::problem::ProblemBody`.
fn problem() -> Value {
    json!({
        "type": "object",
        "description": "An error (RFC 9457). Every 4xx and 5xx answer is one, served as \
            `application/problem+json`. It never shows a stack trace, SQL, a token or a secret.",
        "required": ["type", "title", "status", "detail", "request_id"],
        "properties": {
            "type": {
                "type": "string",
                "format": "uri",
                "description": "`https://keel.dev/problems/` and a slug: malformed-request, \
                    unauthorized, invalid-token, admin-required, tenant-required, \
                    entitlement-required, forbidden, not-found, method-not-allowed, \
                    job-state-conflict, payload-too-large, unsupported-media-type, \
                    validation-failed, rate-limited, internal, timeout, unavailable, \
                    database-unavailable, auth-unavailable, rate-limit-unavailable, \
                    enqueue-disabled."
            },
            "title": { "type": "string", "description": "A short summary of the problem type." },
            "status": { "type": "integer", "minimum": 400, "maximum": 599 },
            "detail": {
                "type": "string",
                "description": "What went wrong with this request, written for the client."
            },
            "request_id": {
                "type": "string",
                "description": "The `x-request-id` of the request; quote it when reporting."
            },
            "errors": {
                "type": "array",
                "description": "The invalid fields (422 only; absent otherwise).",
                "items": schema_ref("FieldError")
            }
        }
    })
}

fn field_error() -> Value {
    json!({
        "type": "object",
        "required": ["field", "message"],
        "properties": {
            "field": {
                "type": "string",
                "description": "The field's path in the body (`body` for the body as a whole), or \
                    the parameter's name."
            },
            "message": { "type": "string" }
        }
    })
}

/// `http::health::HealthReport`.
fn health_report() -> Value {
    json!({
        "type": "object",
        "required": ["status", "role", "version", "phase", "uptime_s", "checks"],
        "properties": {
            "status": {
                "type": "string",
                "enum": ["ok", "degraded", "fail"],
                "description": "`degraded`: an optional dependency (Redis, the issuer's keys) does \
                    not answer; `fail`: the database does not (the answer is then a 503)."
            },
            "role": { "type": "string", "enum": ["api", "worker", "all"] },
            "version": { "type": "string" },
            "phase": { "type": "string", "enum": ["starting", "migrating", "ready", "draining"] },
            "uptime_s": { "type": "integer", "minimum": 0 },
            "checks": schema_ref("HealthChecks")
        }
    })
}

/// `http::health::Check`.
fn health_check() -> Value {
    json!({
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": { "type": "string", "enum": ["ok", "fail"] },
            "latency_ms": { "type": "number", "description": "When the check answered." },
            "error": { "type": "string", "description": "Why the check failed." }
        }
    })
}

/// `http::health::Checks`.
fn health_checks() -> Value {
    json!({
        "type": "object",
        "required": ["database"],
        "properties": {
            "database": schema_ref("HealthCheck"),
            "redis": {
                "$ref": "#/components/schemas/HealthCheck",
                "description": "Present when `REDIS_URL` is set."
            },
            "auth": {
                "$ref": "#/components/schemas/HealthCheck",
                "description": "The issuer's keys, when tokens are verified against `AUTH_JWKS_URL`."
            }
        }
    })
}

/// `http::health::ReadinessReport`.
fn readiness() -> Value {
    json!({
        "type": "object",
        "required": ["status", "phase"],
        "properties": {
            "status": { "type": "string", "enum": ["ok", "unavailable"] },
            "phase": { "type": "string", "enum": ["starting", "migrating", "ready", "draining"] },
            "checks": {
                "$ref": "#/components/schemas/HealthChecks",
                "description": "Absent while the process is not in the `ready` phase."
            }
        }
    })
}

/// `http::deep_health::DeepReport`.
fn deep_health() -> Value {
    json!({
        "type": "object",
        "required": ["status", "role", "version", "uptime_s", "checks"],
        "properties": {
            "status": { "type": "string", "enum": ["ok", "degraded", "fail"] },
            "role": { "type": "string", "enum": ["api", "worker", "all"] },
            "version": { "type": "string" },
            "uptime_s": { "type": "integer", "minimum": 0 },
            "checks": schema_ref("HealthChecks"),
            "verifier": {
                "type": "object",
                "description": "The issuer's keys, when they come from a JWKS URL.",
                "properties": {
                    "loaded": { "type": "boolean" },
                    "keys": { "type": "integer" },
                    "age_s": { "type": ["integer", "null"] },
                    "fresh": { "type": "boolean" },
                    "last_error": { "type": "string" }
                }
            },
            "queue": {
                "type": "object",
                "description": "Absent when the database does not answer.",
                "properties": {
                    "status": { "type": "string", "enum": ["ok", "degraded"] },
                    "backlog": { "type": "integer" },
                    "oldest_waiting_s": { "type": "number" },
                    "discarded_last_hour": { "type": "integer" },
                    "thresholds": {
                        "type": "object",
                        "properties": {
                            "max_backlog": { "type": "integer" },
                            "max_oldest_waiting_seconds": { "type": "number" },
                            "max_discarded_per_hour": { "type": "integer" }
                        }
                    },
                    "exceeded": { "type": "array", "items": { "type": "string" } }
                }
            }
        }
    })
}

fn liveness() -> Value {
    json!({
        "type": "object",
        "required": ["status"],
        "properties": { "status": { "type": "string", "const": "ok" } }
    })
}

/// `http::me::Me`.
fn me() -> Value {
    json!({
        "type": "object",
        "required": ["user_id", "tenant_id", "roles", "created_at"],
        "properties": {
            "user_id": { "type": "string", "description": "The token's `sub`." },
            "tenant_id": nullable(json!({
                "type": "string",
                "description": "The tenant claim (`AUTH_TENANT_CLAIM`, `org_id` by default)."
            })),
            "roles": {
                "type": "array",
                "items": { "type": "string" },
                "description": "`user`, and `admin` for the users in `ADMIN_USER_IDS`."
            },
            "created_at": {
                "type": "string",
                "format": "date-time",
                "description": "When Keel first saw this user."
            }
        }
    })
}

/// `schedule::Fired`.
fn fired() -> Value {
    json!({
        "type": "object",
        "required": ["job_id", "deduplicated"],
        "properties": {
            "job_id": { "type": "integer", "format": "int64" },
            "deduplicated": {
                "type": "boolean",
                "description": "True when this period (or this `Idempotency-Key`) had already \
                    fired: `job_id` is the job of that firing."
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
                    "application/problem+json": { "schema": schema_ref("Problem") }
                }
            }),
        );
    }
    Value::Object(all)
}
