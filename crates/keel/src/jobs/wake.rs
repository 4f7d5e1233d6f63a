//! In-process wake-ups: an enqueue wakes this process's idle workers of that queue at once.
//! Other processes learn of new jobs from Postgres `NOTIFY`, or by polling.

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
        notify.notify_waiters();
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
