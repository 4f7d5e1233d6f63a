//! The schedules section of the settings: each `[[schedules]]` entry of `keel.toml`, as written,
//! and the checks it must pass.

use serde::Deserialize;

use super::cron::Cron;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDecl {
    pub name: String,
    pub cron: String,
    /// The IANA time zone the cron expression is read in (`Europe/Berlin`); UTC when absent.
    #[serde(default)]
    pub timezone: Option<String>,
    pub kind: String,
    #[serde(default = "empty_object")]
    pub args: serde_json::Value,
    #[serde(default)]
    pub missed: Missed,
}

impl ScheduleDecl {
    /// The cron expression in the declared time zone.
    pub fn parse_cron(&self) -> Result<Cron, super::CronError> {
        let cron = Cron::parse(&self.cron)?;
        match &self.timezone {
            Some(zone) => cron.in_zone(zone),
            None => Ok(cron),
        }
    }
}

/// What happens to ticks that passed while no scheduler ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Missed {
    #[default]
    Skip,
    Once,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// One message for each schedule whose kind is not among `declared`.
pub fn undeclared_kinds(
    decls: &[ScheduleDecl],
    declared: &std::collections::BTreeSet<String>,
) -> Vec<String> {
    decls
        .iter()
        .filter(|s| !declared.contains(&s.kind))
        .map(|s| format!("schedule {}: {}", s.name, crate::jobs::undeclared(&s.kind)))
        .collect()
}

/// What is wrong with `decls`, one message per problem, in declaration order.
pub fn check(decls: &[ScheduleDecl]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for schedule in decls {
        let name = &schedule.name;
        if !seen.insert(name.as_str()) {
            problems.push(format!("schedule {name} is declared twice"));
        }
        if !crate::jobs::is_valid_name(name) {
            problems.push(format!(
                "schedule name {name:?} must be 1 to 100 characters of A-Z a-z 0-9 . _ : -"
            ));
        }
        if !crate::jobs::is_valid_name(&schedule.kind) {
            problems.push(format!(
                "schedule {name}: kind {:?} is not a valid job kind",
                schedule.kind
            ));
        }
        if let Err(e) = schedule.parse_cron() {
            problems.push(format!("schedule {name}: {e}"));
        }
    }
    problems
}
