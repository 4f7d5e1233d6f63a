//! The HTTP layer's one error type and its problem+json (RFC 9457) form.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::middleware::request_id;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
pub const PROBLEM_BASE: &str = "https://keel.dev/problems/";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's path in the body (`body` for the body as a whole), or the parameter's name.
    pub field: String,
    pub message: String,
}

/// An error answered to the client. Its detail is written for the client: never a secret, SQL or
/// a stack trace. Internal causes are logged where they occur, not carried here.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub www_authenticate: Option<&'static str>,
    /// Seconds for the `Retry-After` header, when the client should try again later.
    pub retry_after: Option<u32>,
}

/// An error (RFC 9457). Every 4xx and 5xx answer is one, served as `application/problem+json`.
/// It never shows a stack trace, SQL, a token or a secret.
#[derive(Serialize, ToSchema)]
#[schema(as = Problem)]
pub(crate) struct ProblemBody<'a> {
    /// `https://keel.dev/problems/` and a slug: malformed-request, unauthorized, invalid-token,
    /// admin-required, tenant-required, entitlement-required, forbidden, not-found,
    /// method-not-allowed, job-state-conflict, nul-character, payload-too-large, headers-too-large,
    /// unsupported-media-type,
    /// validation-failed, rate-limited, internal, timeout, unavailable, database-unavailable,
    /// auth-unavailable, rate-limit-unavailable, enqueue-disabled, upload-incomplete,
    /// upload-size-mismatch, invalid-link, expired-link, storage-unavailable; in gateway mode
    /// also client-timeout, upstream-unavailable, upstream-timeout.
    #[serde(rename = "type")]
    #[schema(format = "uri")]
    kind: String,
    /// A short summary of the problem type.
    title: &'a str,
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// What went wrong with this request, written for the client.
    detail: &'a str,
    /// The `x-request-id` of the request; quote it when reporting.
    request_id: String,
    /// The invalid fields (422 only; absent otherwise).
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    #[schema(value_type = Vec<FieldError>)]
    errors: &'a [FieldError],
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            slug,
            title,
            detail: detail.into(),
            errors: Vec::new(),
            www_authenticate: None,
            retry_after: None,
        }
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "Malformed request",
            detail,
        )
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
                "Validation failed",
                detail,
            )
        }
    }

    pub fn unavailable(slug: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, slug, title, detail)
    }

    /// A 500 whose cause has been logged by the caller.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "The server failed to answer this request. Quote the request id when reporting it.",
        )
    }

    /// The generic problem for a status produced outside a handler (routing, limits, timeouts).
    pub fn from_status(status: StatusCode) -> Self {
        let (slug, title, detail) = match status.as_u16() {
            400 => (
                "malformed-request",
                "Malformed request",
                "The request could not be read.",
            ),
            401 => (
                "unauthorized",
                "Unauthorized",
                "A valid bearer token is required.",
            ),
            403 => ("forbidden", "Forbidden", "The caller may not do this."),
            404 => ("not-found", "Not found", "No resource exists at this path."),
            405 => (
                "method-not-allowed",
                "Method not allowed",
                "This path does not accept this method; see the Allow header.",
            ),
            408 => (
                "request-timeout",
                "Request timeout",
                "The request was not received in time.",
            ),
            413 => (
                "payload-too-large",
                "Payload too large",
                "The request body is larger than this server accepts.",
            ),
            415 => (
                "unsupported-media-type",
                "Unsupported media type",
                "The request body must be application/json.",
            ),
            422 => (
                "validation-failed",
                "Validation failed",
                "The request body is not valid for this route.",
            ),
            429 => (
                "rate-limited",
                "Too many requests",
                "Slow down; see the Retry-After header.",
            ),
            503 => (
                "unavailable",
                "Service unavailable",
                "The service cannot answer now; try again shortly.",
            ),
            504 => ("timeout", "Timeout", "The request took too long."),
            s if s >= 500 => return Self::internal(),
            _ => ("error", "Request failed", "The request failed."),
        };
        Self::new(status, slug, title, detail)
    }

    pub fn with_www_authenticate(mut self, value: &'static str) -> Self {
        self.www_authenticate = Some(value);
        self
    }

    pub fn type_uri(&self) -> String {
        format!("{PROBLEM_BASE}{}", self.slug)
    }

    pub fn body_json(&self) -> Vec<u8> {
        let body = ProblemBody {
            kind: self.type_uri(),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            request_id: request_id::current().unwrap_or_default(),
            errors: &self.errors,
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body_json()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if let Some(value) = self.www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
