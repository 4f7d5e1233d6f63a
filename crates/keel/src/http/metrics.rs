//! `/metrics` in the Prometheus text format, behind bearer `METRICS_TOKEN` whenever it is set.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;

use super::problem::ApiError;
use super::state::AppState;
use crate::crypto::constant_time_eq;
use crate::metrics::Scrape;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "Health",
    operation_id = "metrics",
    summary = "Prometheus metrics",
    description = "Prometheus text format: build info, uptime, readiness and token verification \
        counters. Bearer `METRICS_TOKEN` whenever it is set; open otherwise.",
    security((), ("metricsToken" = [])),
    responses(
        (status = 200, description = "The metrics.", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 401, description = "`METRICS_TOKEN` is set and the request does not carry it."),
    )
)]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.settings.http.metrics_token {
        if !bearer_matches(&headers, token.expose_secret()) {
            return ApiError::from_status(StatusCode::UNAUTHORIZED)
                .with_www_authenticate("Bearer")
                .into_response();
        }
    }
    let mut scrape = Scrape::new();
    let ready = state.readiness.phase() == super::state::Phase::Ready;
    scrape
        .family(
            "keel_build_info",
            "Build and role of this process.",
            "gauge",
        )
        .sample(
            "keel_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("role", state.settings.role.as_str()),
            ],
            1,
        )
        .family(
            "keel_uptime_seconds",
            "Seconds since the process started.",
            "gauge",
        )
        .sample(
            "keel_uptime_seconds",
            &[],
            state.started.elapsed().as_secs_f64(),
        )
        .family(
            "keel_ready",
            "Whether the process answers ready (1) or not (0).",
            "gauge",
        )
        .sample("keel_ready", &[], u8::from(ready));
    auth_samples(&state, &mut scrape);
    rate_limit_samples(&state, &mut scrape);
    crate::metrics::process_samples(&mut scrape);
    queue_depth(&state, &mut scrape).await;
    let body = scrape.finish();
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// `Authorization: Bearer <expected>`, the scheme matched case-insensitively (RFC 9110).
pub fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && constant_time_eq(token.trim().as_bytes(), expected.as_bytes())
}

fn auth_samples(state: &AppState, scrape: &mut Scrape) {
    let stats = state.verifier.stats();
    scrape.family(
        "keel_auth_failures_total",
        "Refused bearer tokens by reason.",
        "counter",
    );
    for (reason, n) in stats.failures() {
        scrape.sample(
            "keel_auth_failures_total",
            &[("reason", reason.as_str())],
            n,
        );
    }
    let (verified, from_cache) = stats.verified_total();
    scrape
        .family(
            "keel_auth_verified_total",
            "Accepted bearer tokens.",
            "counter",
        )
        .sample("keel_auth_verified_total", &[], verified)
        .family(
            "keel_auth_cache_hits_total",
            "Accepted bearer tokens answered from the cache.",
            "counter",
        )
        .sample("keel_auth_cache_hits_total", &[], from_cache);
}

fn rate_limit_samples(state: &AppState, scrape: &mut Scrape) {
    let limiter = &state.limiter;
    scrape.family(
        "keel_rate_limited_total",
        "Requests refused with 429, by policy.",
        "counter",
    );
    for (policy, n) in limiter.limited_total() {
        scrape.sample("keel_rate_limited_total", &[("policy", policy)], n);
    }
    scrape
        .family(
            "keel_rate_limit_backend_errors_total",
            "Rate-limit checks the backend could not answer (let through, or 503 with \
             RATE_LIMIT_FAIL_CLOSED).",
            "counter",
        )
        .sample(
            "keel_rate_limit_backend_errors_total",
            &[("backend", limiter.backend_name())],
            limiter.backend_errors_total(),
        );
    if let Some((keys, evicted)) = limiter.memory_stats() {
        scrape
            .family(
                "keel_rate_limit_memory_keys",
                "Keys the in-memory rate limiter holds.",
                "gauge",
            )
            .sample("keel_rate_limit_memory_keys", &[], keys)
            .family(
                "keel_rate_limit_memory_evictions_total",
                "Active keys forgotten to stay within the in-memory bound.",
                "counter",
            )
            .sample("keel_rate_limit_memory_evictions_total", &[], evicted);
    }
}

/// Jobs per queue and state, and the age of each queue's oldest due job, read at scrape time
/// (bounded, so a slow database cannot hold the scrape).
async fn queue_depth(state: &AppState, scrape: &mut Scrape) {
    let read = async {
        let depth = state.queue.depth().await?;
        Ok::<_, crate::store::StoreError>((depth.counts, depth.oldest_due))
    };
    let Ok(Ok((counts, oldest))) =
        tokio::time::timeout(std::time::Duration::from_secs(2), read).await
    else {
        return;
    };
    scrape.family("keel_jobs", "Jobs by queue and state.", "gauge");
    for (queue, states) in &counts {
        for state_name in crate::jobs::JobState::ALL {
            let n = states.get(&state_name).copied().unwrap_or(0);
            scrape.sample(
                "keel_jobs",
                &[("queue", queue), ("state", state_name.as_str())],
                n,
            );
        }
    }
    scrape.family(
        "keel_queue_oldest_waiting_seconds",
        "Age of the oldest due job no worker holds.",
        "gauge",
    );
    let now = state.clock.now();
    for queue in counts.keys() {
        let age = oldest.get(queue).map_or(0.0, |at| {
            (now - *at).num_milliseconds().max(0) as f64 / 1000.0
        });
        scrape.sample(
            "keel_queue_oldest_waiting_seconds",
            &[("queue", queue)],
            age,
        );
    }
}
