//! The services a command works with, built from the environment like `serve` builds them.

use std::sync::Arc;

use keel::clock::Clock;
use keel::services::Services;
use keel::store::Db;

use crate::exit::Exit;
use crate::settings;

/// Who operator actions from the command line are recorded as.
pub const ACTOR: &str = "cli";

pub fn services() -> Result<Services, Exit> {
    let src = settings::source()?;
    let settings = settings::load_for_database(&src)?;
    let db = Db::connect_lazy(&settings.database).map_err(|e| {
        eprintln!("error: {e}");
        Exit::Usage
    })?;
    Services::new(Arc::new(settings), db, Clock::system()).map_err(|e| {
        eprintln!("error: {e}");
        Exit::Usage
    })
}

/// Prints an operation's error (with a hint when the schema is missing) and exits 1.
pub fn failed(e: impl std::fmt::Display) -> Exit {
    let text = e.to_string();
    eprintln!("error: {text}");
    if text.contains("no such table") || text.contains("does not exist") {
        eprintln!("hint: the schema is not there yet; run `keel migrate up`");
    }
    Exit::Failed
}
