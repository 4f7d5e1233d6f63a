//! The API documentation (SPEC §4 "Documentation"): `GET /openapi.json` is OpenAPI 3.1 of every
//! route the router serves, every `$ref` in it resolves, the real answers have the documented
//! statuses and shapes, and `GET /docs` renders it without any asset from the internet.
//!
//! Snapshot: the document must equal `tests/snapshots/openapi.json` (with `info.version` written
//! as `{CARGO_PKG_VERSION}`, so a version bump alone does not change it), so every change of the
//! HTTP contract shows up in review. After an intended change, rewrite the snapshot with
//!
//! ```sh
//! KEEL_UPDATE_SNAPSHOTS=1 cargo test -p keel --test it openapi
//! ```
//!
//! and review its diff like code.

use crate::openapi_support;

use std::collections::BTreeSet;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use keel::auth::dev::{self, DevClaims};
use keel_testkit::{TestApp, TestDb};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use openapi_support::{conforms, deref, differences, pointer, property_names, refs};

mod docs_page;

const ADMIN: &str = "admin-token-for-openapi-tests-0123456789";
const SECRET: &str = "scheduler-secret-for-openapi-tests-01234";
const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/openapi.json");

/// Every route of the API role's router (with `SCHEDULER_SECRET_KEY` set). A route added to
/// `http::router` must be added here and documented.
#[rustfmt::skip]
const ROUTES: [(&str, &str); 46] = [
    ("get", "/health"), ("get", "/health/live"), ("get", "/health/ready"), ("get", "/health/deep"), ("get", "/metrics"),
    ("get", "/v1/me"), ("get", "/v1/auth/check"), ("post", "/v1/scheduler/{name}/trigger"),
    ("post", "/v1/jobs"), ("get", "/v1/jobs/{id}"),
    ("get", "/admin/api/queues"), ("post", "/admin/api/queues/{name}/pause"),
    ("post", "/admin/api/queues/{name}/resume"), ("post", "/admin/api/queues/{name}/drain"),
    ("get", "/admin/api/jobs"), ("post", "/admin/api/jobs"),
    ("post", "/admin/api/jobs/{id}/retry"), ("post", "/admin/api/jobs/{id}/discard"),
    ("get", "/admin/api/flags"), ("put", "/admin/api/flags/{name}"),
    ("get", "/admin/api/schedules"), ("post", "/admin/api/schedules/{name}/trigger"),
    ("get", "/admin/api/audit"), ("get", "/admin/api/events"), ("get", "/openapi.json"), ("get", "/docs"),
    ("get", "/v1/me/entitlements"), ("post", "/v1/me/entitlements/sync"),
    ("get", "/v1/me/export"), ("delete", "/v1/me"),
    ("post", "/webhooks/revenuecat"), ("post", "/webhooks/stripe"), ("post", "/webhooks/whop"),
    ("get", "/admin/api/users/{id}"), ("get", "/admin/api/users/{id}/entitlements"),
    ("post", "/admin/api/users/{id}/grants"), ("delete", "/admin/api/users/{id}/grants/{entitlement}"),
    ("post", "/v1/me/uploads"), ("get", "/v1/me/files"), ("get", "/v1/me/files/{id}"),
    ("delete", "/v1/me/files/{id}"), ("post", "/v1/me/files/{id}/confirm"),
    ("put", "/v1/storage/files/{token}"), ("get", "/v1/storage/files/{token}"), ("post", "/v1/storage/urls"),
    ("post", "/v1/storage/objects"),
];
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn spawn(env: &[(&str, &str)]) -> TestApp {
    let mut builder = TestApp::builder(TestDb::sqlite());
    for (name, value) in env {
        builder = builder.env(name, value);
    }
    builder.spawn().await
}

async fn fetch_document(app: &TestApp) -> Value {
    let r = app.get("/openapi.json").await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "content-type"), "application/json");
    let text = r.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("/openapi.json is not JSON: {e}"))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    let value = headers.get(name).map(|v| v.to_str().expect("ascii"));
    value.unwrap_or("")
}

fn request(app: &TestApp, method: &str, path: &str) -> RequestBuilder {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    app.client.request(method, app.url(path))
}

