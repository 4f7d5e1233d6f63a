//! `/health`, `/health/live` and `/health/ready`.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::middleware::errors::OwnBody;
use super::openapi::values;
use super::state::{AppState, Phase};

const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
const STORAGE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HealthCheck)]
pub struct Check {
    #[schema(schema_with = values::check_status)]
    pub status: &'static str,
    /// When the check answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = f64)]
    pub latency_ms: Option<f64>,
    /// Why the check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub error: Option<String>,
}

impl Check {
    fn from_result<E: std::fmt::Display>(result: Result<Duration, E>) -> Self {
        match result {
            Ok(latency) => Check {
                status: "ok",
                latency_ms: Some((latency.as_secs_f64() * 10_000.0).round() / 10.0),
                error: None,
            },
            Err(e) => Check {
                status: "fail",
                latency_ms: None,
                error: Some(e.to_string()),
            },
        }
    }

    fn ok(&self) -> bool {
        self.status == "ok"
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HealthChecks)]
pub struct Checks {
    pub database: Check,
    /// Present when `REDIS_URL` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Check)]
    pub redis: Option<Check>,
    /// The issuer's keys, when tokens are verified against `AUTH_JWKS_URL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Check)]
    pub auth: Option<Check>,
    /// The app behind the gateway, when `UPSTREAM_HEALTH_PATH` is set (2xx within 3 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Check)]
    pub upstream: Option<Check>,
    /// The storage backend, when `STORAGE_REQUIRED` is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Check)]
    pub storage: Option<Check>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthReport {
    #[schema(schema_with = values::health_status)]
    pub status: &'static str,
    #[schema(schema_with = values::role)]
    pub role: &'static str,
    pub version: &'static str,
    #[schema(schema_with = values::phase)]
    pub phase: &'static str,
    pub uptime_s: u64,
    pub checks: Checks,
}

/// The checks `/health` runs (also the base of `/health/deep`).
pub async fn checks(state: &AppState) -> Checks {
    let database = Check::from_result(state.ping_database(DATABASE_TIMEOUT).await);
    let redis = match state.settings.rate_limit.redis_target() {
        Some(Ok(target)) => Some(Check::from_result(
            crate::probe::redis_ping(&target, REDIS_TIMEOUT).await,
        )),
        Some(Err(message)) => Some(Check::from_result(Err::<Duration, _>(
            crate::probe::ProbeError::Target(message),
        ))),
        None => None,
    };
    let auth = if state.settings.role.serves_api() {
        state.verifier.keys_status().await.map(|keys| Check {
            status: if keys.loaded { "ok" } else { "fail" },
            latency_ms: None,
            error: (!keys.loaded).then(|| {
                keys.last_error
                    .unwrap_or_else(|| "the issuer's keys have not been fetched yet".into())
            }),
        })
    } else {
        None
    };
    let upstream = match &state.gateway {
        Some(gateway) => gateway.health().await.map(Check::from_result),
        None => None,
    };
    let storage = if state.settings.storage.required {
        Some(Check::from_result(
            state.storage.probe(STORAGE_TIMEOUT).await,
        ))
    } else {
        None
    };
    Checks {
        database,
        redis,
        auth,
        upstream,
        storage,
    }
}

/// 200 when every required dependency answers (`degraded` if an optional one does not), 503
/// `fail` otherwise: the required ones are those readiness requires.
#[utoipa::path(
    get,
    path = "/health",
    tag = "Health",
    operation_id = "health",
    summary = "Health report",
    description = "The database (2 s timeout), Redis when configured (1 s) and, in roles that \
        serve the API, the issuer's keys. Served by every role.",
    responses(
        (
            status = 200,
            description = "`ok`, or `degraded` when an optional dependency (Redis while the \
                limiter fails open) does not answer.",
            body = HealthReport
        ),
        (
            status = 503,
            description = "`fail`: a required dependency does not answer (the database, the \
                issuer's keys, Redis when the limiter fails closed). The body is the report, not \
                a problem.",
            body = HealthReport
        ),
    )
)]
pub async fn health(State(state): State<AppState>) -> Response {
    let checks = checks(&state).await;
    let status = checks.overall(redis_required(&state.settings), false);
    let code = status_code(status);
    let report = HealthReport {
        status,
        role: state.settings.role.as_str(),
        version: env!("CARGO_PKG_VERSION"),
        phase: state.readiness.phase().as_str(),
        uptime_s: state.started.elapsed().as_secs(),
        checks,
    };
    report_response(code, report)
}

