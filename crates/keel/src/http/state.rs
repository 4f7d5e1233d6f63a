//! What every handler can reach.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::app_data_map::AppDataMap;
use crate::clock::Clock;
use crate::config::Settings;
use crate::jobs::Registry;
use crate::services::{Services, ServicesError};
use crate::store::Db;

/// Where the process is in its life; `/health/ready` answers 200 only in `Ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting = 0,
    Migrating = 1,
    Ready = 2,
    Draining = 3,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Migrating => "migrating",
            Phase::Ready => "ready",
            Phase::Draining => "draining",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicU8>);

impl Readiness {
    pub fn set(&self, phase: Phase) {
        self.0.store(phase as u8, Ordering::SeqCst);
    }

    pub fn phase(&self) -> Phase {
        match self.0.load(Ordering::SeqCst) {
            1 => Phase::Migrating,
            2 => Phase::Ready,
            3 => Phase::Draining,
            _ => Phase::Starting,
        }
    }
}

/// What every handler can reach: the process's services, plus its place in its life. Cloned for
/// every request and extractor, so it is one `Arc`.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<AppStateInner>,
}

#[derive(Debug)]
pub struct AppStateInner {
    pub services: Services,
    pub readiness: Readiness,
    pub started: Instant,
    /// The application's own values ([`AppData`](super::AppData) reads them).
    pub app_data: AppDataMap,
    /// Every job handler of this process, whether or not it runs a worker: the kinds it knows.
    pub handlers: Arc<Registry>,
    /// The gateway to the app, when the process serves the API with `UPSTREAM_URL` set.
    pub gateway: Option<Arc<crate::gateway::Gateway>>,
}

impl AppState {
    /// The state of a process whose handlers are the built-in ones.
    pub fn new(settings: Arc<Settings>, db: Db, clock: Clock) -> Result<Self, ServicesError> {
        Self::assemble(
            settings,
            db,
            clock,
            Registry::with_builtins(),
            AppDataMap::default(),
        )
    }

    /// The state of a process with the job handlers of `registry` (plus Keel's own) and the
    /// application's own values beside Keel's services.
    pub fn assemble(
        settings: Arc<Settings>,
        db: Db,
        clock: Clock,
        registry: Registry,
        app_data: AppDataMap,
    ) -> Result<Self, ServicesError> {
        let services = Services::new(settings, db, clock)?;
        let handlers = Arc::new(crate::kinds::handlers(&services, registry));
        let gateway = gateway_for(&services.settings);
        Ok(Self {
            inner: Arc::new(AppStateInner {
                services,
                readiness: Readiness::default(),
                started: Instant::now(),
                app_data,
                handlers,
                gateway,
            }),
        })
    }
}

fn gateway_for(settings: &Settings) -> Option<Arc<crate::gateway::Gateway>> {
    if !settings.role.serves_api() {
        return None;
    }
    crate::gateway::Gateway::new(&settings.gateway).map(Arc::new)
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.inner
    }
}

impl std::ops::Deref for AppStateInner {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}
