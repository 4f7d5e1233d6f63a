//! `POST /v1/scheduler/{name}/trigger`: external cron (a platform scheduler, a CI job) fires a
//! schedule. Bearer `SCHEDULER_SECRET_KEY`; the route exists only when it is set.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa::ToSchema;

use super::metrics::bearer_matches;
use super::problem::ApiError;
use super::state::AppState;

const IDEMPOTENCY_KEY: &str = "idempotency-key";

// A schedule fired (`schedule::Fired`), as both trigger routes answer it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Fired {
    pub job_id: i64,
    /// True when this period (or this `Idempotency-Key`) had already fired: `job_id` is the job
    /// of that firing.
    pub deduplicated: bool,
}

impl From<crate::schedule::Fired> for Fired {
    fn from(fired: crate::schedule::Fired) -> Self {
        Fired {
            job_id: fired.job_id,
            deduplicated: fired.deduplicated,
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/scheduler/{name}/trigger",
    tag = "Scheduler",
    operation_id = "triggerSchedule",
    summary = "Fire a schedule (external cron)",
    description = "For a platform scheduler or a CI job. Fires at most once per period of the \
        schedule's cron expression; with an `Idempotency-Key`, once per key instead. This route \
        exists only when `SCHEDULER_SECRET_KEY` is set (404 otherwise).",
    security(("schedulerSecret" = [])),
    params(
        (
            "name" = String,
            Path,
            description = "The schedule's name (from keel.toml, or built in: `jobs.prune`, \
                `retention.events`, `privacy.maintenance`)."
        ),
        (
            "Idempotency-Key" = Option<String>,
            Header,
            description = "Fire once per key rather than once per period.",
            min_length = 1,
            max_length = 200
        ),
    ),
    responses(
        (
            status = 202,
            description = "Fired, or already fired in this period or for this key.",
            body = Fired
        ),
        (status = 400, description = "`Idempotency-Key` is not 1 to 200 visible ASCII characters."),
        (status = 401, description = "The request does not carry `SCHEDULER_SECRET_KEY`."),
        (status = 404, description = "No schedule of this name (or `SCHEDULER_SECRET_KEY` is unset)."),
        (
            status = 503,
            description = "`enqueue-disabled`: the `enqueue` kill switch is off; or the database \
                is unavailable."
        ),
    )
)]
pub async fn trigger(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Fired>), ApiError> {
    let authorized = state
        .settings
        .jobs
        .scheduler_secret_key
        .as_ref()
        .is_some_and(|secret| bearer_matches(&headers, secret.expose_secret()));
    if !authorized {
        return Err(ApiError::from_status(StatusCode::UNAUTHORIZED).with_www_authenticate("Bearer"));
    }
    let key = match headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(value) => match value.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= 200 => Some(k.to_string()),
            _ => {
                return Err(ApiError::malformed(
                    "Idempotency-Key must be 1 to 200 visible ASCII characters.",
                ))
            }
        },
    };
    let fired = state
        .scheduler
        .trigger(&name, key.as_deref(), "scheduler-trigger")
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Fired::from(fired))))
}
