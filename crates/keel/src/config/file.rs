//! `keel.toml`: structured settings that do not fit one environment variable.
//! Unknown keys are errors that name the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::problems::Problems;
use super::source::Source;
use crate::jobs::http_kind::JobsDecl;
use crate::jobs::QueueSettings;
use crate::ratelimit::RateLimitDecl;
use crate::schedule::decl::{self, ScheduleDecl};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// Store product id → entitlements it grants.
    #[serde(default)]
    pub products: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub queues: BTreeMap<String, QueueSettings>,
    #[serde(default)]
    pub schedules: Vec<ScheduleDecl>,
    /// Job kinds declared here (HTTP kinds).
    #[serde(default)]
    pub jobs: JobsDecl,
    #[serde(default)]
    pub rate_limits: Vec<RateLimitDecl>,
    #[serde(default)]
    pub health: HealthThresholds,
    /// The gateway's rules, first match wins.
    #[serde(default)]
    pub routes: Vec<crate::gateway::RouteDecl>,
    /// What users may upload, and how long storage links live.
    #[serde(default)]
    pub storage: crate::storage::StorageDecl,
}

/// When `/health/deep` turns `degraded`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthThresholds {
    /// Jobs waiting (scheduled, available, retryable) across queues.
    pub max_backlog: i64,
    /// Age of the oldest due job no worker holds.
    pub max_oldest_waiting_seconds: f64,
    /// Jobs discarded (failed for good) in the last hour.
    pub max_discarded_per_hour: i64,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        Self {
            max_backlog: 10_000,
            max_oldest_waiting_seconds: 300.0,
            max_discarded_per_hour: 100,
        }
    }
}

/// The file named by `KEEL_CONFIG`, or `keel.toml` in the working directory when present.
pub(crate) fn locate(src: &Source, problems: &mut Problems) -> Option<PathBuf> {
    match src.get("KEEL_CONFIG") {
        Some(path) => {
            let path = src.dir().join(path);
            if path.is_file() {
                Some(path)
            } else {
                problems.push("KEEL_CONFIG", format!("{} does not exist", path.display()));
                None
            }
        }
        None => Some(src.dir().join("keel.toml")).filter(|p| p.is_file()),
    }
}

pub(crate) fn load(path: &Path, problems: &mut Problems) -> FileSettings {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            problems.push("KEEL_CONFIG", format!("{}: {e}", path.display()));
            return FileSettings::default();
        }
    };
    parse(&text, &path.display().to_string(), problems)
}

pub(crate) fn parse(text: &str, origin: &str, problems: &mut Problems) -> FileSettings {
    match toml::from_str::<FileSettings>(text) {
        Ok(file) => {
            check(&file, origin, problems);
            file
        }
        Err(e) => {
            let message = e.message().to_string();
            let place = e
                .span()
                .map(|s| format!(" (line {})", line_of(text, s.start)))
                .unwrap_or_default();
            problems.push("KEEL_CONFIG", format!("{origin}{place}: {message}"));
            FileSettings::default()
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn check(file: &FileSettings, origin: &str, problems: &mut Problems) {
    for (name, queue) in &file.queues {
        if queue.concurrency == Some(0) {
            problems.push(
                "KEEL_CONFIG",
                format!("{origin}: queues.{name}.concurrency must be at least 1"),
            );
        }
    }
    for message in decl::check(&file.schedules) {
        problems.push("KEEL_CONFIG", format!("{origin}: {message}"));
    }
    for name in file.queues.keys() {
        if !crate::jobs::is_valid_name(name) {
            problems.push("KEEL_CONFIG", format!("{origin}: queue name {name:?} must be 1 to 100 characters of A-Z a-z 0-9 . _ : -"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let mut problems = Problems::default();
        parse(
            "[products]\na = [\"premium\"]\n[queus.default]\n",
            "keel.toml",
            &mut problems,
        );
        let err = problems.into_result(()).unwrap_err();
        let message = &err.problems[0].message;
        assert!(message.contains("queus"), "{message}");
        assert!(message.contains("line 3"), "{message}");
    }

    #[test]
    fn the_documented_shape_parses() {
        let mut problems = Problems::default();
        let file = parse(
            r#"
[products]
premium_monthly = ["premium"]
[queues.default]
concurrency = 16
[[schedules]]
name = "reminders"
cron = "*/5 * * * *"
kind = "app.reminders"
args = {}
missed = "skip"
[[rate_limits]]
name = "sensitive"
limit = 10
period = "15m"
burst = 10
key = "user"
routes = ["POST /v1/me/entitlements/sync"]
"#,
            "keel.toml",
            &mut problems,
        );
        problems.into_result(()).unwrap();
        assert_eq!(file.products["premium_monthly"], vec!["premium"]);
        assert_eq!(file.schedules[0].missed, decl::Missed::Skip);
        assert_eq!(
            file.rate_limits[0].key,
            crate::ratelimit::RateLimitKey::User
        );
    }
}
