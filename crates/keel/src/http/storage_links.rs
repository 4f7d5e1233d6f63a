//! Links to stored objects outside a user's files: the filesystem backend's signed links
//! (`PUT`/`GET /v1/storage/files/{token}`, what a presigned URL of S3 is for a bucket), and
//! `POST /v1/storage/urls`, where the app's services and HTTP job kinds get a presigned link for
//! any key with a service token.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract;
use super::jobs_api::Service;
use super::problem::ApiError;
use super::state::AppState;
use super::storage::request_origin;
use crate::storage::{FileView, Link, LinkOp, RecordObject};

/// The longest a link of `POST /v1/storage/urls` may live: 7 days (S3's limit).
const MAX_LINK_SECONDS: u64 = 7 * 86_400;

#[utoipa::path(
    put,
    path = "/v1/storage/files/{token}",
    tag = "Storage",
    operation_id = "uploadByLink",
    summary = "Upload through a signed link (filesystem backend)",
    description = "The body is stored under the link's key. The link limits the size and names \
        the content type to send; a changed or expired link is refused.",
    params(("token" = String, Path, description = "The signed link.")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 204, description = "Stored."),
        (status = 400, description = "The body could not be read."),
        (status = 403, description = "`invalid-link` or `expired-link`."),
        (status = 413, description = "`payload-too-large`: more than the link allows."),
        (status = 415, description = "`unsupported-media-type`: another content type than the link names."),
        (status = 503, description = "`storage-unavailable`."),
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let stream = body.into_data_stream().map_err(|e| e.to_string()).boxed();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    state
        .storage
        .accept_upload(&token, content_type, length, stream)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/v1/storage/files/{token}",
    tag = "Storage",
    operation_id = "downloadByLink",
    summary = "Download through a signed link (filesystem backend)",
    description = "The object under the link's key, with its content type. A changed or expired \
        link is refused.",
    params(("token" = String, Path, description = "The signed link.")),
    responses(
        (status = 200, description = "The object.", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 403, description = "`invalid-link` or `expired-link`."),
        (status = 404, description = "Nothing is stored under the link's key."),
        (status = 503, description = "`storage-unavailable`."),
    )
)]
pub async fn download(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let (content_type, size, stream) = state.storage.open_download(&token).await?;
    let mut response = Body::from_stream(stream).into_response();
    let out = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        out.insert(header::CONTENT_TYPE, value);
    }
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

// A link the app asks for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// `GET` to download, `PUT` to upload.
    #[schema(pattern = "^(GET|PUT)$")]
    pub method: String,
    /// The object's key: segments of `A-Z a-z 0-9 . _ - = + !` separated by `/`.
    pub key: String,
    /// How long the link lives (1 s to 7 days); the `[storage]` TTL of its kind by default.
    #[schema(minimum = 1, maximum = 604800)]
    pub expires_in: Option<u64>,
    /// The content type an upload is stored with (`application/octet-stream` by default).
    pub content_type: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/storage/urls",
    tag = "Storage",
    operation_id = "storageLink",
    summary = "A presigned link for any key (the app)",
    description = "For the app's services and HTTP job kinds in any language: a presigned `PUT` \
        or `GET` for a key, so a job can store its output (and a later request fetch it) \
        without handling storage credentials. Authenticated with a service token of \
        `SERVICE_TOKENS`.",
    security(("serviceToken" = [])),
    request_body = LinkRequest,
    responses(
        (status = 200, description = "The link.", body = Link),
        (status = 400, description = "The body is not JSON."),
        (status = 413, description = "The body is larger than `BODY_LIMIT_BYTES`."),
        (status = 415, description = "The body is not `application/json`."),
        (status = 401, description = "No service token, or not one of `SERVICE_TOKENS`."),
        (status = 422, description = "`validation-failed`: the method, key or lifetime is invalid."),
        (status = 503, description = "`storage-unavailable`."),
    )
)]
pub async fn link(
    _service: Service,
    State(state): State<AppState>,
    headers: HeaderMap,
    extract::Json(body): extract::Json<LinkRequest>,
) -> Result<Json<Link>, ApiError> {
    let invalid = |field: &str, message: &str| {
        ApiError::validation(vec![super::problem::FieldError {
            field: field.into(),
            message: message.into(),
        }])
    };
    let op = match body.method.as_str() {
        "GET" => LinkOp::Get,
        "PUT" => LinkOp::Put,
        _ => return Err(invalid("method", "must be GET or PUT")),
    };
    let rules = &state.settings.storage.rules;
    let ttl = match body.expires_in {
        None if op == LinkOp::Put => rules.upload_url_ttl,
        None => rules.download_url_ttl,
        Some(s) if (1..=MAX_LINK_SECONDS).contains(&s) => std::time::Duration::from_secs(s),
        Some(_) => return Err(invalid("expires_in", "must be from 1 to 604800 seconds")),
    };
    if let Some(t) = &body.content_type {
        if !crate::storage::settings::is_content_type(&crate::storage::settings::essence(t)) {
            return Err(invalid(
                "content_type",
                "must be a content type such as audio/mpeg",
            ));
        }
    }
    let origin = request_origin(&headers);
    let link = state
        .storage
        .link(
            op,
            &body.key,
            ttl,
            body.content_type.as_deref(),
            origin.as_deref(),
        )
        .await?;
    Ok(Json(link))
}

