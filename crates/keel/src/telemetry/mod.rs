//! Logging: pretty lines in development, JSON lines elsewhere. Each request runs in a `request`
//! span (`request_id`, `method`, `route`, `user_id`) and each job attempt in a `job` span
//! (`job_id`, `kind`, `attempt`, `queue`); a JSON line carries its current span (`span`) and
//! every span it is in (`spans`), so a line logged by a handler or a job names its request or job.
//! With `SENTRY_DSN`, errors also go to Sentry ([`sentry`]): an `error` line becomes an event,
//! `info` and `warn` lines its breadcrumbs.

pub mod sentry;

use secrecy::{ExposeSecret, SecretString};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The telemetry section of the settings: logging, and where errors are reported ([`sentry`]).
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    pub log_level: String,
    pub sentry_dsn: Option<SecretString>,
    pub sentry_environment: String,
    pub sentry_release: String,
}

impl TelemetrySettings {
    /// What is wrong with this section: a `SENTRY_DSN` that is not a DSN (its value is not
    /// quoted: it holds a key).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        match &self.sentry_dsn {
            Some(dsn) if sentry::parse_dsn(dsn.expose_secret()).is_err() => vec![(
                "SENTRY_DSN",
                "must be a Sentry DSN: https://PUBLIC_KEY@HOST/PROJECT_ID".into(),
            )],
            _ => Vec::new(),
        }
    }
}

/// Installs the global subscriber once; later calls (tests) are ignored. Its lines also reach
/// Sentry once [`sentry::init`] has run.
pub fn init(settings: &TelemetrySettings) {
    let filter = filter(&settings.log_level);
    let _ = match settings.log_format {
        LogFormat::Json => tracing::subscriber::set_global_default(
            json(filter, std::io::stderr).with(sentry::layer()),
        ),
        LogFormat::Pretty => tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .compact()
                .finish()
                .with(sentry::layer()),
        ),
    };
}

/// `level` (a level or a tracing filter), with sqlx's per-query lines kept to warnings.
pub fn filter(level: &str) -> EnvFilter {
    EnvFilter::try_new(level)
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive("sqlx=warn".parse().unwrap_or_default())
}

/// The JSON-lines subscriber: one object per event, its fields at the top level, with its
/// current span (`span`) and the spans it is in (`spans`).
pub fn json<W>(
    filter: EnvFilter,
    writer: W,
) -> impl tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(true)
        .finish()
}