/// `(method, path)` of every operation in the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let methods = METHODS.iter().filter(|m| item.get(**m).is_some());
        out.extend(methods.map(|m| (m.to_string(), path.clone())));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_is_openapi_3_1_of_every_route() {
    let app = spawn(&[
        ("SCHEDULER_SECRET_KEY", SECRET),
        ("REVENUECAT_WEBHOOK_SECRET", SECRET),
        ("STRIPE_WEBHOOK_SECRET", SECRET),
        ("WHOP_WEBHOOK_SECRET", SECRET),
    ])
    .await;
    let doc = fetch_document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc["info"]["title"].is_string());

    // Both directions: every route is documented and every documented route exists.
    let pairs = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string()));
    let routes: BTreeSet<(String, String)> = pairs.collect();
    let documented = operations(&doc);
    let missing: Vec<_> = routes.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(missing.is_empty(), "routes not documented: {missing:?}");
    assert!(extra.is_empty(), "documented but not routed: {extra:?}");

    // The hard-coded list is the router's: each answers something other than 404 or 405
    // (without credentials: 200 or 401; a made-up signed storage link: 403), while an unknown path
    // is 404.
    for (method, path) in &routes {
        let path = path
            .replace("{name}", "jobs.prune")
            .replace("{id}", "1")
            .replace("{entitlement}", "pro");
        let r = request(&app, method, &path)
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let expected: &[u16] = if path.starts_with("/v1/storage/files/") {
            &[403]
        } else {
            &[200, 401]
        };
        assert!(expected.contains(&status), "{method} {path}: {status}");
    }
    assert_eq!(app.get("/v1/nothing-here").await.status(), 404);
    // The scheduler trigger exists only with its secret, as documented.
    let bare = spawn(&[]).await;
    let url = bare.url("/v1/scheduler/jobs.prune/trigger");
    assert_eq!(bare.client.post(url).send().await.unwrap().status(), 404);

    let tags = doc["tags"].as_array().expect("tags").iter();
    let declared: BTreeSet<&str> = tags.map(|t| t["name"].as_str().unwrap()).collect();
    let mut ids = BTreeSet::new();
    for (method, path) in &documented {
        let op = &doc["paths"][path][method];
        let what = format!("{method} {path}");
        assert!(op["summary"].is_string(), "{what}: summary");
        let id = op["operationId"].as_str().expect("operationId");
        assert!(ids.insert(id.to_string()), "{what}: operationId {id} twice");
        let tags = op["tags"].as_array().expect("tags");
        assert!(
            tags.iter().all(|t| declared.contains(t.as_str().unwrap())),
            "{what}: undeclared tag"
        );
        check_operation(&doc, &what, path, op);
    }
}

/// Path parameters match the template; errors are problems; secured, body-reading and
/// integer-parameter operations list the errors they can answer.
fn check_operation(doc: &Value, what: &str, path: &str, op: &Value) {
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let in_path: BTreeSet<String> = params
        .iter()
        .filter(|p| p["in"] == "path")
        .map(|p| {
            assert_eq!(p["required"], true, "{what}: path parameters are required");
            p["name"].as_str().unwrap().to_string()
        })
        .collect();
    let templated: BTreeSet<String> = path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(str::to_string)
        .collect();
    assert_eq!(in_path, templated, "{what}: path parameters");

    let responses = op["responses"].as_object().expect("responses");
    let has = |code: &str| responses.contains_key(code);
    let success = responses.keys().any(|c| c.starts_with('2'));
    assert!(success, "{what}: no success answer");
    let limited = !path.starts_with("/health") && path != "/metrics";
    assert_eq!(has("429"), limited, "{what}: rate limited?");
    for (code, response) in responses {
        if !code.starts_with('4') && !code.starts_with('5') {
            continue;
        }
        let response = deref(doc, response);
        assert!(response["description"].is_string(), "{what} {code}");
        // The health reports answer 503 with the report itself, not a problem.
        let report = path.starts_with("/health") && code == "503";
        let problem = &response["content"]["application/problem+json"]["schema"]["$ref"];
        let problem = problem == "#/components/schemas/Problem";
        assert!(report || problem, "{what} {code}: not a problem");
    }
    let security = op["security"].as_array().cloned().unwrap_or_default();
    if !security.is_empty() {
        assert!(has("401"), "{what}: secured without a 401");
    }
    if security.iter().any(|s| s.get("adminToken").is_some()) {
        assert!(has("403") && has("503"), "{what}: admin errors");
    }
    if let Some(body) = op.get("requestBody") {
        for code in ["400", "413", "415"] {
            assert!(has(code), "{what}: reads a body but has no {code}");
        }
        // A typed body (a schema of its own) can be valid JSON with invalid fields.
        let typed = body["content"]["application/json"]["schema"]["$ref"].is_string();
        assert!(!typed || has("422"), "{what}: a typed body but no 422");
    }
    if params.iter().any(|p| p["schema"]["type"] == "integer") {
        assert!(has("400"), "{what}: an integer parameter without a 400");
    }
}

