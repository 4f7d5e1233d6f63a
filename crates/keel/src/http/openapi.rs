//! The API's own documentation: `GET /openapi.json`, OpenAPI 3.1 of the whole HTTP surface, and
//! `GET /docs`, a self-contained page that renders it. The page's CSS and script are inline and
//! allowed by hash in its own `content-security-policy`; it fetches nothing but `/openapi.json`
//! (same origin) and nothing at all from the internet.
//!
//! The document is written by hand beside the handlers it describes (`openapi/paths.rs`,
//! `openapi/admin.rs`, `openapi/components.rs`); `tests/openapi.rs` checks it against the router
//! and the real answers, and keeps a snapshot so any change of the contract shows in review.

mod admin;
mod admin_schemas;
mod billing;
mod components;
mod op;
mod paths;

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

static DOCUMENT: LazyLock<Value> = LazyLock::new(build);
static DOCUMENT_JSON: LazyLock<Vec<u8>> =
    LazyLock::new(|| serde_json::to_vec(&*DOCUMENT).unwrap_or_default());
static PAGE: LazyLock<Page> = LazyLock::new(Page::build);

const HTML: &str = include_str!("openapi/docs.html");
const SCRIPT: &str = include_str!("openapi/docs.js");
const STYLE: &str = include_str!("openapi/docs.css");

/// The OpenAPI document, built once.
pub fn spec() -> &'static Value {
    &DOCUMENT
}

/// `GET /openapi.json`.
pub async fn document() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Bytes::from_static(DOCUMENT_JSON.as_slice()),
    )
        .into_response()
}

/// `GET /docs`: the page, with a policy that allows exactly its inline style and script and a
/// same-origin fetch.
pub async fn page() -> Response {
    let page = &*PAGE;
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        Bytes::from_static(page.html.as_bytes()),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, page.csp.clone());
    response
}

struct Page {
    html: String,
    csp: HeaderValue,
}

impl Page {
    fn build() -> Self {
        let html = HTML
            .replace("{{style}}", STYLE)
            .replace("{{script}}", SCRIPT);
        let csp = format!(
            "default-src 'none'; script-src '{}'; style-src '{}'; connect-src 'self'; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
            hash(SCRIPT),
            hash(STYLE)
        );
        Page {
            html,
            csp: HeaderValue::from_str(&csp)
                .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'")),
        }
    }
}

/// A CSP hash source: `sha256-` and the base64 of the element's exact text.
fn hash(text: &str) -> String {
    format!(
        "sha256-{}",
        STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

fn build() -> Value {
    let mut paths = Map::new();
    paths::add(&mut paths);
    admin::add(&mut paths);
    billing::add(&mut paths);
    rate_limited(&mut paths);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Keel",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "The production backend for subscription apps.",
            "description": DESCRIPTION,
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" }
        },
        "tags": tags(),
        "paths": paths,
        "components": components::build()
    })
}

const DESCRIPTION: &str = "Every response carries `x-request-id` and the security headers \
    (`x-content-type-options`, `x-frame-options`, `referrer-policy`, `content-security-policy`, \
    and `strict-transport-security` outside development).\n\n\
    Every error is `application/problem+json` (RFC 9457): `type`, `title`, `status`, `detail`, \
    `request_id`, and `errors` for invalid fields. That includes 404 for an unknown path and 405 \
    for a known path with another method (the `allow` header lists the methods); a declared body \
    over `BODY_LIMIT_BYTES` is 413 on any route, a request over `REQUEST_TIMEOUT_SECONDS` 503 \
    `timeout`.\n\n\
    The `worker` role serves only `/health`, `/health/live`, `/health/ready` and `/metrics`; \
    every other path here is served by the `api` and `all` roles.\n\n\
    Every route but health and metrics is rate limited. The `default` policy allows 300 requests \
    a minute per user (per client IP without a valid token); `keel.toml` can change it and put \
    routes under policies of their own. Limited answers carry `RateLimit-Policy` and `RateLimit` \
    (IETF httpapi draft); a refusal is 429 `rate-limited` with `Retry-After`. With \
    `RATE_LIMIT_FAIL_CLOSED=true`, while the limiter's backend does not answer, requests get 503 \
    `rate-limit-unavailable`.";

/// Every route but health and metrics may answer 429 (`http::middleware::rate_limit`), and 503
/// when the limiter fails closed.
fn rate_limited(paths: &mut Map<String, Value>) {
    for (path, item) in paths.iter_mut() {
        if crate::ratelimit::policy::is_exempt(path) {
            continue;
        }
        for op in item
            .as_object_mut()
            .into_iter()
            .flat_map(|ops| ops.values_mut())
        {
            let responses = &mut op["responses"];
            responses["429"] = json!({ "$ref": "#/components/responses/TooManyRequests" });
            if responses.get("503").is_none() {
                responses["503"] = json!({ "$ref": "#/components/responses/Unavailable" });
            }
        }
    }
}

fn tags() -> Value {
    json!([
        { "name": "Health", "description": "Health, readiness and metrics; served by every role." },
        { "name": "Users", "description": "The caller's own routes. Bearer token required." },
        {
            "name": "Scheduler",
            "description": "External cron. Present only when `SCHEDULER_SECRET_KEY` is set."
        },
        { "name": "Queues", "description": "Admin: queue statistics and control." },
        { "name": "Jobs", "description": "Admin: list, enqueue, retry and discard jobs." },
        { "name": "Flags", "description": "Admin: kill switches." },
        { "name": "Schedules", "description": "Admin: schedules with their firings." },
        { "name": "Audit", "description": "Admin: who did what, newest first." },
        {
            "name": "Webhooks",
            "description": "Billing providers' deliveries; present only for enabled providers."
        },
        { "name": "Billing", "description": "Admin: users, their entitlements, manual grants." },
        { "name": "Documentation", "description": "This document and its page." }
    ])
}
