//! Jobs as the rest of Keel speaks of them: their states, what to insert, what a claim returns,
//! what a finished attempt reports, and a job as operators list it.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `scheduled` → `available` → `running` → `completed`; a failed attempt goes to `retryable` or,
/// out of attempts, `discarded`; `cancelled` by a drain.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Scheduled,
    Available,
    Running,
    Retryable,
    Completed,
    Discarded,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 7] = [
        JobState::Scheduled,
        JobState::Available,
        JobState::Running,
        JobState::Retryable,
        JobState::Completed,
        JobState::Discarded,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Available => "available",
            JobState::Running => "running",
            JobState::Retryable => "retryable",
            JobState::Completed => "completed",
            JobState::Discarded => "discarded",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

/// What an operator can do to a job, each allowed from some states only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobAction {
    /// A job that will not run by itself runs again now.
    Retry,
    /// A waiting job is discarded.
    Discard,
}

impl JobAction {
    pub fn as_str(self) -> &'static str {
        match self {
            JobAction::Retry => "retry",
            JobAction::Discard => "discard",
        }
    }

    pub fn parse(s: &str) -> Option<JobAction> {
        [JobAction::Retry, JobAction::Discard]
            .into_iter()
            .find(|a| a.as_str() == s)
    }

    /// The states this action applies to.
    pub fn from_states(self) -> &'static [JobState] {
        match self {
            JobAction::Retry => &[
                JobState::Retryable,
                JobState::Discarded,
                JobState::Cancelled,
            ],
            JobAction::Discard => &[
                JobState::Scheduled,
                JobState::Available,
                JobState::Retryable,
            ],
        }
    }

    pub fn allows(self, state: JobState) -> bool {
        self.from_states().contains(&state)
    }

    /// The states of `named` this action applies to; every state it applies to when `named` is
    /// empty. Empty when it applies to none of the named states.
    pub fn states_within(self, named: &[JobState]) -> Vec<JobState> {
        self.from_states()
            .iter()
            .copied()
            .filter(|s| named.is_empty() || named.contains(s))
            .collect()
    }
}

/// A job to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub queue: String,
    pub kind: String,
    pub args: serde_json::Value,
    /// Lower runs first.
    pub priority: i16,
    /// `None`: now.
    pub run_at: Option<DateTime<Utc>>,
    pub max_attempts: i32,
    pub timeout: Duration,
    pub unique_key: Option<String>,
    pub breaker_key: Option<String>,
}

// The result of one insert: the new job, or the live job holding the same unique key. (A plain
// comment: a doc comment here would become the schema's description.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Enqueued {
    pub id: i64,
    /// True when a live job held the unique key: `id` is that job.
    pub deduplicated: bool,
}

/// A job taken by a worker.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub priority: i16,
    pub queue: String,
    pub kind: String,
    pub args: serde_json::Value,
    pub attempt: i32,
    pub max_attempts: i32,
    pub timeout: Duration,
    pub breaker_key: Option<String>,
    pub run_at: DateTime<Utc>,
    /// When the job was enqueued.
    pub created_at: DateTime<Utc>,
}

/// How an attempt ended, as written back.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed,
    Retry {
        run_at: DateTime<Utc>,
        error: String,
    },
    Discard {
        error: String,
    },
}

#[derive(Debug, Clone)]
pub struct Report {
    pub id: i64,
    pub outcome: Outcome,
    pub breaker_key: Option<String>,
}

/// A job as listed by operators.
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub id: i64,
    pub queue: String,
    pub kind: String,
    pub state: JobState,
    pub attempt: i32,
    pub max_attempts: i32,
    pub priority: i16,
    pub args: serde_json::Value,
    pub unique_key: Option<String>,
    pub breaker_key: Option<String>,
    pub run_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// Which jobs to list or act on. An action ([`JobAction`]) touches only the named `states` it
/// applies to (every state it applies to when none is named).
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub id: Option<i64>,
    pub queue: Option<String>,
    pub kind: Option<String>,
    pub states: Vec<JobState>,
    /// Only jobs whose arguments hold this top-level key with this value.
    pub arg: Option<ArgMatch>,
    pub limit: i64,
}

/// `key=value` against a job's arguments: the top-level `key` holds `value`, a string compared
/// as it is and a number, `true` or `false` compared as JSON writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgMatch {
    pub key: String,
    pub value: String,
}

