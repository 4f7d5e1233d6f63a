//! The jobs API for the app: `POST /v1/jobs` (one job, or a batch) and `GET /v1/jobs/{id}`,
//! with a service credential of `SERVICE_TOKENS` (not a user token). The credential's name is
//! the actor of the enqueue's audit row.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::admin::schemas::Job;
use super::auth::bearer_token;
use super::extract::{self, RawJson};
use super::job_body::{check_specs, job_json};
use super::problem::{ApiError, FieldError};
use super::state::AppState;
use crate::jobs::{Enqueued, JobError, JobFilter, JobSpec};

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The most jobs one request may enqueue.
pub const MAX_BATCH: usize = 1000;

/// The longest `delay_seconds`: a year.
const MAX_DELAY_SECONDS: u64 = 366 * 86_400;

/// The caller of the jobs API: a service credential's name.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
}

impl FromRequestParts<AppState> for Service {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Ok(token) = bearer_token(&parts.headers) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                "A service token (SERVICE_TOKENS) is required as a bearer token.",
            )
            .with_www_authenticate("Bearer"));
        };
        match state.settings.auth.service_tokens.identify(token) {
            Some(name) => Ok(Service {
                name: name.to_string(),
            }),
            None => {
                tracing::info!(
                    request_id = super::middleware::request_id::current().unwrap_or_default(),
                    "service token refused"
                );
                Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid-token",
                    "Invalid token",
                    "The bearer token is not a service token of SERVICE_TOKENS.",
                )
                .with_www_authenticate("Bearer error=\"invalid_token\""))
            }
        }
    }
}

// A job to enqueue through the jobs API. Unset fields take the defaults (or those of the kind's
// declaration): queue `default`, priority 0, now, 20 attempts, a 300 s timeout. Unknown fields
// are refused.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewJob {
    /// A declared kind: built in, a Rust handler of the server, or an HTTP kind of keel.toml.
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,100}$")]
    pub kind: String,
    /// Any JSON (at most 256 KiB); `{}` when absent or null.
    #[serde(default)]
    pub args: Value,
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,100}$")]
    pub queue: Option<String>,
    /// Lower runs first.
    #[schema(minimum = -32768, maximum = 32767, default = 0)]
    pub priority: Option<i16>,
    /// Not run before this time. At most one of `run_at` and `delay_seconds`.
    pub run_at: Option<DateTime<Utc>>,
    /// Not run for this many seconds.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 31622400)]
    pub delay_seconds: Option<u64>,
    #[schema(minimum = 1, maximum = 1000)]
    pub max_attempts: Option<i32>,
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 86400)]
    pub timeout_seconds: Option<u64>,
    /// While a job with this key is live, enqueueing another returns it. Or use the
    /// `Idempotency-Key` header.
    #[schema(min_length = 1, max_length = 500)]
    pub unique_key: Option<String>,
    /// After 5 consecutive failures under one key, its jobs wait 60 s.
    #[schema(min_length = 1, max_length = 500)]
    pub breaker_key: Option<String>,
}

// Several jobs, enqueued together (in one transaction per 1,000).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewJobBatch {
    /// 1 to 1,000 jobs.
    pub jobs: Vec<NewJob>,
}

/// What `POST /v1/jobs` reads: one job, or `{"jobs": [...]}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EnqueueRequest {
    One(NewJob),
    Batch(NewJobBatch),
}

/// The jobs of a batch, in the order given.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnqueuedBatch {
    pub jobs: Vec<Enqueued>,
}

/// What `POST /v1/jobs` answers: one job's result, or a batch's.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EnqueueAnswer {
    One(Enqueued),
    Batch(EnqueuedBatch),
}

/// `Idempotency-Key`: 1 to 200 visible ASCII characters, or none.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get(IDEMPOTENCY_KEY) {
        None => Ok(None),
        Some(value) => match value.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= 200 => Ok(Some(k.to_string())),
            _ => Err(ApiError::malformed(
                "Idempotency-Key must be 1 to 200 visible ASCII characters.",
            )),
        },
    }
}

fn field(field: String, message: &str) -> FieldError {
    FieldError {
        field,
        message: message.to_string(),
    }
}

/// `job` as a spec, with `key` as its unique key; `at` names it in problems.
fn spec_of(
    job: NewJob,
    key: Option<String>,
    at: &str,
    now: DateTime<Utc>,
    problems: &mut Vec<FieldError>,
) -> JobSpec {
    let run_at = match (job.run_at, job.delay_seconds) {
        (Some(_), Some(_)) => {
            problems.push(field(
                format!("{at}delay_seconds"),
                "give run_at or delay_seconds, not both",
            ));
            None
        }
        (_, Some(delay)) if delay > MAX_DELAY_SECONDS => {
            problems.push(field(
                format!("{at}delay_seconds"),
                "must be at most 31622400 (a year)",
            ));
            None
        }
        (_, Some(delay)) => Some(now + chrono::Duration::seconds(delay as i64)),
        (run_at, None) => run_at,
    };
    let unique_key = match (job.unique_key, key) {
        (Some(_), Some(_)) => {
            problems.push(field(
                format!("{at}unique_key"),
                "give the unique key once: in the body or as Idempotency-Key",
            ));
            None
        }
        (body, header) => body.or(header),
    };
    JobSpec {
        kind: job.kind,
        args: job.args,
        queue: job.queue,
        priority: job.priority,
        run_at,
        max_attempts: job.max_attempts,
        timeout_seconds: job.timeout_seconds,
        unique_key,
        breaker_key: job.breaker_key,
    }
}

