//! Loading settings for a command, with configuration problems reported as exit 2.

use keel::config::{Problem, Source};
use keel::Settings;

use crate::exit::Exit;

pub fn source() -> Result<Source, Exit> {
    Source::from_process().map_err(|e| {
        eprintln!("error: {e}");
        Exit::Usage
    })
}

/// All settings, valid, or every problem printed and exit 2.
pub fn load(src: &Source) -> Result<Settings, Exit> {
    Settings::load(src).map_err(|e| {
        eprint!("{e}");
        Exit::Usage
    })
}

/// Settings for commands that use only the database: other problems do not stop them.
pub fn load_for_database(src: &Source) -> Result<Settings, Exit> {
    load_for(src, &["DATABASE", "MIGRATION", "APP_ENV"])
}

/// Settings for a command that uses only the variables starting with one of `prefixes`: problems
/// with other variables do not stop it.
pub fn load_for(src: &Source, prefixes: &[&str]) -> Result<Settings, Exit> {
    let (settings, problems) = Settings::load_lenient(src);
    let blocking: Vec<&Problem> = problems
        .iter()
        .filter(|p| prefixes.iter().any(|prefix| p.variable.starts_with(prefix)))
        .collect();
    if blocking.is_empty() {
        Ok(settings)
    } else {
        eprintln!("invalid configuration:");
        for p in blocking {
            eprintln!("  {}: {}", p.variable, p.message);
        }
        Err(Exit::Usage)
    }
}
