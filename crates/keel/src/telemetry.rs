//! Logging: pretty lines in development, JSON lines elsewhere.

use tracing_subscriber::EnvFilter;

use secrecy::SecretString;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The telemetry section of the settings: logging, and where errors are reported ([`crate::sentry`]).
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    pub log_level: String,
    pub sentry_dsn: Option<SecretString>,
    pub sentry_environment: String,
    pub sentry_release: String,
}

/// Installs the global subscriber once; later calls (tests) are ignored.
pub fn init(settings: &TelemetrySettings) {
    let filter = EnvFilter::try_new(&settings.log_level)
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive("sqlx=warn".parse().unwrap_or_default());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
