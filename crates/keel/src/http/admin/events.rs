//! `GET /admin/api/events`: the outbox of events for the app, to see what waits and why.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::Admin;
use crate::events::EventView;
use crate::http::extract::Query;
use crate::http::problem::ApiError;
use crate::http::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only this user's events.
    user_id: Option<String>,
    /// Only events not delivered yet.
    #[param(default = false)]
    pending: Option<bool>,
    /// At most this many (clamped to 1 … 1000).
    #[param(default = 50, minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/admin/api/events",
    tag = "Events",
    operation_id = "listAppEvents",
    summary = "Events for the app",
    description = "Events written for the app (`APP_EVENTS_URL`, docs/EVENTS.md), without their \
        data: undelivered ones first, oldest first, with their attempts, next attempt and last \
        error; then delivered ones, newest first.",
    security(("adminToken" = []), ("bearer" = [])),
    params(EventsQuery),
    responses(
        (status = 200, description = "The events.", body = Vec<EventView>),
        (status = 400, description = "A parameter cannot be read (e.g. `limit` is not an integer)."),
        (status = 401, description = super::NO_CREDENTIALS),
        (status = 403, description = super::NOT_ADMIN),
        (status = 503, description = super::UNAVAILABLE),
    )
)]
pub async fn list(
    _admin: Admin,
    State(state): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Vec<EventView>>, ApiError> {
    let events = state
        .app_events(
            q.user_id.as_deref(),
            q.pending.unwrap_or(false),
            q.limit.unwrap_or(50).clamp(1, 1000),
        )
        .await?;
    Ok(Json(events))
}