/// The specs of a request body, each checked for what the job spec cannot check itself.
fn specs_of(
    body: &[u8],
    key: Option<String>,
    now: DateTime<Utc>,
) -> Result<(Vec<JobSpec>, bool), ApiError> {
    let value: Value = extract::parse(body)?;
    let mut problems = Vec::new();
    let request = if value.get("jobs").is_some() {
        EnqueueRequest::Batch(extract::parse(body)?)
    } else {
        EnqueueRequest::One(extract::parse(body)?)
    };
    let batch = matches!(request, EnqueueRequest::Batch(_));
    let specs = match request {
        EnqueueRequest::Batch(NewJobBatch { jobs }) => {
            if jobs.is_empty() || jobs.len() > MAX_BATCH {
                return Err(ApiError::validation(vec![field(
                    "jobs".into(),
                    "must hold 1 to 1000 jobs",
                )]));
            }
            jobs.into_iter()
                .enumerate()
                .map(|(i, job)| {
                    let key = key.as_ref().map(|k| format!("{k}:{i}"));
                    spec_of(job, key, &format!("jobs[{i}]."), now, &mut problems)
                })
                .collect()
        }
        EnqueueRequest::One(job) => vec![spec_of(job, key, "", now, &mut problems)],
    };
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    Ok((specs, batch))
}

#[utoipa::path(
    post,
    path = "/v1/jobs",
    tag = "Jobs API",
    operation_id = "enqueueAppJobs",
    summary = "Enqueue jobs (the app)",
    description = "One job, or a batch `{\"jobs\": [...]}` of up to 1,000 enqueued together. \
        Authenticated with a service token of `SERVICE_TOKENS`, whose name is the actor of the \
        audit row. With `Idempotency-Key`, the key is the job's unique key (in a batch, \
        `KEY:INDEX` for each job): while that job is live, the same request answers it again \
        (`deduplicated: true`) rather than enqueueing another.",
    security(("serviceToken" = [])),
    params((
        "Idempotency-Key" = Option<String>,
        Header,
        description = "The job's unique key.",
        min_length = 1,
        max_length = 200
    )),
    request_body = EnqueueRequest,
    responses(
        (
            status = 201,
            description = "Enqueued: one job's result, or `{\"jobs\": [...]}` for a batch.",
            body = EnqueueAnswer
        ),
        (
            status = 200,
            description = "One job whose unique key a live job holds: that job (`deduplicated: true`).",
            body = Enqueued
        ),
        (status = 400, description = "The body is not JSON, or `Idempotency-Key` is not 1 to 200 visible ASCII characters."),
        (status = 401, description = "No service token, or not one of `SERVICE_TOKENS` (a user token is not one)."),
        (status = 413, description = "The body is larger than `BODY_LIMIT_BYTES`."),
        (status = 415, description = "The body is not `application/json`."),
        (status = 422, description = "A field is missing, unknown, of the wrong type or out of range, or the kind is not declared; `errors` names each."),
        (status = 503, description = "`enqueue-disabled`: the `enqueue` kill switch is off; or the database is unavailable."),
    )
)]
pub async fn enqueue(
    service: Service,
    State(state): State<AppState>,
    headers: HeaderMap,
    RawJson(body): RawJson,
) -> Result<(StatusCode, Json<EnqueueAnswer>), ApiError> {
    let key = idempotency_key(&headers)?;
    let (specs, batch) = specs_of(&body, key, state.clock.now())?;
    check_specs(&state, &specs, |i| {
        if batch {
            format!("jobs[{i}].")
        } else {
            String::new()
        }
    })?;
    let actor = format!("service:{}", service.name);
    let enqueued = state.queue.enqueue_audited(&specs, &actor).await?;
    if batch {
        let answer = EnqueueAnswer::Batch(EnqueuedBatch { jobs: enqueued });
        return Ok((StatusCode::CREATED, Json(answer)));
    }
    let first = enqueued.first().copied().ok_or_else(ApiError::internal)?;
    let status = if first.deduplicated {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(EnqueueAnswer::One(first))))
}

#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "Jobs API",
    operation_id = "getAppJob",
    summary = "A job's state (the app)",
    description = "Its state, attempts, last error and times. Authenticated with a service token \
        of `SERVICE_TOKENS`.",
    security(("serviceToken" = [])),
    params(("id" = i64, Path, description = "The job's id.")),
    responses(
        (status = 200, description = "The job.", body = Job),
        (status = 400, description = "The id is not an integer."),
        (status = 401, description = "No service token, or not one of `SERVICE_TOKENS`."),
        (status = 404, description = "No job has this id."),
        (status = 503, description = "The database is unavailable."),
    )
)]
pub async fn get(
    _service: Service,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let filter = JobFilter {
        id: Some(id),
        limit: 1,
        ..JobFilter::default()
    };
    let jobs = state.queue.list(&filter).await?;
    let job = jobs.first().ok_or(JobError::NotFound(id))?;
    Ok(Json(job_json(job)))
}