#[test]
fn every_ref_resolves_and_every_schema_is_used() {
    let doc = keel::http::openapi::spec();
    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(all.len() > 50, "{} refs", all.len());
    for reference in &all {
        assert!(reference.starts_with("#/"), "{reference} is not local");
        assert!(
            pointer(doc, reference).is_some(),
            "{reference} is unresolved"
        );
    }
    let used: BTreeSet<&str> = all.iter().map(String::as_str).collect();
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        let reference = format!("#/components/schemas/{name}");
        assert!(used.contains(reference.as_str()), "schema {name} is unused");
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["bearerFormat"], "JWT");
    assert_eq!(schemes["adminToken"]["scheme"], "bearer");
    let states = doc["components"]["schemas"]["JobState"]["enum"].as_array();
    assert_eq!(states.unwrap().len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_equals_the_snapshot() {
    let app = spawn(&[]).await;
    let mut doc = fetch_document(&app).await;
    assert_eq!(&doc, keel::http::openapi::spec());
    doc["info"]["version"] = json!("{CARGO_PKG_VERSION}");
    if std::env::var("KEEL_UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
        std::fs::write(SNAPSHOT, text).expect("write the snapshot");
        return;
    }
    let text = std::fs::read_to_string(SNAPSHOT).expect("the snapshot (KEEL_UPDATE_SNAPSHOTS=1)");
    let snapshot: Value = serde_json::from_str(&text).expect("the snapshot is JSON");
    let mut diff = Vec::new();
    differences(&snapshot, &doc, String::new(), &mut diff);
    assert!(
        diff.is_empty(),
        "the OpenAPI document differs from {SNAPSHOT} (snapshot != now):\n{}\n\
         If the change is intended: KEEL_UPDATE_SNAPSHOTS=1 cargo test -p keel --test it openapi",
        diff.join("\n")
    );
}

const CSP_NEEDS: &str =
    "default-src 'none';connect-src 'self';frame-ancestors 'none';base-uri 'none'";

/// Who calls.
enum Who {
    Anyone,
    User,
    Admin,
    /// `SCHEDULER_SECRET_KEY`, which is `METRICS_TOKEN` too here.
    Secret,
}

enum Body {
    Empty,
    Json(&'static str),
    Typed(&'static str, &'static str),
    /// A JSON body over `BODY_LIMIT_BYTES`.
    Large,
}

const SPEC: &str = r#"{"kind":"diag.noop","run_at":"2999-01-01T00:00:00Z","unique_key":"docs"}"#;
const ON: &str = r#"{"enabled":true}"#;
const LIMIT: usize = 4096;
/// One call a minute to the page, to see its 429.
const POLICY: &str = "[[rate_limits]]\nname = \"page\"\nlimit = 1\nperiod = \"1m\"\nkey = \"ip\"\n\
                      routes = [\"GET /docs\"]\n";

type S = &'static str;
type Case = (S, S, S, Who, Body, u16, Option<(S, S)>);

/// Real calls, in order: method, documented path, the path called (`""`: the same; `{job}`: the
/// job enqueued first), caller, body, expected status, and optionally a pointer into the answer
/// whose keys must equal the properties of a schema.
#[rustfmt::skip]
const CASES: &[Case] = &[
    ("get", "/health", "", Who::Anyone, Body::Empty, 200, Some(("", "HealthReport"))),
    ("get", "/health/live", "", Who::Anyone, Body::Empty, 200, Some(("", "Liveness"))),
    ("get", "/health/ready", "", Who::Anyone, Body::Empty, 200, Some(("", "Readiness"))),
    ("get", "/metrics", "", Who::Anyone, Body::Empty, 401, None),
    ("get", "/metrics", "", Who::Secret, Body::Empty, 200, None),
    ("get", "/v1/me", "", Who::User, Body::Empty, 200, Some(("", "Me"))),
    ("get", "/v1/me", "", Who::Anyone, Body::Empty, 401, None),
    ("get", "/v1/me", "", Who::Admin, Body::Empty, 401, None),
    ("get", "/v1/auth/check", "", Who::User, Body::Empty, 200, None),
    ("get", "/v1/auth/check", "/v1/auth/check?entitlement=premium", Who::User, Body::Empty, 403, None),
    ("get", "/v1/auth/check", "", Who::Anyone, Body::Empty, 401, None),
    ("post", "/admin/api/jobs", "", Who::Admin, Body::Json(SPEC), 201, Some(("", "Enqueued"))),
    ("post", "/admin/api/jobs", "", Who::Admin, Body::Json(SPEC), 200, Some(("", "Enqueued"))),
    ("post", "/admin/api/jobs", "", Who::Admin, Body::Json("{}"), 422, None),
    ("post", "/admin/api/jobs", "", Who::Admin, Body::Json(r#"{"kind":"a","x":1}"#), 422, None),
    ("post", "/admin/api/jobs", "", Who::Admin, Body::Json("{"), 400, None),
    ("post", "/admin/api/jobs", "", Who::Admin, Body::Typed("text/plain", SPEC), 415, None),
    ("post", "/admin/api/jobs", "", Who::Admin, Body::Large, 413, None),
    ("get", "/admin/api/jobs", "", Who::Admin, Body::Empty, 200, Some(("/0", "Job"))),
    ("get", "/admin/api/jobs", "/admin/api/jobs?state=nope", Who::Admin, Body::Empty, 422, None),
    ("get", "/admin/api/jobs", "/admin/api/jobs?limit=x", Who::Admin, Body::Empty, 400, None),
    ("get", "/admin/api/jobs", "", Who::User, Body::Empty, 403, None),
    ("get", "/admin/api/jobs", "", Who::Anyone, Body::Empty, 401, None),
    ("post", "/admin/api/jobs/{id}/discard", "/admin/api/jobs/{job}/discard", Who::Admin, Body::Empty, 200, Some(("", "Job"))),
    ("post", "/admin/api/jobs/{id}/discard", "/admin/api/jobs/{job}/discard", Who::Admin, Body::Empty, 409, None),
    ("post", "/admin/api/jobs/{id}/discard", "/admin/api/jobs/999999/discard", Who::Admin, Body::Empty, 404, None),
    ("post", "/admin/api/jobs/{id}/discard", "/admin/api/jobs/x/discard", Who::Admin, Body::Empty, 400, None),
    ("post", "/admin/api/jobs/{id}/retry", "/admin/api/jobs/{job}/retry", Who::Admin, Body::Empty, 200, Some(("", "Job"))),
    ("post", "/admin/api/jobs/{id}/retry", "/admin/api/jobs/999999/retry", Who::Admin, Body::Empty, 404, None),
    ("get", "/admin/api/queues", "", Who::Admin, Body::Empty, 200, Some(("/queues/default", "QueueStats"))),
    ("post", "/admin/api/queues/{name}/pause", "/admin/api/queues/default/pause", Who::Admin, Body::Empty, 200, Some(("", "QueuePaused"))),
    ("post", "/admin/api/queues/{name}/resume", "/admin/api/queues/default/resume", Who::Admin, Body::Empty, 200, Some(("", "QueuePaused"))),
    ("post", "/admin/api/queues/{name}/drain", "/admin/api/queues/default/drain", Who::Admin, Body::Empty, 200, Some(("", "QueueDrained"))),
    ("post", "/admin/api/queues/{name}/pause", "/admin/api/queues/bad%20name/pause", Who::Admin, Body::Empty, 400, None),
    ("get", "/admin/api/flags", "", Who::Admin, Body::Empty, 200, Some(("/flags/0", "Flag"))),
    ("put", "/admin/api/flags/{name}", "/admin/api/flags/workers", Who::Admin, Body::Json(ON), 200, Some(("", "FlagSet"))),
    ("put", "/admin/api/flags/{name}", "/admin/api/flags/nope", Who::Admin, Body::Json(ON), 422, None),
    ("put", "/admin/api/flags/{name}", "/admin/api/flags/workers", Who::Admin, Body::Json(r#"{"enabled":"yes"}"#), 422, None),
    ("put", "/admin/api/flags/{name}", "/admin/api/flags/workers", Who::Admin, Body::Empty, 415, None),
    ("get", "/admin/api/schedules", "", Who::Admin, Body::Empty, 200, Some(("/schedules/0", "Schedule"))),
    ("post", "/admin/api/schedules/{name}/trigger", "/admin/api/schedules/jobs.prune/trigger", Who::Admin, Body::Empty, 202, Some(("", "Fired"))),
    ("post", "/admin/api/schedules/{name}/trigger", "/admin/api/schedules/nope/trigger", Who::Admin, Body::Empty, 404, None),
    ("post", "/v1/scheduler/{name}/trigger", "/v1/scheduler/jobs.prune/trigger", Who::Secret, Body::Empty, 202, Some(("", "Fired"))),
    ("post", "/v1/scheduler/{name}/trigger", "/v1/scheduler/jobs.prune/trigger", Who::Admin, Body::Empty, 401, None),
    ("post", "/v1/scheduler/{name}/trigger", "/v1/scheduler/nope/trigger", Who::Secret, Body::Empty, 404, None),
    ("get", "/admin/api/audit", "", Who::Admin, Body::Empty, 200, Some(("/0", "AuditRow"))),
    ("get", "/admin/api/audit", "/admin/api/audit?limit=x", Who::Admin, Body::Empty, 400, None),
    ("get", "/admin/api/events", "/admin/api/events?pending=true", Who::Admin, Body::Empty, 200, None),
    ("get", "/admin/api/events", "/admin/api/events?limit=x", Who::Admin, Body::Empty, 400, None),
    ("get", "/docs", "", Who::Anyone, Body::Empty, 200, None),
    ("get", "/docs", "", Who::Anyone, Body::Empty, 429, None),
    ("get", "/openapi.json", "", Who::Anyone, Body::Empty, 200, None),
];

/// The status is documented for the operation, the documented headers are sent, and the body
/// has the documented media type and conforms to its schema. Returns the body.
fn check_answer(doc: &Value, what: &str, r: (u16, &HeaderMap, &str)) -> Value {
    let (status, headers, text) = r;
    let (method, path) = what.split_once(' ').unwrap();
    let op = &doc["paths"][path][method];
    let documented = op["responses"]
        .get(status.to_string())
        .unwrap_or_else(|| panic!("{what} → {status} is not documented: {text}"));
    let response = deref(doc, documented);
    for (name, _) in response["headers"].as_object().into_iter().flatten() {
        assert!(headers.contains_key(name.as_str()), "{what}: no {name}");
    }
    let Some(content) = response["content"].as_object() else {
        assert!(text.is_empty(), "{what}: an undocumented body {text}");
        return Value::Null;
    };
    let kind = header(headers, "content-type");
    let media = content
        .get(kind)
        .or_else(|| content.get(kind.split(';').next().unwrap()))
        .unwrap_or_else(|| panic!("{what} → {status}: {kind} is not documented"));
    if !kind.contains("json") {
        return Value::String(text.to_string());
    }
    let body: Value = serde_json::from_str(text).expect("a JSON body");
    conforms(doc, &media["schema"], &body, "").unwrap_or_else(|e| panic!("{what}: {e}"));
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_answers_match_real_ones() {
    let db = TestDb::sqlite();
    std::fs::write(db.dir().unwrap().join("keel.toml"), POLICY).unwrap();
    let builder = TestApp::builder(db)
        .env("APP_ENV", "development")
        .env("AUTH_DEV_MODE", "true")
        .env("ADMIN_TOKEN", ADMIN)
        .env("SCHEDULER_SECRET_KEY", SECRET)
        .env("METRICS_TOKEN", SECRET)
        .env("BODY_LIMIT_BYTES", &LIMIT.to_string());
    let key = dev::load_or_create(&builder.settings().data_dir).expect("development key");
    let app = builder.spawn().await;
    let claims = DevClaims {
        user: "u-docs",
        tenant: Some("t-docs"),
        tenant_claim: "org_id",
        admin: false,
        ttl_s: 600,
    };
    let user = dev::mint(&key, &claims, chrono::Utc::now().timestamp());
    let doc = fetch_document(&app).await;
    let mut job = String::new();
    for (method, template, path, who, body, status, shape) in CASES {
        let path = if path.is_empty() { template } else { path };
        let path = path.replace("{job}", &job);
        let what = format!("{method} {template}");
        let mut request = request(&app, method, &path);
        request = match who {
            Who::Anyone => request,
            Who::User => request.bearer_auth(&user),
            Who::Admin => request.bearer_auth(ADMIN),
            Who::Secret => request.bearer_auth(SECRET),
        };
        let json = "application/json";
        request = match body {
            Body::Empty => request,
            Body::Json(text) => request.header("content-type", json).body(*text),
            Body::Typed(kind, text) => request.header("content-type", *kind).body(*text),
            Body::Large => request
                .header("content-type", json)
                .body(format!("{{\"kind\":\"{}\"}}", "a".repeat(2 * LIMIT))),
        };
        let r = request.send().await.expect("request");
        let (code, headers) = (r.status().as_u16(), r.headers().clone());
        let text = r.text().await.unwrap();
        assert_eq!(code, *status, "{method} {path}: {text}");
        let answer = check_answer(&doc, &what, (code, &headers, &text));
        if let Some((at, schema)) = shape {
            let part = answer.pointer(at).and_then(Value::as_object).expect(at);
            let keys: BTreeSet<String> = part.keys().cloned().collect();
            assert_eq!(keys, property_names(&doc, schema), "{what}: {schema}");
        }
        if what == "post /admin/api/jobs" && code == 201 {
            job = answer["id"].as_i64().expect("job id").to_string();
        }
        if *method == "get" && *template == "/openapi.json" {
            assert_eq!(answer, doc);
        }
    }
}

/// A library application's answer, documented by its type.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Greeting {
    /// Whom it greets.
    name: String,
    message: String,
}

#[utoipa::path(
    get,
    path = "/v1/hello/{name}",
    tag = "Hello",
    operation_id = "hello",
    summary = "Greet someone",
    params(("name" = String, Path, description = "Whom to greet.")),
    responses(
        (status = 200, description = "The greeting.", body = Greeting),
        (status = 404, description = "Nobody greets `nobody`.")
    )
)]
async fn hello(
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<axum::Json<Greeting>, keel::http::ApiError> {
    if name == "nobody" {
        return Err(keel::http::ApiError::from_status(
            axum::http::StatusCode::NOT_FOUND,
        ));
    }
    let message = format!("hello, {name}");
    Ok(axum::Json(Greeting { name, message }))
}

/// Routes a library application adds with `Server::documented_routes` are in its
/// `/openapi.json`, with their schemas and Keel's problem and rate-limit answers, beside every
/// operation of Keel's own; routes added with `Server::routes` are served but not documented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_routes_are_documented() {
    use utoipa_axum::{router::OpenApiRouter, routes};

    let builder = TestApp::builder(TestDb::sqlite());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let plain = axum::Router::new().route("/v1/plain", axum::routing::get(|| async { "plain" }));
    let server = keel::Server::new(builder.settings())
        .routes(plain)
        .documented_routes(OpenApiRouter::new().routes(routes!(hello)));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run_on(listener, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..300 {
        let r = client.get(format!("{base}/health/ready")).send().await;
        if r.is_ok_and(|r| r.status() == 200) {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "the app did not turn ready");

    let get = |path: &str| client.get(format!("{base}{path}")).send();
    let doc: Value = get("/openapi.json").await.unwrap().json().await.unwrap();
    let op = &doc["paths"]["/v1/hello/{name}"]["get"];
    assert_eq!(op["operationId"], "hello", "{op}");
    assert_eq!(op["tags"], json!(["Hello"]));
    assert_eq!(op["parameters"][0]["name"], "name");
    let not_found = &op["responses"]["404"];
    assert_eq!(not_found["$ref"], "#/components/responses/NotFound");
    assert_eq!(not_found["description"], "Nobody greets `nobody`.");
    assert_eq!(
        op["responses"]["429"]["$ref"],
        "#/components/responses/TooManyRequests"
    );
    assert!(doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "Hello"));
    assert!(
        doc["paths"].get("/v1/plain").is_none(),
        "an undocumented route"
    );
    let keel = operations(keel::http::openapi::spec());
    let all = operations(&doc);
    assert!(keel.is_subset(&all), "Keel's own operations stay");
    assert_eq!(all.len(), keel.len() + 1);

    let r = get("/v1/hello/ann").await.unwrap();
    assert_eq!(r.status(), 200);
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    let greeting = check_answer(&doc, "get /v1/hello/{name}", (status, &headers, &text));
    assert_eq!(greeting["message"], "hello, ann");
    assert_eq!(property_names(&doc, "Greeting").len(), 2);
    let r = get("/v1/hello/nobody").await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    check_answer(&doc, "get /v1/hello/{name}", (status, &headers, &text));
    assert_eq!(get("/v1/plain").await.unwrap().status(), 200);

    let _ = stop.send(());
    running.await.unwrap().unwrap();
}
