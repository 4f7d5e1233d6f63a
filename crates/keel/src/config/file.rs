//! `keel.toml`: structured settings that do not fit one environment variable.
//! Unknown keys are errors that name the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::problems::Problems;
use super::source::Source;

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
    #[serde(default)]
    pub rate_limits: Vec<RateLimitDecl>,
    #[serde(default)]
    pub health: HealthThresholds,
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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    pub concurrency: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDecl {
    pub name: String,
    pub cron: String,
    pub kind: String,
    #[serde(default = "empty_object")]
    pub args: serde_json::Value,
    #[serde(default)]
    pub missed: Missed,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Missed {
    #[default]
    Skip,
    Once,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitDecl {
    pub name: String,
    pub limit: u32,
    pub period: String,
    pub burst: Option<u32>,
    #[serde(default)]
    pub key: RateLimitKey,
    #[serde(default)]
    pub routes: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitKey {
    #[default]
    User,
    Ip,
    Tenant,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
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
    let mut seen = std::collections::HashSet::new();
    for schedule in &file.schedules {
        let name = &schedule.name;
        if !seen.insert(name.as_str()) {
            problems.push(
                "KEEL_CONFIG",
                format!("{origin}: schedule {name} is declared twice"),
            );
        }
        if !crate::jobs::is_valid_name(name) {
            problems.push("KEEL_CONFIG", format!("{origin}: schedule name {name:?} must be 1 to 100 characters of A-Z a-z 0-9 . _ : -"));
        }
        if !crate::jobs::is_valid_name(&schedule.kind) {
            problems.push(
                "KEEL_CONFIG",
                format!(
                    "{origin}: schedule {name}: kind {:?} is not a valid job kind",
                    schedule.kind
                ),
            );
        }
        if let Err(e) = crate::schedule::Cron::parse(&schedule.cron) {
            problems.push("KEEL_CONFIG", format!("{origin}: schedule {name}: {e}"));
        }
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
        assert_eq!(file.schedules[0].missed, Missed::Skip);
        assert_eq!(file.rate_limits[0].key, RateLimitKey::User);
    }
}
