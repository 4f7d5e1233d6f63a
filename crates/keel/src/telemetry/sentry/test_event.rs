//! `keel sentry test`: one event, prepared as every report is (tags, privacy, stack) and sent
//! straight away, waiting for Sentry's answer, so a deploy can check that reports arrive. The
//! SDK's transport sends in the background and tells no one whether an event was taken; this
//! sends the same envelope itself and reads the answer.

use std::sync::Arc;

use secrecy::ExposeSecret;
use sentry::integrations::backtrace::{current_stacktrace, ProcessStacktraceIntegration};
use sentry::protocol::{Event, Exception, Level, Mechanism};
use sentry::Envelope;

use super::{options, parse_dsn, Tags, SEND_TIMEOUT};
use crate::telemetry::TelemetrySettings;

/// Why the test event was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum TestEventError {
    #[error("SENTRY_DSN is not set: there is nowhere to send the test event")]
    NoDsn,
    #[error("SENTRY_DSN is not a valid DSN ({0})")]
    InvalidDsn(String),
    #[error("Sentry refused the test event: HTTP {status}{}", limit_note(.limit))]
    Refused {
        status: u16,
        /// Sentry's `X-Sentry-Rate-Limits` or `Retry-After`, when it answered with one.
        limit: Option<String>,
    },
    #[error("Sentry is unreachable: {0}")]
    Unreachable(String),
}

fn limit_note(limit: &Option<String>) -> String {
    limit
        .as_ref()
        .map(|limit| format!(" (rate limited: {limit})"))
        .unwrap_or_default()
}

/// Sends one test event to `SENTRY_DSN` and returns its id once Sentry has accepted it.
pub async fn send_test_event(
    telemetry: &TelemetrySettings,
    tags: &Tags,
) -> Result<sentry::types::Uuid, TestEventError> {
    let dsn = telemetry.sentry_dsn.as_ref().ok_or(TestEventError::NoDsn)?;
    let dsn = parse_dsn(dsn.expose_secret()).map_err(TestEventError::InvalidDsn)?;
    let client = sentry::Client::with_options(options(
        telemetry,
        dsn.clone(),
        tags,
        vec![Arc::new(ProcessStacktraceIntegration::new())],
    ));
    let mut event = Event {
        level: Level::Error,
        logger: Some("keel::sentry".into()),
        exception: vec![Exception {
            ty: "keel sentry test".into(),
            value: Some("A test event from `keel sentry test`: error reporting works".into()),
            stacktrace: current_stacktrace(),
            mechanism: Some(Mechanism {
                ty: "keel.test".into(),
                handled: Some(true),
                ..Mechanism::default()
            }),
            ..Exception::default()
        }]
        .into(),
        ..Event::default()
    };
    event.tags.insert("kind".into(), "test".into());
    let event = client.prepare_event(event, None).ok_or_else(|| {
        TestEventError::Unreachable("the event was dropped before sending".into())
    })?;
    let id = event.event_id;
    let mut body = Vec::new();
    Envelope::from(event)
        .to_writer(&mut body)
        .map_err(|e| TestEventError::Unreachable(format!("cannot write the envelope: {e}")))?;
    let auth = dsn.to_auth(Some(&client.options().user_agent)).to_string();
    let http = reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .build()
        .map_err(|e| TestEventError::Unreachable(e.to_string()))?;
    let response = http
        .post(dsn.envelope_api_url().as_str())
        .header("x-sentry-auth", auth)
        .header("content-type", "application/x-sentry-envelope")
        .body(body)
        .send()
        .await
        .map_err(|e| TestEventError::Unreachable(e.without_url().to_string()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(id);
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Err(TestEventError::Refused {
        status: status.as_u16(),
        limit: header("x-sentry-rate-limits").or_else(|| header("retry-after")),
    })
}
