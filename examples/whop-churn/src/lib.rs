//! Churn recovery for a Whop app, built on Keel.
//!
//! Whop webhooks (Keel's `/webhooks/whop`) keep each member's membership, held in its company.
//! Every five minutes the `churn-fan-out` schedule enqueues one reminder job per company with
//! members who will not renew (unique per company and tick, time-boxed, the company as breaker
//! key: a company whose sends keep failing is deferred while the others go on). A reminder posts
//! the company's at-risk members to `CHURN_NOTIFY_URL` and then records itself and its audit row
//! in one transaction. A company's admin can nudge at once with `POST /v1/companies/{id}/nudge`.

pub mod jobs;
pub mod routes;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use keel::clock::Clock;
use keel::config::Settings;
use keel::runtime::Server;

/// The schedule, for the app's `keel.toml`.
pub const SCHEDULES: &str = r#"
[[schedules]]
name = "churn-fan-out"
cron = "*/5 * * * *"
kind = "churn.fan_out"
"#;

/// How long one reminder may take, sending included.
pub const REMINDER_TIMEOUT: Duration = Duration::from_secs(30);

/// What the jobs and routes share.
#[derive(Debug, Clone)]
pub struct Churn {
    /// Where reminders are posted (`CHURN_NOTIFY_URL`).
    pub notify_url: String,
    pub http: reqwest::Client,
    pub clock: Clock,
}

impl Churn {
    pub fn new(notify_url: String, clock: Clock) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REMINDER_TIMEOUT / 2)
            .build()
            .unwrap_or_default();
        Self {
            notify_url,
            http,
            clock,
        }
    }
}

/// A Keel server with the churn jobs and routes.
pub fn server(settings: Settings, churn: Churn) -> Server {
    let churn = Arc::new(churn);
    let routes = routes::router(churn.clone());
    Server::new(settings)
        .clock(churn.clock.clone())
        .jobs(move |registry| jobs::register(registry, churn))
        .routes(routes)
}
