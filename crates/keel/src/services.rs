//! The services of one Keel process, built once from settings and shared by the HTTP handlers,
//! the worker, the scheduler and the command line.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Settings;
use crate::flags::Flags;
use crate::jobs::Queue;
use crate::schedule::{self, CronError, Scheduler};
use crate::store::Db;

#[derive(Debug, Clone)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub clock: Clock,
    pub flags: Flags,
    pub queue: Queue,
    pub scheduler: Scheduler,
}

impl Services {
    pub fn new(settings: Arc<Settings>, db: Db, clock: Clock) -> Result<Self, CronError> {
        let jobs = &settings.jobs;
        let flags = Flags::new(
            db.clone(),
            clock.clone(),
            jobs.scheduler_enabled,
            jobs.enqueue_enabled,
            jobs.worker_enabled,
        );
        let queue = Queue::new(db.clone(), clock.clone(), flags.clone());
        let scheduler = Scheduler::new(
            db.clone(),
            clock.clone(),
            flags.clone(),
            schedule::declared(&settings)?,
        );
        Ok(Self {
            settings,
            db,
            clock,
            flags,
            queue,
            scheduler,
        })
    }
}