impl Checks {
    /// Whether every required dependency answers: the database, the issuer's keys when they are
    /// checked, and Redis when `redis_required` (see [`redis_required`]).
    pub fn required_ok(&self, redis_required: bool) -> bool {
        self.database.ok()
            && (!redis_required || self.redis.as_ref().is_none_or(Check::ok))
            && self.auth.as_ref().is_none_or(Check::ok)
            && self.upstream.as_ref().is_none_or(Check::ok)
            && self.storage.as_ref().is_none_or(Check::ok)
    }

    /// `fail` when a required dependency does not answer; `degraded` when another check fails or
    /// `more_degraded` says so; `ok` otherwise.
    pub fn overall(&self, redis_required: bool, more_degraded: bool) -> &'static str {
        if !self.required_ok(redis_required) {
            "fail"
        } else if more_degraded
            || self.redis.as_ref().is_some_and(|r| !r.ok())
            || self.auth.as_ref().is_some_and(|a| !a.ok())
        {
            "degraded"
        } else {
            "ok"
        }
    }
}

/// Redis is required only when the limiter refuses requests without it; failing open, an outage
/// degrades `/health` but must not take every process out of rotation.
pub fn redis_required(settings: &crate::Settings) -> bool {
    settings.rate_limit.backend == crate::ratelimit::RateLimitBackend::Redis
        && settings.rate_limit.fail_closed
}

/// 503 for `fail`, 200 otherwise.
pub fn status_code(status: &str) -> StatusCode {
    if status == "fail" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

/// A health report as the answer, kept as is by the problem layer even on 503.
pub fn report_response<T: Serialize>(code: StatusCode, report: T) -> Response {
    let mut response = (code, Json(report)).into_response();
    response.extensions_mut().insert(OwnBody);
    response
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    #[schema(schema_with = values::live_status)]
    status: &'static str,
}

#[utoipa::path(
    get,
    path = "/health/live",
    tag = "Health",
    operation_id = "healthLive",
    summary = "Liveness",
    description = "200 while the process serves.",
    responses((status = 200, description = "The process serves.", body = Liveness))
)]
pub async fn live() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Readiness)]
pub struct ReadinessReport {
    #[schema(schema_with = values::readiness_status)]
    pub status: &'static str,
    #[schema(schema_with = values::phase)]
    pub phase: &'static str,
    /// Absent while the process is not in the `ready` phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Checks)]
    pub checks: Option<Checks>,
}

/// 200 once migrations are applied and every required dependency answers (the database, the
/// issuer's keys, Redis when the Redis limiter fails closed); 503 while starting, migrating or
/// draining.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "Health",
    operation_id = "healthReady",
    summary = "Readiness",
    description = "200 once migrations are applied and every required dependency answers (the \
        database, Redis when configured, the issuer's keys when they come from a JWKS URL). 503 \
        while starting or migrating, and from the first moment of shutdown.",
    responses(
        (status = 200, description = "Ready.", body = ReadinessReport),
        (
            status = 503,
            description = "Not ready: the body says the phase and, once started, which check \
                fails. It is the report, not a problem.",
            body = ReadinessReport
        ),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Response {
    let phase = state.readiness.phase();
    if phase != Phase::Ready {
        let report = ReadinessReport {
            status: "unavailable",
            phase: phase.as_str(),
            checks: None,
        };
        return report_response(StatusCode::SERVICE_UNAVAILABLE, report);
    }
    let checks = checks(&state).await;
    let ok = checks.required_ok(redis_required(&state.settings));
    let report = ReadinessReport {
        status: if ok { "ok" } else { "unavailable" },
        phase: phase.as_str(),
        checks: Some(checks),
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    report_response(code, report)
}
