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
    expect: fn(&reqwest::Response) -> Result<(), String>,
}

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
        name: "liveness",
        method: Method::GET,
        path: "/health/live",
        expect: |r| status_is(r, StatusCode::OK),
    },
    Check {
        name: "health",
        method: Method::GET,
        path: "/health",
        expect: |r| status_is(r, StatusCode::OK),
    },
    Check {
        name: "readiness",
        method: Method::GET,
        path: "/health/ready",
        expect: |r| status_is(r, StatusCode::OK),
    },
    Check {
        name: "edge headers",
        method: Method::GET,
        path: "/health/live",
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
        expect: |r| {
            status_is(r, StatusCode::UNAUTHORIZED)?;
            header_present(r, "www-authenticate")
        },
    },
    Check {
        name: "unknown route is a problem",
        method: Method::GET,
        path: "/keel-smoke-no-such-route",
        expect: |r| {
            status_is(r, StatusCode::NOT_FOUND)?;
            let content_type = r
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
        },
    },
];

/// Runs every check against `base_url`, in order.
pub async fn run(base_url: &str, timeout: Duration) -> Result<Vec<CheckOutcome>, String> {
    let base = base_url.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(format!("{base_url:?} is not an http(s) URL"));
    }
    let client = Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let mut outcomes = Vec::with_capacity(CHECKS.len());
    for check in CHECKS {
        let started = Instant::now();
        let result = client
            .request(check.method.clone(), format!("{base}{}", check.path))
            .send()
            .await;
        let (passed, detail) = match result {
            Ok(response) => match (check.expect)(&response) {
                Ok(()) => (true, format!("{} {}", check.method, check.path)),
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
