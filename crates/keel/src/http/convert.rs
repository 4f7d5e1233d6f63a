//! Service errors as problems: the one mapping from each service's error type to HTTP.

use axum::http::StatusCode;

use super::problem::{ApiError, FieldError};
use crate::billing::BillingError;
use crate::flags::FlagError;
use crate::jobs::JobError;
use crate::schedule::ScheduleError;
use crate::store::StoreError;

/// The `Retry-After` of a `database-unavailable` answer, in seconds.
const DATABASE_RETRY_AFTER_S: u32 = 2;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "database operation failed");
        if e.is_unavailable() {
            ApiError {
                retry_after: Some(DATABASE_RETRY_AFTER_S),
                ..ApiError::unavailable(
                    "database-unavailable",
                    "Database unavailable",
                    "The database cannot be reached or did not answer in time; try again shortly.",
                )
            }
        } else {
            ApiError::internal()
        }
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::EnqueueDisabled => ApiError::unavailable(
                "enqueue-disabled",
                "Enqueue disabled",
                "The enqueue kill switch is off; no new jobs are accepted.",
            ),
            JobError::Invalid(problems) => ApiError::validation(
                problems
                    .into_iter()
                    .map(|p| FieldError {
                        field: p.field.to_string(),
                        message: p.message,
                    })
                    .collect(),
            ),
            JobError::NotFound(id) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                format!("No job {id}."),
            ),
            JobError::Flag(e) => e.into(),
            JobError::Store(e) => e.into(),
        }
    }
}

impl From<FlagError> for ApiError {
    fn from(e: FlagError) -> Self {
        match e {
            FlagError::Unknown(_) => ApiError::validation(vec![FieldError {
                field: "name".into(),
                message: e.to_string(),
            }]),
            FlagError::Store(e) => e.into(),
        }
    }
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::Unknown(name) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                format!("No schedule named {name}."),
            ),
            ScheduleError::Store(e) => e.into(),
            ScheduleError::EnqueueDisabled => JobError::EnqueueDisabled.into(),
            other => {
                tracing::error!(error = %other, "schedule firing failed");
                ApiError::internal()
            }
        }
    }
}

impl From<BillingError> for ApiError {
    fn from(e: BillingError) -> Self {
        match e {
            BillingError::Unauthorized(reason) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "webhook-unauthorized",
                "Webhook authentication failed",
                format!("The delivery is not authenticated: {reason}."),
            ),
            BillingError::Invalid(problems) => {
                let errors: Vec<FieldError> = problems
                    .into_iter()
                    .map(|p| FieldError {
                        field: p.field.to_string(),
                        message: p.message,
                    })
                    .collect();
                let detail = match errors.as_slice() {
                    [one] => format!("{}: {}", one.field, one.message),
                    many => format!("{} fields are invalid", many.len()),
                };
                ApiError {
                    errors,
                    ..ApiError::malformed(detail)
                }
            }
            BillingError::NotConfigured(what) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not-configured",
                "Not configured",
                format!("This needs {what}, which is not configured."),
            ),
            BillingError::Upstream(detail) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "revenuecat-unavailable",
                "RevenueCat unavailable",
                format!("RevenueCat could not be asked for the subscriber: {detail}. Try again shortly."),
            ),
            BillingError::Seal(e) => {
                tracing::error!(error = %e, "sealing failed");
                ApiError::internal()
            }
            BillingError::Job(e) => e.into(),
            BillingError::Store(e) => e.into(),
        }
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(e: crate::storage::StorageError) -> Self {
        use crate::storage::{LinkError, StorageError};
        match e {
            StorageError::Invalid { field, message } => ApiError::validation(vec![FieldError {
                field: field.to_string(),
                message,
            }]),
            StorageError::InvalidKey(message) => ApiError::validation(vec![FieldError {
                field: "key".into(),
                message,
            }]),
            StorageError::TypeRefused(content_type) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                format!(
                    "Uploads of {content_type} are not allowed ([storage.uploads] of keel.toml)."
                ),
            ),
            StorageError::TypeMismatch { expected, sent } => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                format!("This link takes {expected}, not {sent}."),
            ),
            StorageError::SizeRefused { size, max } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                format!("{size} bytes is more than the {max} bytes allowed for this type."),
            ),
            StorageError::TooLarge { max } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                format!("The upload is larger than the {max} bytes this link accepts."),
            ),
            StorageError::Body(_) => ApiError::malformed("The upload body could not be read."),
            StorageError::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                "No such file.",
            ),
            StorageError::NotUploaded => ApiError::new(
                StatusCode::CONFLICT,
                "upload-incomplete",
                "Upload incomplete",
                "Nothing was uploaded to this file's URL yet.",
            ),
            StorageError::SizeMismatch { declared, stored } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "upload-size-mismatch",
                "Upload size mismatch",
                format!(
                    "{stored} bytes were uploaded, not the {declared} declared; the upload was \
                     removed, send it again."
                ),
            ),
            StorageError::Link(LinkError::Invalid) => ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid-link",
                "Invalid link",
                "This link is not valid.",
            ),
            StorageError::Link(LinkError::Expired) => ApiError::new(
                StatusCode::FORBIDDEN,
                "expired-link",
                "Expired link",
                "This link has expired; ask for a new one.",
            ),
            StorageError::Backend(_) => ApiError::unavailable(
                "storage-unavailable",
                "Storage unavailable",
                "Object storage did not answer; try again shortly.",
            ),
            StorageError::Store(e) => e.into(),
        }
    }
}
