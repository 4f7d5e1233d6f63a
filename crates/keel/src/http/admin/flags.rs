use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::schemas::{FlagList, FlagSet};
use super::Admin;
use crate::http::extract;
use crate::http::problem::ApiError;
use crate::http::state::AppState;

#[utoipa::path(
    get,
    path = "/admin/api/flags",
    tag = "Flags",
    operation_id = "listFlags",
    summary = "List kill switches",
    description = "`scheduler`, `enqueue`, `workers` and every `queue:NAME`; each process sees a change within 5 seconds.",
    security(("adminToken" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The flags.", body = FlagList),
        (status = 401, description = super::NO_CREDENTIALS),
        (status = 403, description = super::NOT_ADMIN),
        (status = 503, description = super::UNAVAILABLE),
    )
)]
pub async fn list(
    _admin: Admin,
    State(state): State<AppState>,
) -> Result<Json<FlagList>, ApiError> {
    let flags = state.flags.list().await?;
    Ok(Json(FlagList { flags }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = FlagChange)]
pub struct SetFlag {
    enabled: bool,
}

#[utoipa::path(
    put,
    path = "/admin/api/flags/{name}",
    tag = "Flags",
    operation_id = "setFlag",
    summary = "Set a kill switch",
    description = "Switches a flag on or off, with an audit row.",
    security(("adminToken" = []), ("bearer" = [])),
    params(("name" = String, Path, description = "`scheduler`, `enqueue`, `workers` or `queue:NAME`.")),
    request_body = SetFlag,
    responses(
        (status = 200, description = "Set.", body = FlagSet),
        (
            status = 422,
            description = "An unknown flag (`errors[].field` is `name`), or a body that is not `{\"enabled\": bool}`."
        ),
        (status = 401, description = super::NO_CREDENTIALS),
        (status = 403, description = super::NOT_ADMIN),
        (status = 503, description = super::UNAVAILABLE),
        (status = 400, description = super::NOT_JSON),
        (status = 413, description = super::TOO_LARGE),
        (status = 415, description = super::NOT_JSON_TYPE),
    )
)]
pub async fn set(
    admin: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
    extract::Json(body): extract::Json<SetFlag>,
) -> Result<Json<FlagSet>, ApiError> {
    state.flags.set(&name, body.enabled, &admin.actor).await?;
    let enabled = body.enabled;
    Ok(Json(FlagSet { name, enabled }))
}
