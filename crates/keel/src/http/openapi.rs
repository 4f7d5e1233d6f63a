//! The API's own documentation: `GET /openapi.json`, OpenAPI 3.1 of the whole HTTP surface, and
//! `GET /docs`, a self-contained page that renders it. The page's CSS and script are inline and
//! allowed by hash in its own `content-security-policy`; it fetches nothing but `/openapi.json`
//! (same origin) and nothing at all from the internet.
//!
//! The document comes from the code: each handler carries its operation (`#[utoipa::path]`), the
//! types it reads and answers their schemas (`ToSchema`, `IntoParams`), and [`Derived`] lists the
//! handlers. Only what no handler says is written here: the description, the tags, and in
//! `openapi/components.rs` the security schemes and shared problem responses. Application routes
//! join it through `Server::documented_routes` (`openapi/merge.rs`). `tests/it/openapi.rs` checks it
//! against the router and the real answers, and keeps a snapshot so any change of the contract
//! shows in review.

mod components;
mod merge;
pub(crate) mod values;

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use utoipa::openapi::OpenApi;

static DOCUMENT: LazyLock<Value> = LazyLock::new(|| finish(build()));
static DOCUMENT_JSON: LazyLock<Bytes> =
    LazyLock::new(|| Bytes::from(serde_json::to_vec(&*DOCUMENT).unwrap_or_default()));
static PAGE: LazyLock<Page> = LazyLock::new(Page::build);

const HTML: &str = include_str!("openapi/docs.html");
const SCRIPT: &str = include_str!("openapi/docs.js");
const STYLE: &str = include_str!("openapi/docs.css");

/// Keel's own OpenAPI document, built once: every route Keel serves, without application routes.
pub fn spec() -> &'static Value {
    &DOCUMENT
}

/// The document a router serves as `/openapi.json`: Keel's own, plus the paths, components and
/// tags of the application's documented routes (`Server::documented_routes`).
pub fn document_with(app: &OpenApi) -> Value {
    let mut document = build();
    if let Ok(app) = serde_json::to_value(app) {
        merge::app_into(&mut document, &app);
    }
    finish(document)
}

/// The body of `/openapi.json` for a router with `app`'s documented routes.
pub(crate) fn body(app: Option<&OpenApi>) -> Bytes {
    match app {
        None => DOCUMENT_JSON.clone(),
        Some(app) => Bytes::from(serde_json::to_vec(&document_with(app)).unwrap_or_default()),
    }
}

/// `GET /openapi.json` (the router serves it with its own document).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "Documentation",
    operation_id = "openapi",
    summary = "This document",
    description = "OpenAPI 3.1 of the whole HTTP surface.",
    responses((status = 200, description = "The OpenAPI document.", body = Object))
)]
pub fn document(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// `GET /docs`: the page, with a policy that allows exactly its inline style and script and a
/// same-origin fetch.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "Documentation",
    operation_id = "docs",
    summary = "This documentation as a page",
    description = "A self-contained page rendering `/openapi.json`: nothing is fetched from the \
        internet.",
    responses(
        (
            status = 200,
            description = "The page.",
            body = String,
            content_type = "text/html; charset=utf-8"
        )
    )
)]
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

/// The operations and schemas derived from the handlers and the types they read and answer.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        super::health::health,
        super::health::live,
        super::health::ready,
        super::deep_health::deep,
        super::metrics::metrics,
        super::me::me,
        super::me::delete,
        super::me::export,
        super::me::check,
        super::scheduler::trigger,
        super::jobs_api::enqueue,
        super::jobs_api::get,
        super::entitlements::list,
        super::entitlements::sync,
        super::webhooks::revenuecat,
        super::webhooks::stripe,
        super::webhooks::whop,
        super::admin::queues::list,
        super::admin::queues::pause,
        super::admin::queues::resume,
        super::admin::queues::drain,
        super::admin::jobs::list,
        super::admin::jobs::enqueue,
        super::admin::jobs::retry,
        super::admin::jobs::discard,
        super::admin::flags::list,
        super::admin::flags::set,
        super::admin::schedules::list,
        super::admin::schedules::trigger,
        super::admin::audit::list,
        super::admin::events::list,
        super::admin::users::show,
        super::admin::users::entitlements,
        super::admin::users::grant,
        super::admin::users::revoke,
        super::storage::start,
        super::storage::confirm,
        super::storage::list,
        super::storage::get,
        super::storage::delete,
        super::storage_links::upload,
        super::storage_links::download,
        super::storage_links::link,
        super::storage_links::record,
        document,
        page,
    ),
    components(schemas(super::problem::ProblemBody, super::problem::FieldError))
)]
struct Derived;

/// Keel's document: the derived operations and schemas, with what no handler says (the API's
/// description, its tags, security schemes and shared problem responses).
fn build() -> Value {
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Keel",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "The production backend for subscription apps.",
            "description": DESCRIPTION,
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" }
        },
        "tags": tags(),
        "paths": {},
        "components": components::build()
    });
    if let Ok(derived) = serde_json::to_value(<Derived as utoipa::OpenApi>::openapi()) {
        merge::app_into(&mut document, &derived);
    }
    document
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

/// What every operation, Keel's or the application's, has in common: its problem answers refer
/// to the shared responses, and all but health and metrics may be rate limited.
fn finish(mut document: Value) -> Value {
    merge::single_one_of(&mut document);
    if let Some(paths) = document["paths"].as_object_mut() {
        merge::problems(paths);
        merge::headers_not_null(paths);
        rate_limited(paths);
    }
    document
}

/// Every route but health and metrics may answer 429 (`http::middleware::rate_limit`), and 503
/// when the limiter fails closed.
fn rate_limited(paths: &mut Map<String, Value>) {
    for (path, item) in paths.iter_mut() {
        if crate::ratelimit::policy::is_exempt(path) {
            continue;
        }
        for op in merge::operations(item) {
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            let limited = json!({ "$ref": "#/components/responses/TooManyRequests" });
            responses.insert("429".into(), limited);
            responses
                .entry("503")
                .or_insert_with(|| json!({ "$ref": "#/components/responses/Unavailable" }));
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
        {
            "name": "Jobs API",
            "description": "The app's backend enqueues and reads jobs. A service token of `SERVICE_TOKENS` required."
        },
        { "name": "Queues", "description": "Admin: queue statistics and control." },
        { "name": "Jobs", "description": "Admin: list, enqueue, retry and discard jobs." },
        { "name": "Flags", "description": "Admin: kill switches." },
        { "name": "Schedules", "description": "Admin: schedules with their firings." },
        { "name": "Audit", "description": "Admin: who did what, newest first." },
        {
            "name": "Events",
            "description": "Admin: events for the app (`APP_EVENTS_URL`), undelivered first."
        },
        {
            "name": "Webhooks",
            "description": "Billing providers' deliveries; present only for enabled providers."
        },
        { "name": "Billing", "description": "Admin: users, their entitlements, manual grants." },
        { "name": "Documentation", "description": "This document and its page." },
        {
            "name": "Storage",
            "description": "Users' files in object storage (direct uploads, signed and CDN URLs), the filesystem backend's signed links, and presigned links for the app's services."
        }
    ])
}
