//! What the two job APIs share, the app's (`/v1/jobs`) and the operators' (`/admin/api/jobs`):
//! the checks on jobs to enqueue, and the JSON of one job.

use serde_json::{json, Value};

use super::problem::{ApiError, FieldError};
use super::state::AppState;
use crate::jobs::{is_valid_name, JobRow, JobSpec};

/// A job as operators see it (the same fields as `keel queue list --json`).
pub fn job_json(job: &JobRow) -> Value {
    json!({
        "id": job.id,
        "queue": job.queue,
        "kind": job.kind,
        "state": job.state,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "unique_key": job.unique_key,
        "run_at": job.run_at,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "last_error": job.last_error,
    })
}

/// Checks every field of `specs`, and that no handler of this process lacks for a kind: one 422
/// naming every problem (`at` gives the prefix of a job's fields by its index).
pub(super) fn check_specs(
    state: &AppState,
    specs: &[JobSpec],
    at: impl Fn(usize) -> String,
) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let at = at(i);
        if let Err(problems) = spec.validate() {
            errors.extend(problems.into_iter().map(|p| FieldError {
                field: format!("{at}{}", p.field),
                message: p.message,
            }));
        }
        if is_valid_name(&spec.kind) && !state.handlers.handles(&spec.kind) {
            errors.push(FieldError {
                field: format!("{at}kind"),
                message: crate::jobs::undeclared(&spec.kind),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}
