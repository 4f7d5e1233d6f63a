//! A user's files: `POST /v1/me/uploads` (a presigned upload under the user's prefix),
//! `POST /v1/me/files/{id}/confirm`, `GET /v1/me/files`, `GET`/`DELETE /v1/me/files/{id}`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract;
use super::problem::ApiError;
use super::state::AppState;
use crate::auth::Principal;
use crate::storage::{FileView, NewUpload, Upload};

const NO_TOKEN: &str = "No bearer token, or one that does not verify.";
const UNAVAILABLE: &str = "`storage-unavailable`: the storage backend did not answer; or \
    `database-unavailable`.";

/// The origin the request was sent to (`http://HOST`), the base of the filesystem backend's
/// links when `PUBLIC_URL` is unset.
pub(crate) fn request_origin(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(axum::http::header::HOST)?.to_str().ok()?;
    let valid = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    valid.then(|| format!("http://{host}"))
}

// What a user wants to upload.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// The content type, within `[storage.uploads]` of keel.toml.
    pub content_type: String,
    /// The exact size in bytes; the upload is confirmed only with this size.
    #[schema(minimum = 1)]
    pub size: u64,
    /// Served through `STORAGE_PUBLIC_BASE_URL` (the CDN) once confirmed; `false` by default.
    #[serde(default)]
    pub public: bool,
}

#[utoipa::path(
    post,
    path = "/v1/me/uploads",
    tag = "Storage",
    operation_id = "startUpload",
    summary = "Start an upload",
    description = "Records a pending file under a key Keel chooses in the caller's prefix and \
        answers where to send its bytes: a presigned `PUT` URL of the bucket (or, on the \
        filesystem backend, a signed link to Keel itself) and the headers to send with it. Then \
        confirm it with `POST /v1/me/files/{id}/confirm`; an upload not confirmed in time \
        (`abandoned_after`) is removed.",
    security(("bearer" = [])),
    request_body = UploadRequest,
    responses(
        (status = 201, description = "Where to send the bytes.", body = Upload),
        (status = 400, description = "The body is not JSON."),
        (status = 401, description = NO_TOKEN),
        (
            status = 413,
            description = "`payload-too-large`: more than the type's `max_size` (or a body larger \
                than `BODY_LIMIT_BYTES`)."
        ),
        (
            status = 415,
            description = "`unsupported-media-type`: the type is not in `[storage.uploads]` (or \
                the body is not `application/json`)."
        ),
        (status = 422, description = "`validation-failed`: a field is invalid."),
        (status = 503, description = UNAVAILABLE),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    extract::Json(body): extract::Json<UploadRequest>,
) -> Result<(StatusCode, Json<Upload>), ApiError> {
    state.users.touch(&principal).await?;
    let upload = state
        .storage
        .start_upload(
            &principal.user_id,
            NewUpload {
                content_type: body.content_type,
                size: body.size,
                public: body.public,
            },
            request_origin(&headers).as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(upload)))
}

#[utoipa::path(
    post,
    path = "/v1/me/files/{id}/confirm",
    tag = "Storage",
    operation_id = "confirmUpload",
    summary = "Confirm an upload",
    description = "Checks that storage holds the file with the declared size and records it. A \
        file of another size is removed (send it again). Confirming twice answers the file again.",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The file's id.")),
    responses(
        (status = 200, description = "The confirmed file, with a download URL.", body = FileView),
        (status = 401, description = NO_TOKEN),
        (status = 404, description = "No file of the caller has this id."),
        (status = 409, description = "`upload-incomplete`: nothing was uploaded yet."),
        (status = 422, description = "`upload-size-mismatch`: another size was uploaded."),
        (status = 503, description = UNAVAILABLE),
    )
)]
pub async fn confirm(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<FileView>, ApiError> {
    let origin = request_origin(&headers);
    Ok(Json(
        state
            .storage
            .confirm(&principal.user_id, &id, origin.as_deref())
            .await?,
    ))
}

// The caller's files.
#[derive(Debug, Serialize, ToSchema)]
pub struct Files {
    files: Vec<FileView>,
}

#[utoipa::path(
    get,
    path = "/v1/me/files",
    tag = "Storage",
    operation_id = "listFiles",
    summary = "The caller's files",
    description = "Confirmed files, oldest first, each with a short-lived signed download URL \
        (or the CDN URL of a public file when `STORAGE_PUBLIC_BASE_URL` is set).",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The files.", body = Files),
        (status = 401, description = NO_TOKEN),
        (status = 503, description = UNAVAILABLE),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
) -> Result<Json<Files>, ApiError> {
    let origin = request_origin(&headers);
    let files = state
        .storage
        .files(&principal.user_id, origin.as_deref())
        .await?;
    Ok(Json(Files { files }))
}

#[utoipa::path(
    get,
    path = "/v1/me/files/{id}",
    tag = "Storage",
    operation_id = "getFile",
    summary = "One of the caller's files",
    description = "The file with a download URL (absent while pending). Another user's id is \
        404.",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The file's id.")),
    responses(
        (status = 200, description = "The file.", body = FileView),
        (status = 401, description = NO_TOKEN),
        (status = 404, description = "No file of the caller has this id."),
        (status = 503, description = UNAVAILABLE),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<FileView>, ApiError> {
    let origin = request_origin(&headers);
    Ok(Json(
        state
            .storage
            .file(&principal.user_id, &id, origin.as_deref())
            .await?,
    ))
}

#[utoipa::path(
    delete,
    path = "/v1/me/files/{id}",
    tag = "Storage",
    operation_id = "deleteFile",
    summary = "Delete one of the caller's files",
    description = "Removes the file from storage, then its record.",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The file's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = NO_TOKEN),
        (status = 404, description = "No file of the caller has this id."),
        (status = 503, description = UNAVAILABLE),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.storage.delete_file(&principal.user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