// An object the app stored through a link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordRequest {
    /// The key the object was stored under.
    pub key: String,
    /// Its content type (`application/octet-stream` by default).
    pub content_type: Option<String>,
    /// The user it belongs to: listed in their files, exported and erased with them.
    pub user_id: Option<String>,
    /// Served through `STORAGE_PUBLIC_BASE_URL` when set; `false` by default.
    #[serde(default)]
    pub public: bool,
    /// Removed by the cleanup after this many seconds (a temporary object).
    #[schema(minimum = 1)]
    pub expires_in: Option<u64>,
}

#[utoipa::path(
    post,
    path = "/v1/storage/objects",
    tag = "Storage",
    operation_id = "recordObject",
    summary = "Record an object stored through a link (the app)",
    description = "After a job or the app's backend stored an object through a link of \
        `POST /v1/storage/urls`: Keel checks the backend holds it, records it with its stored \
        size (for a user: in their files, their export and their erasure) and answers its \
        download URL (the CDN URL of a public object). Recording a key again replaces the \
        record. Authenticated with a service token of `SERVICE_TOKENS`.",
    security(("serviceToken" = [])),
    request_body = RecordRequest,
    responses(
        (status = 201, description = "The recorded object.", body = FileView),
        (status = 400, description = "The body is not JSON."),
        (status = 401, description = "No service token, or not one of `SERVICE_TOKENS`."),
        (status = 404, description = "Nothing is stored under the key."),
        (status = 413, description = "The body is larger than `BODY_LIMIT_BYTES`."),
        (status = 415, description = "The body is not `application/json`."),
        (status = 422, description = "`validation-failed`: the key, content type, user or lifetime is invalid."),
        (status = 503, description = "`storage-unavailable`."),
    )
)]
pub async fn record(
    _service: Service,
    State(state): State<AppState>,
    headers: HeaderMap,
    extract::Json(body): extract::Json<RecordRequest>,
) -> Result<(StatusCode, Json<FileView>), ApiError> {
    let invalid = |field: &str, message: &str| {
        ApiError::validation(vec![super::problem::FieldError {
            field: field.into(),
            message: message.into(),
        }])
    };
    if let Some(t) = &body.content_type {
        if !crate::storage::settings::is_content_type(&crate::storage::settings::essence(t)) {
            return Err(invalid(
                "content_type",
                "must be a content type such as audio/mpeg",
            ));
        }
    }
    if body
        .user_id
        .as_deref()
        .is_some_and(|u| u.is_empty() || u.chars().count() > 255)
    {
        return Err(invalid("user_id", "must be 1 to 255 characters"));
    }
    let expires_in = match body.expires_in {
        None => None,
        Some(s) if (1..=10 * 365 * 86_400).contains(&s) => Some(std::time::Duration::from_secs(s)),
        Some(_) => return Err(invalid("expires_in", "must be from 1 second to 10 years")),
    };
    let origin = request_origin(&headers);
    let object = RecordObject {
        key: body.key,
        content_type: body.content_type,
        user_id: body.user_id,
        public: body.public,
        expires_in,
    };
    let view = state.storage.record(object, origin.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(view)))
}
