//! The PostgreSQL client tools: finding them, giving them the connection through `PG*`
//! environment variables (never the command line, where other users could read it), and running
//! them with their error text kept but the password removed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use super::files::blocking;
use super::{BackupError, Redact};

/// `tool` on PATH, or the error that says how to install it.
pub(super) fn find(tool: &'static str) -> Result<PathBuf, BackupError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(tool))
        .find(|candidate| is_executable(candidate))
        .ok_or(BackupError::ToolMissing { tool })
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file() || path.with_extension("exe").is_file()
}

/// The connection parameters of a `postgres://` URL, for libpq's environment variables.
#[derive(Clone)]
pub(super) struct Params {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    pub(super) database: String,
    ssl_mode: &'static str,
    ssl_files: Vec<(&'static str, String)>,
}

impl Params {
    pub(super) fn from_url(url: &str) -> Result<Self, BackupError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            BackupError::Url(format!(
                "DATABASE_URL is not a valid Postgres URL: {}",
                crate::store::redact(&e.to_string())
            ))
        })?;
        let host = match options.get_socket() {
            Some(socket) => socket.display().to_string(),
            None => options.get_host().to_string(),
        };
        let user = options.get_username().to_string();
        let database = options
            .get_database()
            .map(str::to_string)
            .unwrap_or_else(|| user.clone());
        let ssl_mode = match options.get_ssl_mode() {
            PgSslMode::Disable => "disable",
            PgSslMode::Allow => "allow",
            PgSslMode::Prefer => "prefer",
            PgSslMode::Require => "require",
            PgSslMode::VerifyCa => "verify-ca",
            PgSslMode::VerifyFull => "verify-full",
        };
        let mut ssl_files = Vec::new();
        for (key, value) in query_pairs(url) {
            let var = match key.as_str() {
                "sslrootcert" | "ssl-root-cert" | "ssl-ca" => "PGSSLROOTCERT",
                "sslcert" | "ssl-cert" => "PGSSLCERT",
                "sslkey" | "ssl-key" => "PGSSLKEY",
                _ => continue,
            };
            ssl_files.push((var, value));
        }
        Ok(Self {
            host,
            port: options.get_port(),
            user,
            password: password_of(url),
            database,
            ssl_mode,
            ssl_files,
        })
    }

    pub(super) fn with_database(&self, database: &str) -> Self {
        Self {
            database: database.to_string(),
            ..self.clone()
        }
    }

    /// `tool` with the connection in its environment; its own arguments follow.
    pub(super) fn command(&self, tool: &Path) -> Command {
        let mut command = Command::new(tool);
        command
            .env("PGHOST", &self.host)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", &self.user)
            .env("PGDATABASE", &self.database)
            .env("PGSSLMODE", self.ssl_mode)
            .env("PGAPPNAME", "keel-backup")
            .env_remove("PGOPTIONS")
            .env_remove("PGSERVICE")
            .stdin(Stdio::null());
        if let Some(password) = &self.password {
            command.env("PGPASSWORD", password);
        }
        for (var, value) in &self.ssl_files {
            command.env(var, value);
        }
        command
    }
}

/// Runs `command` to the end; its standard output, or an error with its standard error text
/// (secrets removed) named after `tool`.
pub(super) async fn run(
    mut command: Command,
    tool: &'static str,
    redact: &Redact,
) -> Result<String, BackupError> {
    let output = blocking(move || {
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => BackupError::ToolMissing { tool },
                _ => BackupError::Tool {
                    tool,
                    message: format!("cannot start it: {e}"),
                },
            })
    })
    .await?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let text = stderr.trim();
    let message = if text.is_empty() {
        format!("it exited with {}", output.status)
    } else {
        redact.text(text)
    };
    Err(BackupError::Tool { tool, message })
}

/// The part of a URL between `://` and the path or query: `user:password@host:port`.
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The password in the URL, as written (percent-encoded).
pub(super) fn raw_password_of(url: &str) -> Option<String> {
    let authority = authority(url)?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    Some(password.to_string())
}

/// The password in the URL, decoded.
pub(super) fn password_of(url: &str) -> Option<String> {
    raw_password_of(url).map(|p| crate::percent::decode(&p))
}

fn query_pairs(url: &str) -> Vec<(String, String)> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = query.split('#').next().unwrap_or("");
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (crate::percent::decode(key), crate::percent::decode(value))
        })
        .collect()
}

/// `url` pointed at `database`, with `schema` as its search path (and no other `options`).
pub(super) fn url_with(url: &str, database: &str, schema: &str) -> Result<String, BackupError> {
    let invalid = || BackupError::Url("DATABASE_URL is not a valid Postgres URL".into());
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
    let authority = authority(url).ok_or_else(invalid)?;
    let query = rest
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(""))
        .unwrap_or("");
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| pair.split('=').next() != Some("options"))
        .map(str::to_string)
        .collect();
    let path_entry = if schema
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        schema.to_string()
    } else {
        format!("\"{}\"", schema.replace('"', "\"\""))
    };
    pairs.push(format!(
        "options={}",
        crate::percent::encode(&format!("-c search_path={path_entry}"))
    ));
    Ok(format!(
        "{scheme}://{authority}/{}?{}",
        crate::percent::encode(database),
        pairs.join("&")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_found_and_decoded() {
        let url = "postgres://keel:p%40ss:word@db.example:5433/app?sslmode=require";
        assert_eq!(password_of(url).as_deref(), Some("p@ss:word"));
        assert_eq!(raw_password_of(url).as_deref(), Some("p%40ss:word"));
        assert_eq!(password_of("postgres://keel@db/app"), None);
        assert_eq!(password_of("postgres://db/app"), None);
    }

    #[test]
    fn params_come_from_the_url() {
        let p = Params::from_url(
            "postgres://keel:secret@db.example:5433/app?sslmode=require&sslrootcert=/ca.pem",
        )
        .expect("valid");
        assert_eq!(p.host, "db.example");
        assert_eq!(p.port, 5433);
        assert_eq!(p.user, "keel");
        assert_eq!(p.password.as_deref(), Some("secret"));
        assert_eq!(p.database, "app");
        assert_eq!(p.ssl_mode, "require");
        assert_eq!(p.ssl_files, vec![("PGSSLROOTCERT", "/ca.pem".to_string())]);
    }

    #[test]
    fn a_scratch_url_keeps_the_server_and_sets_the_schema() {
        let url = "postgres://u:pw@h:5432/test?sslmode=disable&options=-c%20search_path%3Dold";
        let scratch = url_with(url, "keel_verify_1", "keel_test_x").expect("valid");
        assert_eq!(
            scratch,
            "postgres://u:pw@h:5432/keel_verify_1?sslmode=disable&options=-c%20search_path%3Dkeel_test_x"
        );
        let options = PgConnectOptions::from_str(&scratch).expect("parses");
        assert_eq!(options.get_database(), Some("keel_verify_1"));
        assert_eq!(options.get_options(), Some("-c search_path=keel_test_x"));
    }
}
