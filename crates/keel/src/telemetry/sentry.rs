//! Error tracking with the Sentry SDK. With `SENTRY_DSN`, a process reports
//!
//! - every panic (in a handler, a job or elsewhere) as an exception event with the stack that
//!   panicked, from the panic hook ([`panic`]);
//! - a job's final failure as an exception event, and each 5xx answer other than 503 ([`scoped`]);
//! - every `tracing::error!` line as an event, with the `info` and `warn` lines before it (of its
//!   request or job, when it has one) as breadcrumbs ([`layer`]). A line about a failure already
//!   reported (it carries a `report` field) is only a breadcrumb.
//!
//! Each request and each job runs with a hub of its own ([`scoped`]): its reports carry the
//! request id, route and user id, or the job's id, kind, queue and attempt; every report carries
//! `service` and `role`. Nothing personal beyond the user id leaves the process ([`privacy`]).
//! The SDK's transport sends from a thread of its own, honours Sentry's 429 answers
//! (`Retry-After`, `X-Sentry-Rate-Limits`: what is captured during the window is dropped), and
//! [`flush`] drains it at shutdown. `keel sentry test` sends one event and waits for Sentry's
//! answer ([`send_test_event`]).

mod panic;
mod privacy;
pub(crate) mod scoped;
mod test_event;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use secrecy::ExposeSecret;
use sentry::protocol::Event;
use sentry::{ClientOptions, Hub, Integration};

use super::TelemetrySettings;

pub use sentry::types::Dsn;
pub use test_event::{send_test_event, TestEventError};

/// How long one delivery to Sentry may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest shutdown waits for queued reports.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// The tags every report of the process carries (`Role::report_tags`).
pub type Tags = [(&'static str, &'static str)];

static CLIENT: OnceLock<Arc<sentry::Client>> = OnceLock::new();
static ENABLED: AtomicBool = AtomicBool::new(false);

/// `value` as a DSN (`https://PUBLIC_KEY@HOST[:PORT][/PATH]/PROJECT_ID`). The error names what
/// is wrong, never the value.
pub fn parse_dsn(value: &str) -> Result<Dsn, String> {
    value.trim().parse::<Dsn>().map_err(|e| e.to_string())
}

/// Starts reporting when `SENTRY_DSN` is set: once per process, later calls are ignored. `tags`
/// go on every report. Returns whether this process reports errors.
pub fn init(telemetry: &TelemetrySettings, tags: &Tags) -> bool {
    let Some(dsn) = telemetry.sentry_dsn.as_ref() else {
        return enabled();
    };
    let Ok(dsn) = parse_dsn(dsn.expose_secret()) else {
        // The configuration check refuses such a value; a process built without it reports nothing.
        tracing::warn!("SENTRY_DSN is not a valid DSN; errors are not reported");
        return enabled();
    };
    let http = match reqwest::Client::builder().timeout(SEND_TIMEOUT).build() {
        Ok(http) => http,
        Err(e) => {
            tracing::warn!(error = %e, "cannot build the HTTP client for error reports");
            return enabled();
        }
    };
    CLIENT.get_or_init(|| {
        let transport = move |options: &ClientOptions| -> Arc<dyn sentry::Transport> {
            Arc::new(sentry::transports::ReqwestHttpTransport::with_client(
                options,
                http.clone(),
            ))
        };
        let mut options = options(telemetry, dsn, tags, reporting_integrations());
        options.transport = Some(Arc::new(transport));
        let client = Arc::new(sentry::Client::with_options(options));
        Hub::main().bind_client(Some(client.clone()));
        // Making the client made this thread's hub (from the main hub, still without a client)
        // when this is not the main thread.
        Hub::current().bind_client(Some(client.clone()));
        ENABLED.store(true, Ordering::Release);
        client
    });
    enabled()
}

/// Whether this process reports errors.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

fn client() -> Option<&'static Arc<sentry::Client>> {
    CLIENT.get()
}

/// Sends what is queued, waiting at most `timeout`; returns whether the queue was drained.
pub async fn flush(timeout: Duration) -> bool {
    let Some(client) = client().cloned() else {
        return true;
    };
    tokio::task::spawn_blocking(move || client.flush(Some(timeout)))
        .await
        .unwrap_or(false)
}

