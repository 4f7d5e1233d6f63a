//! The services of one Keel process, built once from settings and shared by the HTTP handlers,
//! the worker, the scheduler and the command line.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Verifier;
use crate::billing::Billing;
use crate::clock::Clock;
use crate::config::{AppEnv, Settings};
use crate::console_sessions::ConsoleSessions;
use crate::crypto::{SealError, Sealer};
use crate::events::AppEvents;
use crate::flags::Flags;
use crate::jobs::{KindDefaults, Queue};
use crate::ratelimit::RateLimiter;
use crate::schedule::{self, CronError, Scheduler};
use crate::storage::Storage;
use crate::store::audit::AuditRow;
use crate::store::{Db, StoreError};
use crate::users::Users;

/// The kind of the job that prunes finished jobs.
pub const PRUNE_KIND: &str = "jobs.prune";

#[derive(Debug, Clone)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub clock: Clock,
    pub flags: Flags,
    pub queue: Queue,
    pub scheduler: Scheduler,
    pub verifier: Verifier,
    pub users: Users,
    pub billing: Billing,
    pub console_sessions: ConsoleSessions,
    /// Whether events for the app are written (`APP_EVENTS_URL`).
    pub events: AppEvents,
    pub limiter: Arc<RateLimiter>,
    /// Object storage: users' uploads and the library API (`put`, `get`, `delete`, `url`).
    pub storage: Storage,
}

#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error("schedules: {0}")]
    Schedule(#[from] CronError),
    #[error("authentication: {0}")]
    Auth(String),
    #[error("development webhook secret: {0}")]
    DevSecret(String),
    #[error("DATA_ENCRYPTION_KEYS: {0}")]
    Keys(#[from] SealError),
}

impl Services {
    /// The audit log, newest first: every entry, or those about `target`.
    pub async fn audit_log(
        &self,
        target: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        self.db.audit_rows(target, limit).await
    }

    /// Events for the app, undelivered first (see `Db::app_event_list`).
    pub async fn app_events(
        &self,
        user_id: Option<&str>,
        pending: bool,
        limit: i64,
    ) -> Result<Vec<crate::events::EventView>, StoreError> {
        let rows = self.db.app_event_list(user_id, pending, limit).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// One round trip to the database, bounded by `timeout`; how long it took.
    pub async fn ping_database(&self, timeout: Duration) -> Result<Duration, StoreError> {
        self.db.ping(timeout).await
    }

    pub fn new(settings: Arc<Settings>, db: Db, clock: Clock) -> Result<Self, ServicesError> {
        let jobs = &settings.jobs;
        let flags = Flags::new(
            db.clone(),
            clock.clone(),
            jobs.scheduler_enabled,
            jobs.enqueue_enabled,
            jobs.worker_enabled,
        );
        let defaults = KindDefaults::new(jobs.http_kinds.clone());
        let queue =
            Queue::new(db.clone(), clock.clone(), flags.clone()).with_defaults(defaults.clone());
        let scheduler = Scheduler::new(
            db.clone(),
            clock.clone(),
            flags.clone(),
            schedule::declared(&settings.file.schedules)?,
        )
        .with_defaults(defaults);
        // The development token key only in development; the development data key anywhere but
        // in production.
        let dev_tokens = settings.app_env == AppEnv::Development;
        let verifier = Verifier::from_settings(
            &settings.auth,
            dev_tokens.then_some(settings.data_dir.as_path()),
            clock.clone(),
        )
        .map_err(ServicesError::Auth)?;
        let events = AppEvents::new(
            settings.app.events_url.is_some(),
            settings.billing.accept_sandbox,
        );
        let users = Users::new(db.clone(), clock.clone(), events);
        let dev_data_key = !settings.is_production();
        let sealer = Sealer::configured(
            &settings.data_keys,
            dev_data_key.then_some(settings.data_dir.as_path()),
        )?;
        let storage = Storage::new(
            settings.storage.clone(),
            db.clone(),
            clock.clone(),
            sealer.derived_mac_key("storage links"),
        );
        let billing_settings = crate::billing::dev_secret::effective(
            &settings.billing,
            &settings.data_dir,
            settings.app_env == AppEnv::Development,
        )
        .map_err(ServicesError::DevSecret)?;
        let billing = Billing::new(
            Arc::new(billing_settings),
            db.clone(),
            clock.clone(),
            queue.clone(),
            sealer,
            events,
        );
        let limiter = Arc::new(RateLimiter::new(&settings.rate_limit, clock.clone()));
        let console_sessions = ConsoleSessions::new(db.clone(), clock.clone());
        Ok(Self {
            settings,
            db,
            clock,
            flags,
            queue,
            scheduler,
            verifier,
            users,
            billing,
            console_sessions,
            events,
            limiter,
            storage,
        })
    }
}
