//! `keel smoke URL`: the checks to run against a fresh deploy. Each check is one request with a
//! stated expectation; the run passes only if every check does.

use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    pub name: String,
    pub passed: bool,
    pub detail: String,
    pub latency_ms: u64,
}

struct Check {
    name: &'static str,
    method: Method,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: Option<&'static str>,
    expect: fn(&reqwest::Response) -> Result<(), String>,
}

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct SmokeOptions {
    /// Only `/health/live` (a container health check).
    pub live_only: bool,
    /// Billing providers whose webhook route must exist (answer 401 to an unsigned delivery);
    /// the others may also be absent (404).
    pub webhooks: Vec<String>,
}

fn unauthorized_problem(response: &reqwest::Response) -> Result<(), String> {
    status_is(response, StatusCode::UNAUTHORIZED)?;
    is_problem(response)
}

fn is_problem(response: &reqwest::Response) -> Result<(), String> {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/problem+json") {
        Ok(())
    } else {
        Err(format!(
            "expected application/problem+json, got {content_type:?}"
        ))
    }
}

/// A webhook route answers an unauthenticated delivery with 401, or is absent (404) when its
/// provider is not enabled; [`run`] turns a 404 into a failure for a required provider.
fn webhook_refused(response: &reqwest::Response) -> Result<(), String> {
    match response.status() {
        StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND => is_problem(response),
        other => Err(format!(
            "expected 401 (or 404 when not enabled), got {other}"
        )),
    }
}

const LIVE: &str = "liveness";
const FORGED_EVENT: &str =
    r#"{"api_version":"1.0","event":{"id":"keel-smoke","type":"TEST","event_timestamp_ms":0}}"#;

fn status_is(response: &reqwest::Response, want: StatusCode) -> Result<(), String> {
    if response.status() == want {
        Ok(())
    } else {
        Err(format!("expected {want}, got {}", response.status()))
    }
}

fn header_present(response: &reqwest::Response, name: &str) -> Result<(), String> {
    response
        .headers()
        .get(name)
        .map(|_| ())
        .ok_or_else(|| format!("header {name} missing"))
}

const CHECKS: &[Check] = &[
    Check {
        name: LIVE,
        method: Method::GET,
        path: "/health/live",
        headers: &[],
        body: None,
        expect: |r| status_is(r, StatusCode::OK),
    },
    Check {
        name: "health",
        method: Method::GET,
        path: "/health",
        headers: &[],
        body: None,
        expect: |r| status_is(r, StatusCode::OK),
    },
    Check {
        name: "readiness",
        method: Method::GET,
        path: "/health/ready",
        headers: &[],
        body: None,
        expect: |r| status_is(r, StatusCode::OK),
    },
    Check {
        name: "edge headers",
        method: Method::GET,
        path: "/health/live",
        headers: &[],
        body: None,
        expect: |r| {
            header_present(r, "x-request-id")?;
            header_present(r, "x-content-type-options")?;
            header_present(r, "x-frame-options")
        },
    },
    Check {
        name: "protected route needs a token",
        method: Method::GET,
        path: "/v1/me",
        headers: &[],
        body: None,
        expect: |r| {
            status_is(r, StatusCode::UNAUTHORIZED)?;
            header_present(r, "www-authenticate")
        },
    },
    Check {
        name: "forged token is refused",
        method: Method::GET,
        path: "/v1/me",
        headers: &[(
            "authorization",
            "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJzbW9rZSJ9.",
        )],
        body: None,
        expect: unauthorized_problem,
    },
    Check {
        name: "revenuecat webhook refuses a forgery",
        method: Method::POST,
        path: "/webhooks/revenuecat",
        headers: &[
            ("authorization", "Bearer keel-smoke-forged"),
            ("content-type", "application/json"),
        ],
        body: Some(FORGED_EVENT),
        expect: webhook_refused,
    },
    Check {
        name: "stripe webhook refuses a forgery",
        method: Method::POST,
        path: "/webhooks/stripe",
        headers: &[
            ("stripe-signature", "t=0,v1=00"),
            ("content-type", "application/json"),
        ],
        body: Some(r#"{"id":"evt_keel_smoke","type":"keel.smoke","created":0}"#),
        expect: webhook_refused,
    },
    Check {
        name: "whop webhook refuses a forgery",
        method: Method::POST,
        path: "/webhooks/whop",
        headers: &[
            ("webhook-id", "msg_keel_smoke"),
            ("webhook-timestamp", "0"),
            ("webhook-signature", "v1,a2VlbC1zbW9rZS1mb3JnZWQ="),
            ("content-type", "application/json"),
        ],
        body: Some(
            r#"{"id":"msg_keel_smoke","type":"keel.smoke","timestamp":"1970-01-01T00:00:00Z","data":{}}"#,
        ),
        expect: webhook_refused,
    },
    Check {
        name: "unknown route is a problem",
        method: Method::GET,
        path: "/keel-smoke-no-such-route",
        headers: &[],
        body: None,
        expect: |r| {
            status_is(r, StatusCode::NOT_FOUND)?;
            is_problem(r)
        },
    },
];

/// Runs the checks against `base_url`, in order.
pub async fn run(
    base_url: &str,
    timeout: Duration,
    options: &SmokeOptions,
) -> Result<Vec<CheckOutcome>, String> {
    let base = base_url.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(format!("{base_url:?} is not an http(s) URL"));
    }
    let client = Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let mut outcomes = Vec::with_capacity(CHECKS.len());
    let checks = CHECKS
        .iter()
        .filter(|c| !options.live_only || c.name == LIVE);
    for check in checks {
        let started = Instant::now();
        let mut request = client.request(check.method.clone(), format!("{base}{}", check.path));
        for (name, value) in check.headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = check.body {
            request = request.body(body);
        }
        let result = request.send().await;
        let required = options
            .webhooks
            .iter()
            .any(|p| check.path == format!("/webhooks/{p}"));
        let (passed, detail) = match result {
            Ok(response) if required && response.status() == StatusCode::NOT_FOUND => (
                false,
                format!(
                    "{} {}: the route is absent (provider not enabled)",
                    check.method, check.path
                ),
            ),
            Ok(response) => match (check.expect)(&response) {
                Ok(()) => (
                    true,
                    format!(
                        "{} {} -> {}",
                        check.method,
                        check.path,
                        response.status().as_u16()
                    ),
                ),
                Err(why) => (false, format!("{} {}: {why}", check.method, check.path)),
            },
            Err(e) => (
                false,
                format!("{} {}: {}", check.method, check.path, request_error(&e)),
            ),
        };
        outcomes.push(CheckOutcome {
            name: check.name.to_string(),
            passed,
            detail,
            latency_ms: started.elapsed().as_millis() as u64,
        });
    }
    Ok(outcomes)
}

fn request_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or unreachable".into()
    } else {
        "request failed".into()
    }
}
