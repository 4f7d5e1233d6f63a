//! Service errors as problems: the one mapping from each service's error type to HTTP.

use axum::http::StatusCode;

use super::problem::{ApiError, FieldError};
use crate::flags::FlagError;
use crate::jobs::JobError;
use crate::schedule::ScheduleError;
use crate::store::StoreError;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "database operation failed");
        match e {
            StoreError::Timeout(_) => ApiError::unavailable(
                "database-unavailable",
                "Database unavailable",
                "The database did not answer in time; try again shortly.",
            ),
            _ => ApiError::internal(),
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
