//! Field schemas that a field's Rust type cannot say: the values a `&'static str` takes, and the
//! shape of a value whose type lives outside the HTTP layer. Handler types name them with
//! `#[schema(schema_with = ...)]`.

use serde_json::{json, Value};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;

fn schema(value: Value) -> RefOr<Schema> {
    serde_json::from_value(value).unwrap_or_else(|_| RefOr::T(Schema::default()))
}

fn strings(values: &[&str]) -> RefOr<Schema> {
    schema(json!({ "type": "string", "enum": values }))
}

/// `HealthReport.status`.
pub fn health_status() -> RefOr<Schema> {
    schema(json!({
        "type": "string",
        "enum": ["ok", "degraded", "fail"],
        "description": "`degraded`: an optional dependency (Redis while the limiter fails open) \
            does not answer; `fail`: a required one does (the database, the issuer's keys, Redis \
            when the limiter fails closed; the answer is then a 503)."
    }))
}

/// `DeepHealthReport.status`.
pub fn deep_status() -> RefOr<Schema> {
    strings(&["ok", "degraded", "fail"])
}

/// `config::Role`, as reports name it.
pub fn role() -> RefOr<Schema> {
    strings(&["api", "worker", "all"])
}

/// `http::Phase`, as reports name it.
pub fn phase() -> RefOr<Schema> {
    strings(&["starting", "migrating", "ready", "draining"])
}

/// `HealthCheck.status`.
pub fn check_status() -> RefOr<Schema> {
    strings(&["ok", "fail"])
}

/// `Readiness.status`.
pub fn readiness_status() -> RefOr<Schema> {
    strings(&["ok", "unavailable"])
}

/// `Liveness.status`.
pub fn live_status() -> RefOr<Schema> {
    strings(&["ok"])
}

/// `QueueCheck.status`.
pub fn queue_status() -> RefOr<Schema> {
    strings(&["ok", "degraded"])
}

/// `auth::KeysStatus`, in `/health/deep`.
pub fn verifier() -> RefOr<Schema> {
    schema(json!({
        "type": "object",
        "description": "The issuer's keys, when they come from a JWKS URL.",
        "properties": {
            "loaded": { "type": "boolean" },
            "keys": { "type": "integer" },
            "age_s": { "type": ["integer", "null"] },
            "fresh": { "type": "boolean" },
            "last_error": { "type": "string" }
        }
    }))
}

/// `WebhookReceived.received`.
pub fn always_true() -> RefOr<Schema> {
    schema(json!({ "type": "boolean", "enum": [true] }))
}

/// `DELETE /v1/me`'s `status`.
pub fn scheduled() -> RefOr<Schema> {
    strings(&["scheduled"])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each fragment reads as a schema and writes back as written.
    #[test]
    fn fragments_round_trip() {
        let all: [fn() -> RefOr<Schema>; 11] = [
            always_true,
            health_status,
            deep_status,
            role,
            phase,
            check_status,
            readiness_status,
            live_status,
            queue_status,
            verifier,
            scheduled,
        ];
        for fragment in all {
            let written = serde_json::to_value(fragment()).unwrap_or_default();
            let says = written.get("enum").or(written.get("properties"));
            assert!(written.get("type").is_some() && says.is_some(), "{written}");
        }
    }
}
