//! Shared set-up for the HTTP job kind tests: an app whose worker delivers the kinds of a
//! `keel.toml` to a receiver on a free port, and waits on its jobs.
#![allow(dead_code)]

use std::time::Duration;

use keel::crypto::standard_webhooks::{self, Received, WebhookSecret};
use keel::jobs::{JobRow, JobSpec, JobState};
use keel_testkit::{Delivery, Receiver, TestApp, TestDb};

use crate::jobs_support;

/// The app's signing secret in these tests.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// How long any wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub struct Env {
    pub app: TestApp,
    pub receiver: Receiver,
}

/// An app (running its worker) with `app.work` delivered to the receiver's `/jobs/work` with a
/// delivery timeout of `timeout` seconds, plus `extra` lines of `keel.toml`.
pub async fn setup(db: TestDb, timeout: u64, extra: &str) -> Env {
    let receiver = Receiver::start().await;
    let toml = format!(
        "[jobs.http.\"app.work\"]\nurl = \"{}\"\ntimeout = {timeout}\n{extra}",
        receiver.url("/jobs/work")
    );
    let app = TestApp::builder(db)
        .env("APP_WEBHOOK_SECRET", SECRET)
        .keel_toml(&toml)
        .spawn()
        .await;
    Env { app, receiver }
}

impl Env {
    pub async fn enqueue(&self, spec: JobSpec) -> i64 {
        self.app
            .services()
            .queue
            .enqueue(spec)
            .await
            .expect("enqueue")
            .id
    }

    pub async fn job(&self, id: i64) -> JobRow {
        jobs_support::job(&self.app.services().db, id).await
    }

    /// Waits until job `id` satisfies `pred`; fails with the row when it does not in time.
    pub async fn wait_job(&self, id: i64, what: &str, pred: impl Fn(&JobRow) -> bool) -> JobRow {
        jobs_support::wait_job(&self.app.services().db, id, what, pred).await
    }

    pub async fn wait_state(&self, id: i64, state: JobState) -> JobRow {
        self.wait_job(id, state.as_str(), |r| r.state == state)
            .await
    }

    /// Asserts that job `id` stays in a state `pred` accepts for `period`.
    pub async fn stays(
        &self,
        id: i64,
        period: Duration,
        what: &str,
        pred: impl Fn(&JobRow) -> bool,
    ) {
        jobs_support::stays(&self.app.services().db, id, period, what, pred).await
    }

    /// Waits until job `id` is retryable after attempt `attempt`.
    pub async fn wait_retry(&self, id: i64, attempt: i32) -> JobRow {
        self.wait_job(id, &format!("retryable after attempt {attempt}"), |r| {
            r.state == JobState::Retryable && r.attempt == attempt
        })
        .await
    }
}

/// Checks `delivery` with Keel's own verifier at `now`.
pub fn verify(delivery: &Delivery, now: i64) -> Result<(), standard_webhooks::VerifyError> {
    let secrets = [WebhookSecret::parse(SECRET).expect("secret")];
    standard_webhooks::verify(
        Received {
            id: Some(delivery.header(standard_webhooks::ID_HEADER)),
            timestamp: Some(delivery.header(standard_webhooks::TIMESTAMP_HEADER)),
            signature: Some(delivery.header(standard_webhooks::SIGNATURE_HEADER)),
        },
        &delivery.body,
        &secrets,
        now,
    )
}
