//! The admin API under `/admin/api`: queues, jobs, flags, schedules and the audit trail. Every
//! handler takes an [`Admin`], so authorization is visible in its signature.

mod audit;
mod flags;
mod jobs;
mod queues;
mod schedules;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use axum::Router;
use secrecy::ExposeSecret;

use super::metrics::bearer_matches;
use super::problem::ApiError;
use super::state::AppState;

/// The caller is an administrator (bearer `ADMIN_TOKEN`); `actor` names them in audit rows.
#[derive(Debug, Clone)]
pub struct Admin {
    pub actor: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = state.settings.auth.admin_token.as_ref();
        match token {
            Some(token) if bearer_matches(&parts.headers, token.expose_secret()) => Ok(Admin {
                actor: "admin-token".into(),
            }),
            _ => Err(ApiError::from_status(axum::http::StatusCode::UNAUTHORIZED)
                .with_www_authenticate("Bearer")),
        }
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/api/queues", get(queues::list))
        .route("/admin/api/queues/{name}/pause", post(queues::pause))
        .route("/admin/api/queues/{name}/resume", post(queues::resume))
        .route("/admin/api/queues/{name}/drain", post(queues::drain))
        .route("/admin/api/jobs", get(jobs::list).post(jobs::enqueue))
        .route("/admin/api/jobs/{id}/retry", post(jobs::retry))
        .route("/admin/api/jobs/{id}/discard", post(jobs::discard))
        .route("/admin/api/flags", get(flags::list))
        .route("/admin/api/flags/{name}", put(flags::set))
        .route("/admin/api/schedules", get(schedules::list))
        .route(
            "/admin/api/schedules/{name}/trigger",
            post(schedules::trigger),
        )
        .route("/admin/api/audit", get(audit::list))
}
