//! Error tracking: with `SENTRY_DSN`, 5xx answers, panics and jobs failing their last attempt are
//! sent to Sentry (or any service speaking its envelope protocol) from a background task, tagged
//! with service, environment, release, request id and job kind. The user id is the only personal
//! datum sent; never an email, a token or a request body.

use std::sync::OnceLock;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::telemetry::TelemetrySettings;

const QUEUE: usize = 256;

/// One error to report.
#[derive(Debug, Clone, Default)]
pub struct ErrorEvent {
    pub message: String,
    /// `http_5xx`, `panic` or `job_failed`.
    pub kind: &'static str,
    pub request_id: Option<String>,
    pub route: Option<String>,
    pub status: Option<u16>,
    pub user_id: Option<String>,
    pub job_kind: Option<String>,
    pub queue: Option<String>,
}

struct Reporter {
    tx: mpsc::Sender<ErrorEvent>,
}

static REPORTER: OnceLock<Reporter> = OnceLock::new();

/// Where envelopes go and how they are signed, from a DSN
/// (`https://PUBLIC_KEY@HOST[:PORT][/PATH]/PROJECT_ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    pub envelope_url: String,
    pub public_key: String,
}

impl Dsn {
    pub fn parse(dsn: &str) -> Option<Dsn> {
        let (scheme, rest) = dsn.split_once("://")?;
        if scheme != "https" && scheme != "http" {
            return None;
        }
        let (key, location) = rest.split_once('@')?;
        let public_key = key.split(':').next()?.to_string();
        let (host_and_path, project) = location.trim_end_matches('/').rsplit_once('/')?;
        if public_key.is_empty()
            || project.is_empty()
            || !project.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return None;
        }
        Some(Dsn {
            envelope_url: format!("{scheme}://{host_and_path}/api/{project}/envelope/"),
            public_key,
        })
    }
}

/// Starts the sender when `SENTRY_DSN` is set (once per process; later calls are ignored). Reports
/// are tagged with `service` (`api` or `worker`).
pub fn init(telemetry: &TelemetrySettings, service: &'static str) {
    let Some(dsn) = telemetry.sentry_dsn.as_ref() else {
        return;
    };
    let Some(dsn) = Dsn::parse(dsn.expose_secret()) else {
        tracing::warn!("SENTRY_DSN is not a valid DSN; errors are not reported");
        return;
    };
    let (tx, rx) = mpsc::channel(QUEUE);
    if REPORTER.set(Reporter { tx }).is_err() {
        return;
    }
    let context = Context {
        service,
        environment: telemetry.sentry_environment.clone(),
        release: telemetry.sentry_release.clone(),
    };
    tokio::spawn(send_all(dsn, context, rx));
}

/// Queues `event` for sending; never blocks, drops the event when the queue is full.
pub fn capture(event: ErrorEvent) {
    if let Some(reporter) = REPORTER.get() {
        let _ = reporter.tx.try_send(event);
    }
}

struct Context {
    service: &'static str,
    environment: String,
    release: String,
}

async fn send_all(dsn: Dsn, context: Context, mut rx: mpsc::Receiver<ErrorEvent>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(client) => client,
        Err(_) => return,
    };
    let auth = format!(
        "Sentry sentry_version=7, sentry_client=keel/{}, sentry_key={}",
        env!("CARGO_PKG_VERSION"),
        dsn.public_key
    );
    while let Some(event) = rx.recv().await {
        let body = envelope(&event, &context);
        let sent = client
            .post(&dsn.envelope_url)
            .header("content-type", "application/x-sentry-envelope")
            .header("x-sentry-auth", &auth)
            .body(body)
            .send()
            .await;
        if let Err(e) = sent {
            tracing::debug!(timeout = e.is_timeout(), "error report not delivered");
        }
    }
}

fn envelope(event: &ErrorEvent, context: &Context) -> String {
    let event_id = uuid::Uuid::now_v7().simple().to_string();
    let now = chrono::Utc::now();
    let mut tags = serde_json::Map::new();
    tags.insert("service".into(), json!(context.service));
    tags.insert("kind".into(), json!(event.kind));
    for (name, value) in [
        ("request_id", &event.request_id),
        ("route", &event.route),
        ("job_kind", &event.job_kind),
        ("queue", &event.queue),
    ] {
        if let Some(value) = value {
            tags.insert(name.into(), json!(value));
        }
    }
    if let Some(status) = event.status {
        tags.insert("status".into(), json!(status.to_string()));
    }
    let mut body = json!({
        "event_id": event_id,
        "timestamp": now.timestamp_millis() as f64 / 1000.0,
        "platform": "rust",
        "level": "error",
        "logger": "keel",
        "message": { "formatted": event.message },
        "environment": context.environment,
        "release": context.release,
        "tags": Value::Object(tags),
    });
    if let Some(user) = &event.user_id {
        body["user"] = json!({ "id": user });
    }
    let payload = body.to_string();
    let header = json!({ "event_id": event_id, "sent_at": now.to_rfc3339() });
    let item = json!({ "type": "event", "length": payload.len() });
    format!("{header}\n{item}\n{payload}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_gives_the_envelope_endpoint() {
        let dsn = Dsn::parse("https://abc123@o1.ingest.sentry.io/4506").unwrap();
        assert_eq!(
            dsn.envelope_url,
            "https://o1.ingest.sentry.io/api/4506/envelope/"
        );
        assert_eq!(dsn.public_key, "abc123");
        let dsn = Dsn::parse("http://key:secret@127.0.0.1:9000/sub/path/42").unwrap();
        assert_eq!(
            dsn.envelope_url,
            "http://127.0.0.1:9000/sub/path/api/42/envelope/"
        );
        assert_eq!(dsn.public_key, "key");
        assert!(Dsn::parse("ftp://k@h/1").is_none());
        assert!(Dsn::parse("https://h/1").is_none());
    }

    #[test]
    fn envelopes_carry_tags_and_no_more_than_the_user_id() {
        let context = Context {
            service: "worker",
            environment: "staging".into(),
            release: "1.2.3".into(),
        };
        let text = envelope(
            &ErrorEvent {
                message: "job failed".into(),
                kind: "job_failed",
                job_kind: Some("app.email".into()),
                user_id: Some("u1".into()),
                ..ErrorEvent::default()
            },
            &context,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let event: Value = serde_json::from_str(lines[2]).unwrap();
        let item: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(item["length"].as_u64().unwrap() as usize, lines[2].len());
        assert_eq!(event["tags"]["service"], "worker");
        assert_eq!(event["tags"]["job_kind"], "app.email");
        assert_eq!(event["environment"], "staging");
        assert_eq!(event["user"], json!({"id": "u1"}));
    }
}
