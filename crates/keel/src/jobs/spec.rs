//! What to enqueue, checked once at the edge of the job system.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{is_valid_name, Job, DEFAULT_QUEUE};
use crate::store::jobs::NewJob;

pub const DEFAULT_MAX_ATTEMPTS: i32 = 20;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_KEY_LEN: usize = 500;
const MAX_ARGS_BYTES: usize = 256 * 1024;

// A job to enqueue. Unset fields take the defaults: queue `default`, priority 0 (lower runs
// first), now, 20 attempts, a 300 s timeout; unknown fields are refused. (A plain comment: a doc
// comment here would become the schema's description.)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Which handler runs the job.
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,100}$")]
    pub kind: String,
    /// Any JSON (at most 256 KiB), decoded into the handler's type; `{}` when absent or null.
    #[serde(default)]
    pub args: serde_json::Value,
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,100}$", default = "default")]
    pub queue: Option<String>,
    /// Lower runs first.
    #[schema(minimum = -32768, maximum = 32767, default = 0)]
    pub priority: Option<i16>,
    /// Not run before this time; now when absent.
    pub run_at: Option<DateTime<Utc>>,
    #[schema(minimum = 1, maximum = 1000, default = 20)]
    pub max_attempts: Option<i32>,
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 86400, default = 300)]
    pub timeout_seconds: Option<u64>,
    /// While a job with this key is live, enqueueing another returns it.
    #[schema(min_length = 1, max_length = 500)]
    pub unique_key: Option<String>,
    /// After 5 consecutive failures under one key, its jobs wait 60 s.
    #[schema(min_length = 1, max_length = 500)]
    pub breaker_key: Option<String>,
}

/// One invalid field of a [`JobSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecProblem {
    pub field: &'static str,
    pub message: String,
}

impl JobSpec {
    pub fn new(kind: impl Into<String>, args: serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            args,
            ..Self::default()
        }
    }

    /// A typed job: its kind and its serialized arguments.
    pub fn of<J: Job>(job: &J) -> Result<Self, serde_json::Error> {
        Ok(Self::new(J::KIND, serde_json::to_value(job)?))
    }

    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = Some(priority);
        self
    }
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }
    pub fn max_attempts(mut self, n: i32) -> Self {
        self.max_attempts = Some(n);
        self
    }
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_seconds = Some(timeout.as_secs().max(1));
        self
    }
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }
    pub fn breaker_key(mut self, key: impl Into<String>) -> Self {
        self.breaker_key = Some(key.into());
        self
    }

    /// Checks every field; all problems are returned together.
    pub fn validate(&self) -> Result<NewJob, Vec<SpecProblem>> {
        let mut problems = Vec::new();
        let mut problem = |field: &'static str, message: &str| {
            problems.push(SpecProblem {
                field,
                message: message.to_string(),
            })
        };
        if !is_valid_name(&self.kind) {
            problem("kind", "must be 1 to 100 characters of A-Z a-z 0-9 . _ : -");
        }
        let queue = self
            .queue
            .clone()
            .unwrap_or_else(|| DEFAULT_QUEUE.to_string());
        if !is_valid_name(&queue) {
            problem(
                "queue",
                "must be 1 to 100 characters of A-Z a-z 0-9 . _ : -",
            );
        }
        let max_attempts = self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if !(1..=1000).contains(&max_attempts) {
            problem("max_attempts", "must be from 1 to 1000");
        }
        let timeout = self
            .timeout_seconds
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() || timeout > Duration::from_secs(24 * 3600) {
            problem("timeout_seconds", "must be from 1 to 86400");
        }
        for (field, key) in [
            ("unique_key", &self.unique_key),
            ("breaker_key", &self.breaker_key),
        ] {
            if key
                .as_ref()
                .is_some_and(|k| k.is_empty() || k.chars().count() > MAX_KEY_LEN)
            {
                problem(field, "must be 1 to 500 characters");
            }
            if key.as_ref().is_some_and(|k| k.contains('\0')) {
                problem(field, "must not contain a NUL character");
            }
        }
        if self.args.to_string().len() > MAX_ARGS_BYTES {
            problem("args", "must be at most 256 KiB of JSON");
        }
        if holds_nul(&self.args) {
            problem("args", "must not contain a NUL character in any string");
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(NewJob {
            queue,
            kind: self.kind.clone(),
            args: match &self.args {
                serde_json::Value::Null => serde_json::json!({}),
                args => args.clone(),
            },
            priority: self.priority.unwrap_or(0),
            run_at: self.run_at,
            max_attempts,
            timeout,
            unique_key: self.unique_key.clone(),
            breaker_key: self.breaker_key.clone(),
        })
    }
}

/// Whether a string or a key anywhere in `value` holds a NUL character, which Postgres cannot
/// store.
fn holds_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    let mut pending = vec![value];
    while let Some(v) = pending.pop() {
        match v {
            Value::String(s) if s.contains('\0') => return true,
            Value::Array(items) => pending.extend(items),
            Value::Object(map) => {
                if map.keys().any(|k| k.contains('\0')) {
                    return true;
                }
                pending.extend(map.values());
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in() {
        let job = JobSpec::new("diag.noop", serde_json::Value::Null)
            .validate()
            .unwrap();
        assert_eq!(job.queue, "default");
        assert_eq!(job.max_attempts, 20);
        assert_eq!(job.args, serde_json::json!({}));
    }

    #[test]
    fn every_problem_is_named() {
        let spec = JobSpec {
            kind: "bad kind".into(),
            queue: Some(String::new()),
            max_attempts: Some(0),
            unique_key: Some(String::new()),
            ..JobSpec::default()
        };
        let fields: Vec<_> = spec
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(fields, vec!["kind", "queue", "max_attempts", "unique_key"]);
    }
}
