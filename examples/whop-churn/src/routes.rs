//! `POST /v1/companies/{company}/nudge`: a company's admin sends its reminder now.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::SecondsFormat;
use keel::auth::Principal;
use keel::http::{ApiError, AppState, Tenant};
use serde_json::{json, Value};

use crate::jobs::Remind;
use crate::Churn;

pub fn router(churn: Arc<Churn>) -> Router<AppState> {
    Router::new().route(
        "/v1/companies/{company}/nudge",
        post(move |state, path, user, tenant| nudge(churn.clone(), state, path, user, tenant)),
    )
}

/// Enqueues the company's reminder (audited as the caller's enqueue): 202 with the job id. The
/// caller must be an admin whose tenant is the company (for a Whop member, an active membership
/// in it).
async fn nudge(
    churn: Arc<Churn>,
    State(state): State<AppState>,
    Path(company): Path<String>,
    user: Principal,
    Tenant(tenant): Tenant,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if tenant != company || !user.is_admin() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin-required",
            "Admin required",
            "Only an admin of this company may nudge its members.",
        ));
    }
    let now = churn.clock.now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let job = Remind {
        company,
        tick: format!("nudge:{now}"),
    };
    let actor = format!("user:{}", user.user_id);
    let enqueued = state
        .queue
        .enqueue_audited(&[job.spec()], &actor)
        .await
        .map_err(|_| {
            ApiError::unavailable("unavailable", "Unavailable", "The nudge was not enqueued.")
        })?;
    let id = enqueued.first().map(|e| e.id);
    Ok((StatusCode::ACCEPTED, Json(json!({ "job_id": id }))))
}
