//! The console's actions on jobs and the words it shows for them, shared by the jobs pages
//! (`jobs.rs`) and the actions on many jobs (`bulk.rs`).

use crate::jobs::JobAction;

/// The actions the console offers on jobs.
pub const ACTIONS: [JobAction; 2] = [JobAction::Retry, JobAction::Discard];
/// The most jobs one bulk action changes.
pub const CAP: i64 = 1000;
pub const CAP_WORDS: &str = "1,000";

/// The action's name on a button.
pub fn title(action: JobAction) -> &'static str {
    match action {
        JobAction::Retry => "Retry",
        JobAction::Discard => "Discard",
    }
}

/// What the action did, to open a sentence.
pub fn past(action: JobAction) -> &'static str {
    match action {
        JobAction::Retry => "Retried",
        JobAction::Discard => "Discarded",
    }
}

/// The states the action applies to, as a list.
pub fn states_words(action: JobAction) -> String {
    let names: Vec<&str> = action.from_states().iter().map(|s| s.as_str()).collect();
    names.join(", ")
}
