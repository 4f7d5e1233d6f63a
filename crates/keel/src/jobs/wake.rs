//! In-process wake-ups: an enqueue wakes one idle runner of that queue in this process at once.
//! Other processes learn of new jobs from Postgres `NOTIFY`, or by polling.
//!
//! One runner, not all: every runner woken sends a claim, and for a single new job all but one
//! find nothing. A runner listens only while it has a free slot, so the wake-up reaches one that
//! can take work (or waits, as a stored permit, for the first that frees a slot); a runner whose
//! claim came back full wakes the next, so a batch still spreads over every runner.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::Notify;

fn registry() -> &'static Mutex<HashMap<String, Arc<Notify>>> {
    static WAKERS: OnceLock<Mutex<HashMap<String, Arc<Notify>>>> = OnceLock::new();
    WAKERS.get_or_init(Default::default)
}

/// The wake-up of `queue`, shared by every worker of this process.
pub(crate) fn waker(queue: &str) -> Arc<Notify> {
    let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
    map.entry(queue.to_string()).or_default().clone()
}

pub(crate) fn queue(queue: &str) {
    let map = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(notify) = map.get(queue) {
        notify.notify_one();
    }
}

pub(crate) fn queues<'a>(names: impl Iterator<Item = &'a str>) {
    let mut names: Vec<&str> = names.collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        queue(name);
    }
}

pub(crate) fn all() {
    let map = registry().lock().unwrap_or_else(|e| e.into_inner());
    for notify in map.values() {
        notify.notify_one();
    }
}
