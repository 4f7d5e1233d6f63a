//! Where settings come from: the process environment over `.env`, plus a working directory for
//! relative files. Tests build a `Source` from pairs so they never touch the process environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::vars;

#[derive(Debug, Clone, Default)]
pub struct Source {
    values: HashMap<String, String>,
    dir: PathBuf,
}

/// A `.env` error without the file's text, which may hold secrets: the line and the key only.
fn dotenv_error(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::LineParse(text, _) => {
            let key = text
                .split(['=', '\n'])
                .next()
                .map(str::trim)
                .filter(|k| k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or("?");
            format!(".env: cannot parse the entry for {key} (check its quotes)")
        }
        dotenvy::Error::Io(io) => format!(".env: {io}"),
        _ => ".env: cannot be read".to_string(),
    }
}

impl Source {
    /// The process environment, over `.env` in the working directory when it exists.
    pub fn from_process() -> Result<Self, String> {
        let dir = std::env::current_dir().map_err(|e| format!("working directory: {e}"))?;
        let mut values = HashMap::new();
        let dotenv = dir.join(".env");
        if dotenv.exists() {
            let entries = dotenvy::from_path_iter(&dotenv).map_err(|e| dotenv_error(&e))?;
            for entry in entries {
                let (key, value) = entry.map_err(|e| dotenv_error(&e))?;
                values.insert(key, value);
            }
        }
        values.extend(std::env::vars());
        Ok(Self { values, dir })
    }

    /// Exactly these values, with `dir` for relative paths (no `.env`, no process environment).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
        dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            dir: dir.into(),
        }
    }

    /// The trimmed value of `name`; empty counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        debug_assert!(
            vars::lookup(name).is_some(),
            "{name} is not in config::vars"
        );
        self.values
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns a copy with `name` set, for callers that override one setting (a CLI flag).
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.values.insert(name.to_string(), value.into());
        self
    }
}