impl ArgMatch {
    /// The longest key accepted.
    pub const MAX_KEY: usize = 64;
    /// The longest value accepted, in characters.
    pub const MAX_VALUE: usize = 256;

    /// Reads `key=value`. The key is 1–64 of `A-Z a-z 0-9 _ -`; the value is everything after
    /// the first `=`, at most 256 characters, and may be empty.
    pub fn parse(text: &str) -> Result<ArgMatch, ArgMatchError> {
        let (key, value) = text.split_once('=').ok_or(ArgMatchError::NoEquals)?;
        let key_ok = !key.is_empty()
            && key.len() <= Self::MAX_KEY
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !key_ok {
            return Err(ArgMatchError::BadKey);
        }
        if value.chars().count() > Self::MAX_VALUE {
            return Err(ArgMatchError::LongValue);
        }
        Ok(ArgMatch {
            key: key.to_string(),
            value: value.to_string(),
        })
    }
}

impl std::fmt::Display for ArgMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// Why an argument filter was refused; the message says what is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgMatchError {
    NoEquals,
    BadKey,
    LongValue,
}

impl std::fmt::Display for ArgMatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ArgMatchError::NoEquals => "an argument filter is written key=value",
            ArgMatchError::BadKey => {
                "an argument filter's key is 1 to 64 letters, digits, '_' or '-'"
            }
            ArgMatchError::LongValue => "an argument filter's value is at most 256 characters",
        })
    }
}

impl std::error::Error for ArgMatchError {}

/// Per queue: how many jobs are in each state.
pub type QueueCounts = BTreeMap<String, BTreeMap<JobState, i64>>;

/// What a claim may take: one queue, jobs due by `now`, leased until `lease_until` by `worker`.
#[derive(Debug, Clone)]
pub struct ClaimSpec<'a> {
    pub queue: &'a str,
    pub worker: &'a str,
    pub now: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
    pub limit: i64,
    /// Claim only jobs ordered after this one (see [`ClaimCursor`]).
    pub after: Option<ClaimCursor>,
}

/// The sort key of the last job a runner claimed. While a runner drains a backlog, claiming
/// after it skips the index entries of jobs claimed a moment ago, which Postgres keeps until it
/// vacuums them. Jobs that sort before the cursor (a released job, a new job of a lower
/// priority value) are found by the next claim without one, which runners make at least every
/// [`ClaimCursor::MAX_AGE`] and whenever a cursor claim comes back short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimCursor {
    pub priority: i16,
    pub run_at: DateTime<Utc>,
    pub id: i64,
}

impl ClaimCursor {
    pub const MAX_AGE: std::time::Duration = std::time::Duration::from_millis(250);
}

/// Breaker accounting: after `threshold` consecutive failures a key is deferred for `cooldown`.
#[derive(Debug, Clone, Copy)]
pub struct BreakerPolicy {
    pub threshold: i32,
    pub cooldown: Duration,
}

#[cfg(test)]
mod arg_match_tests {
    use super::{ArgMatch, ArgMatchError};

    #[test]
    fn reads_key_and_value_at_the_first_equals() {
        let m = ArgMatch::parse("user_id=a=b").expect("valid");
        assert_eq!((m.key.as_str(), m.value.as_str()), ("user_id", "a=b"));
        assert_eq!(ArgMatch::parse("n=").expect("empty value").value, "");
        assert_eq!(m.to_string(), "user_id=a=b");
    }

    #[test]
    fn refuses_what_it_cannot_match() {
        assert_eq!(ArgMatch::parse("user_id"), Err(ArgMatchError::NoEquals));
        assert_eq!(ArgMatch::parse("=x"), Err(ArgMatchError::BadKey));
        assert_eq!(ArgMatch::parse("a.b=x"), Err(ArgMatchError::BadKey));
        assert_eq!(ArgMatch::parse("é=x"), Err(ArgMatchError::BadKey));
        assert_eq!(
            ArgMatch::parse(&format!("{}=x", "k".repeat(65))),
            Err(ArgMatchError::BadKey)
        );
        assert!(ArgMatch::parse(&format!("k={}", "é".repeat(256))).is_ok());
        assert_eq!(
            ArgMatch::parse(&format!("k={}", "é".repeat(257))),
            Err(ArgMatchError::LongValue)
        );
    }
}
