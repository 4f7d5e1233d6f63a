//! Shared set-up for the job, worker and schedule tests: a `TestApp` on either engine whose
//! services (store, clock, flags, queue) the tests drive directly, workers that stop on demand,
//! and bounded waits on jobs.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use keel::clock::Clock;
use keel::flags::Flags;
use keel::jobs::{JobFilter, JobRow, JobSpec, JobState, Queue, Registry, Worker, WorkerConfig};
use keel::store::jobs::BreakerPolicy;
use keel::store::Db;
use keel::Settings;
use keel_testkit::{TestApp, TestDb};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long any wait for a job may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub struct Env {
    pub db: Db,
    pub clock: Clock,
    pub flags: Flags,
    pub queue: Queue,
    pub settings: Arc<Settings>,
    /// The app whose services these are; it runs no worker or scheduler of its own
    /// (`PROCESS_ROLE=api`), so each test starts the workers it needs.
    pub app: TestApp,
}

/// A migrated database with the default flags (all on).
pub async fn setup(db: TestDb) -> Env {
    setup_with_toml(db, None).await
}

/// Like [`setup`], with `toml` as the app's `keel.toml`.
pub async fn setup_with_toml(db: TestDb, toml: Option<&str>) -> Env {
    let mut builder = TestApp::builder(db).env("PROCESS_ROLE", "api");
    if let Some(toml) = toml {
        builder = builder.keel_toml(toml);
    }
    let app = builder.spawn().await;
    let services = app.services();
    Env {
        db: services.db.clone(),
        clock: services.clock.clone(),
        flags: services.flags.clone(),
        queue: services.queue.clone(),
        settings: services.settings.clone(),
        app,
    }
}

/// A worker configuration for tests: quick polls and rescues, a long lease, 5 s of grace.
pub fn config(queues: &[(&str, usize)]) -> WorkerConfig {
    WorkerConfig {
        queues: queues.iter().map(|(q, c)| (q.to_string(), *c)).collect(),
        lease: Duration::from_secs(30),
        poll_interval: Duration::from_millis(100),
        listen: true,
        breaker: BreakerPolicy {
            threshold: 5,
            cooldown: Duration::from_secs(60),
        },
        grace: Duration::from_secs(5),
        rescue_interval: Duration::from_millis(100),
    }
}

/// A running worker and the switch that stops it.
pub struct Running {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl Running {
    /// Stops the worker and waits (bounded) until every runner has finished or released its jobs.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(DEADLINE, self.handle)
            .await
            .expect("the worker stops in time")
            .expect("the worker task ends cleanly");
    }
}

impl Env {
    pub fn start_worker(&self, registry: Registry, config: WorkerConfig) -> Running {
        self.start_worker_with(self.flags.clone(), registry, config)
    }

    /// A worker with its own view of the flags (as another process would have).
    pub fn start_worker_with(
        &self,
        flags: Flags,
        registry: Registry,
        config: WorkerConfig,
    ) -> Running {
        let (stop, stop_rx) = watch::channel(false);
        let handle = Worker::on_pools(
            &self.db,
            &self.settings.database,
            self.clock.clone(),
            flags,
            registry,
            config,
        )
        .expect("the worker's pools")
        .spawn(stop_rx);
        Running { stop, handle }
    }

    pub async fn enqueue(&self, spec: JobSpec) -> i64 {
        self.queue.enqueue(spec).await.expect("enqueue").id
    }

    pub async fn job(&self, id: i64) -> JobRow {
        job(&self.db, id).await
    }

    /// Waits until job `id` satisfies `pred`; fails with the row when it does not within 20 s.
    pub async fn wait_job(&self, id: i64, what: &str, pred: impl Fn(&JobRow) -> bool) -> JobRow {
        wait_job(&self.db, id, what, pred).await
    }

    pub async fn wait_state(&self, id: i64, state: JobState) -> JobRow {
        self.wait_job(id, state.as_str(), |row| row.state == state)
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
        stays(&self.db, id, period, what, pred).await
    }
}

/// Waits until job `id` satisfies `pred`; fails with the row when it does not within
/// [`DEADLINE`].
pub async fn wait_job(db: &Db, id: i64, what: &str, pred: impl Fn(&JobRow) -> bool) -> JobRow {
    let started = Instant::now();
    loop {
        let row = job(db, id).await;
        if pred(&row) {
            return row;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "job {id} did not become {what} within {DEADLINE:?}: {row:#?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Asserts that job `id` stays in a state `pred` accepts for `period`.
pub async fn stays(db: &Db, id: i64, period: Duration, what: &str, pred: impl Fn(&JobRow) -> bool) {
    let started = Instant::now();
    while started.elapsed() < period {
        let row = job(db, id).await;
        assert!(pred(&row), "job {id} should stay {what}: {row:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn job(db: &Db, id: i64) -> JobRow {
    let rows = db
        .list_jobs(&JobFilter {
            id: Some(id),
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("list jobs");
    rows.into_iter()
        .next()
        .unwrap_or_else(|| panic!("job {id} does not exist"))
}

pub const HOUR: Duration = Duration::from_secs(3600);
