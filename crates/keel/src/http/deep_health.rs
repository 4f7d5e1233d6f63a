//! `GET /health/deep`: `/health`, plus the token verifier's keys (reachable and fresh) and the
//! job system against thresholds (`[health]` in `keel.toml`). Bearer `METRICS_TOKEN` whenever it
//! is set. 200 `ok` or `degraded`, 503 `fail` (a required dependency does not answer).

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa::ToSchema;

use super::health::{checks, report_response, status_code, Checks};
use super::metrics::bearer_matches;
use super::openapi::values;
use super::problem::ApiError;
use super::state::AppState;
use crate::auth::KeysStatus;
use crate::config::HealthThresholds;

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueCheck {
    #[schema(schema_with = values::queue_status, required = false)]
    pub status: &'static str,
    #[schema(required = false)]
    pub backlog: i64,
    #[schema(required = false)]
    pub oldest_waiting_s: f64,
    #[schema(required = false)]
    pub discarded_last_hour: i64,
    #[schema(inline, required = false)]
    pub thresholds: HealthThresholdsView,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exceeded: Vec<&'static str>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthThresholdsView {
    #[schema(required = false)]
    pub max_backlog: i64,
    #[schema(required = false)]
    pub max_oldest_waiting_seconds: f64,
    #[schema(required = false)]
    pub max_discarded_per_hour: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeepHealthReport)]
pub struct DeepReport {
    #[schema(schema_with = values::deep_status)]
    pub status: &'static str,
    #[schema(schema_with = values::role)]
    pub role: &'static str,
    pub version: &'static str,
    pub uptime_s: u64,
    pub checks: Checks,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = values::verifier)]
    pub verifier: Option<KeysStatus>,
    /// Absent when the database does not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = QueueCheck, inline)]
    pub queue: Option<QueueCheck>,
}

#[utoipa::path(
    get,
    path = "/health/deep",
    tag = "Health",
    operation_id = "healthDeep",
    summary = "Deep health report",
    description = "`/health` plus the token verifier's keys and the job system against the \
        thresholds of `[health]` in `keel.toml`. Bearer `METRICS_TOKEN` whenever it is set. API \
        roles only.",
    security((), ("metricsToken" = [])),
    responses(
        (
            status = 200,
            description = "`ok`, or `degraded` when a dependency does not answer, the keys are \
                stale or a threshold is exceeded (named in `queue.exceeded`).",
            body = DeepReport
        ),
        (
            status = 503,
            description = "`fail`: the database does not answer. It is the report, not a problem.",
            body = DeepReport
        ),
        (status = 401, description = "`METRICS_TOKEN` is set and the request does not carry it."),
    )
)]
pub async fn deep(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.settings.http.metrics_token {
        if !bearer_matches(&headers, token.expose_secret()) {
            return ApiError::from_status(StatusCode::UNAUTHORIZED)
                .with_www_authenticate("Bearer")
                .into_response();
        }
    }
    let checks = checks(&state).await;
    let verifier = state.verifier.keys_status().await;
    let queue = if checks.database.status == "ok" {
        queue_check(&state, &state.settings.file.health).await
    } else {
        None
    };
    let status = checks.overall(
        super::health::redis_required(&state.settings),
        verifier.as_ref().is_some_and(|k| !k.fresh)
            || queue.as_ref().is_none_or(|q| q.status != "ok"),
    );
    let code = status_code(status);
    let report = DeepReport {
        status,
        role: state.settings.role.as_str(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: state.started.elapsed().as_secs(),
        checks,
        verifier,
        queue,
    };
    report_response(code, report)
}

async fn queue_check(state: &AppState, limits: &HealthThresholds) -> Option<QueueCheck> {
    let now = state.clock.now();
    let read = async {
        let depth = state.queue.depth().await?;
        let discarded = state
            .queue
            .discarded_within(chrono::Duration::hours(1))
            .await?;
        Ok::<_, crate::store::StoreError>((depth.counts, depth.oldest_due, discarded))
    };
    let (counts, oldest, discarded) = tokio::time::timeout(Duration::from_secs(3), read)
        .await
        .ok()?
        .ok()?;
    let backlog: i64 = counts
        .values()
        .flat_map(|states| {
            states
                .iter()
                .filter(|(s, _)| {
                    matches!(
                        s,
                        crate::jobs::JobState::Scheduled
                            | crate::jobs::JobState::Available
                            | crate::jobs::JobState::Retryable
                    )
                })
                .map(|(_, n)| *n)
        })
        .sum();
    let oldest_waiting_s = oldest
        .values()
        .map(|at| (now - *at).num_milliseconds().max(0) as f64 / 1000.0)
        .fold(0.0, f64::max);
    let mut exceeded = Vec::new();
    if backlog > limits.max_backlog {
        exceeded.push("max_backlog");
    }
    if oldest_waiting_s > limits.max_oldest_waiting_seconds {
        exceeded.push("max_oldest_waiting_seconds");
    }
    if discarded > limits.max_discarded_per_hour {
        exceeded.push("max_discarded_per_hour");
    }
    Some(QueueCheck {
        status: if exceeded.is_empty() {
            "ok"
        } else {
            "degraded"
        },
        backlog,
        oldest_waiting_s,
        discarded_last_hour: discarded,
        thresholds: HealthThresholdsView {
            max_backlog: limits.max_backlog,
            max_oldest_waiting_seconds: limits.max_oldest_waiting_seconds,
            max_discarded_per_hour: limits.max_discarded_per_hour,
        },
        exceeded,
    })
}
