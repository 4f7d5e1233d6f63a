//! The jobs page's filter (queue, kind, state, `failed` meaning retryable or discarded, and an
//! argument `key=value`), read from a query string or a form and written back into links and
//! hidden fields.

use axum::http::StatusCode;
use maud::{html, Markup};
use serde::Deserialize;

use super::refusal::Refusal;
use crate::jobs::{ArgMatch, JobFilter, JobState};

/// The state choices of the filter: `failed`, then each state.
pub const STATE_CHOICES: [&str; 8] = [
    "failed",
    "scheduled",
    "available",
    "running",
    "retryable",
    "completed",
    "discarded",
    "cancelled",
];

/// The filter as the operator wrote it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct JobsFilter {
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    /// `key=value`: jobs whose arguments hold this top-level key with this value.
    #[serde(default)]
    pub arg: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

impl JobsFilter {
    /// Read from a form's fields.
    pub fn from_fields(field: impl Fn(&str) -> String) -> Self {
        JobsFilter {
            queue: Some(field("queue")),
            kind: Some(field("kind")),
            state: Some(field("state")),
            arg: Some(field("arg")),
        }
        .trimmed()
    }

    /// Blank values dropped, the rest trimmed.
    pub fn trimmed(&self) -> Self {
        JobsFilter {
            queue: nonempty(&self.queue),
            kind: nonempty(&self.kind),
            state: nonempty(&self.state),
            arg: nonempty(&self.arg),
        }
    }

    /// The states the filter names (none: any state).
    pub fn states(&self) -> Result<Vec<JobState>, Refusal> {
        match self.state.as_deref() {
            None => Ok(Vec::new()),
            Some("failed") => Ok(vec![JobState::Retryable, JobState::Discarded]),
            Some(s) => JobState::parse(s)
                .map(|s| vec![s])
                .ok_or_else(|| Refusal::new(StatusCode::BAD_REQUEST, "Unknown job state.")),
        }
    }

    /// The argument match the filter names, if any.
    pub fn arg_match(&self) -> Result<Option<ArgMatch>, Refusal> {
        self.arg
            .as_deref()
            .map(|text| {
                ArgMatch::parse(text).map_err(|e| {
                    Refusal::new(
                        StatusCode::BAD_REQUEST,
                        format!("The argument filter cannot be read: {e}."),
                    )
                })
            })
            .transpose()
    }

    /// The store's filter, selecting at most `limit` jobs.
    pub fn job_filter(&self, limit: i64) -> Result<JobFilter, Refusal> {
        Ok(JobFilter {
            id: None,
            queue: self.queue.clone(),
            kind: self.kind.clone(),
            states: self.states()?,
            arg: self.arg_match()?,
            limit,
        })
    }

    /// The query string of the jobs page showing this filter (empty values left out).
    pub fn query(&self) -> String {
        let pairs = [
            ("queue", &self.queue),
            ("kind", &self.kind),
            ("state", &self.state),
            ("arg", &self.arg),
        ];
        pairs
            .iter()
            .filter_map(|(name, value)| {
                value
                    .as_deref()
                    .map(|v| format!("{name}={}", crate::percent::encode(v)))
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The jobs page with this filter, and `extra` query parameters.
    pub fn page(&self, extra: &str) -> String {
        let query = [self.query(), extra.to_string()]
            .into_iter()
            .filter(|q| !q.is_empty())
            .collect::<Vec<_>>()
            .join("&");
        if query.is_empty() {
            "/admin/jobs".to_string()
        } else {
            format!("/admin/jobs?{query}")
        }
    }

    /// The filter in words: `queue mail, state failed`.
    pub fn describe(&self) -> String {
        let pairs = [
            ("queue", &self.queue),
            ("kind", &self.kind),
            ("state", &self.state),
            ("argument", &self.arg),
        ];
        let words: Vec<String> = pairs
            .iter()
            .filter_map(|(name, value)| value.as_deref().map(|v| format!("{name} {v}")))
            .collect();
        if words.is_empty() {
            "every job".to_string()
        } else {
            words.join(", ")
        }
    }

    /// The filter as hidden form fields.
    pub fn hidden(&self) -> Markup {
        html! {
            input type="hidden" name="queue" value=(self.queue.as_deref().unwrap_or_default());
            input type="hidden" name="kind" value=(self.kind.as_deref().unwrap_or_default());
            input type="hidden" name="state" value=(self.state.as_deref().unwrap_or_default());
            input type="hidden" name="arg" value=(self.arg.as_deref().unwrap_or_default());
        }
    }
}
