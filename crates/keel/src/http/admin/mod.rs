//! The admin API under `/admin/api`: queues, jobs, flags, schedules, the audit trail and the events
//! for the app. Every handler takes an [`Admin`], so authorization is visible in its signature.

pub(in crate::http) mod audit;
pub(in crate::http) mod events;
pub(in crate::http) mod flags;
pub(in crate::http) mod jobs;
pub(in crate::http) mod queues;
pub(in crate::http) mod schedules;
pub mod schemas;
pub(in crate::http) mod users;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::Router;
use secrecy::ExposeSecret;

use super::auth::{authenticate, refusal};
use super::metrics::bearer_matches;
use super::problem::ApiError;
use super::state::AppState;

/// Refusals every admin operation documents.
const NO_CREDENTIALS: &str = "Neither `ADMIN_TOKEN` nor a user token that verifies (also when \
    no `ADMIN_TOKEN` is configured and no user token is sent).";
const NOT_ADMIN: &str = "`admin-required`: the user is not in `ADMIN_USER_IDS`.";
const UNAVAILABLE: &str = "`auth-unavailable`, `database-unavailable` or `timeout`.";
const ENQUEUE_UNAVAILABLE: &str = "`enqueue-disabled`: the `enqueue` kill switch is off; or \
    `auth-unavailable`, `database-unavailable`, `timeout`.";
/// Refusals of the operations that read a JSON body.
const NOT_JSON: &str = "The body is not JSON (the detail gives line and column).";
const TOO_LARGE: &str = "The body is larger than `BODY_LIMIT_BYTES`.";
const NOT_JSON_TYPE: &str = "The body is not `application/json`.";

/// The caller is an administrator: bearer `ADMIN_TOKEN`, or a verified token whose user has the
/// admin role (`ADMIN_USER_IDS`). `actor` names them in audit rows.
#[derive(Debug, Clone)]
pub struct Admin {
    pub actor: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(token) = state.settings.auth.admin_token.as_ref() {
            if bearer_matches(&parts.headers, token.expose_secret()) {
                return Ok(Admin {
                    actor: "admin-token".into(),
                });
            }
        }
        let principal = authenticate(&parts.headers, state).await.map_err(refusal)?;
        if principal.is_admin() {
            Ok(Admin {
                actor: format!("user:{}", principal.user_id),
            })
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "admin-required",
                "Admin required",
                "This route is for administrators.",
            ))
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
        .route("/admin/api/events", get(events::list))
        .route("/admin/api/users/{id}", get(users::show))
        .route(
            "/admin/api/users/{id}/entitlements",
            get(users::entitlements),
        )
        .route("/admin/api/users/{id}/grants", post(users::grant))
        .route(
            "/admin/api/users/{id}/grants/{entitlement}",
            delete(users::revoke),
        )
}