/// The integrations of a reporting process: panics, and stack frames marked as Keel's or not.
/// A stack is resolved only for exceptions (panics, a job's final failure), never for a 5xx or a
/// log line, so a burst of errors does not cost a resolved stack each.
fn reporting_integrations() -> Vec<Arc<dyn Integration>> {
    vec![
        Arc::new(panic::integration()),
        Arc::new(sentry::integrations::backtrace::ProcessStacktraceIntegration::new()),
    ]
}

/// The client's options: where to, the environment and release, the process's tags on every
/// event and the privacy policy. Nothing is read from the environment by the SDK itself.
fn options(
    telemetry: &TelemetrySettings,
    dsn: Dsn,
    tags: &Tags,
    integrations: Vec<Arc<dyn Integration>>,
) -> ClientOptions {
    let tags = tags.to_vec();
    ClientOptions {
        dsn: Some(dsn),
        release: Some(telemetry.sentry_release.clone().into()),
        environment: Some(telemetry.sentry_environment.clone().into()),
        attach_stacktrace: false,
        send_default_pii: false,
        in_app_include: vec!["keel"],
        default_integrations: false,
        integrations,
        before_send: Some(Arc::new(move |event: Event<'static>| {
            privacy::scrub_event(with_tags(event, &tags))
        })),
        before_breadcrumb: Some(Arc::new(|crumb| Some(privacy::scrub_breadcrumb(crumb)))),
        shutdown_timeout: FLUSH_TIMEOUT,
        ..ClientOptions::default()
    }
}

fn with_tags(mut event: Event<'static>, tags: &Tags) -> Event<'static> {
    for (name, value) in tags {
        event
            .tags
            .entry((*name).to_string())
            .or_insert_with(|| (*value).to_string());
    }
    event
}

/// The tracing layer that turns log lines into reports while reporting is on: `error` lines
/// into events, `info` and `warn` lines into breadcrumbs. Lines carrying a `report` field (the
/// failure they describe is reported as an exception or a 5xx already) are breadcrumbs only.
/// Spans are not sent (no performance tracing).
pub fn layer<S>() -> sentry::integrations::tracing::SentryLayer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use sentry::integrations::tracing::EventFilter;
    sentry::integrations::tracing::layer()
        .event_filter(|metadata| {
            if !enabled() {
                return EventFilter::Ignore;
            }
            match *metadata.level() {
                tracing::Level::ERROR if metadata.fields().field("report").is_none() => {
                    EventFilter::Event
                }
                tracing::Level::ERROR | tracing::Level::WARN | tracing::Level::INFO => {
                    EventFilter::Breadcrumb
                }
                _ => EventFilter::Ignore,
            }
        })
        .span_filter(|_| false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsns_are_checked_without_quoting_them() {
        let dsn = parse_dsn("https://abc123@o1.ingest.sentry.io/4506").unwrap();
        assert_eq!(
            dsn.envelope_api_url().as_str(),
            "https://o1.ingest.sentry.io/api/4506/envelope/"
        );
        let dsn = parse_dsn("http://key@127.0.0.1:9000/sub/path/42").unwrap();
        assert_eq!(
            dsn.envelope_api_url().as_str(),
            "http://127.0.0.1:9000/sub/path/api/42/envelope/"
        );
        for bad in ["ftp://k@h/1", "https://h/1", "not a url", ""] {
            assert!(parse_dsn(bad).is_err(), "{bad}");
        }
        let error = parse_dsn("https://secret-key-value@h/").unwrap_err();
        assert!(!error.contains("secret-key-value"), "{error}");
    }

    #[test]
    fn the_process_tags_do_not_replace_a_reports_own() {
        let mut event = Event::default();
        event.tags.insert("kind".into(), "panic".into());
        let event = with_tags(event, &[("service", "worker"), ("kind", "process")]);
        assert_eq!(event.tags["service"], "worker");
        assert_eq!(event.tags["kind"], "panic");
    }
}
