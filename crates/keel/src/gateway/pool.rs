//! The idle connections to the app, kept for the next request: the most recently used is taken
//! first (a steady load keeps reusing a few, the others age out), at most [`MAX_IDLE`] are kept,
//! and one unused for [`POOL_IDLE`] is closed. A connection comes back only once its answer has
//! been read to the end with the connection still open; one the app closed while idle is noticed
//! when it is taken, and dropped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::failure::Failure;
use super::link::{self, Link, POOL_IDLE};

/// The most idle connections kept.
pub const MAX_IDLE: usize = 256;

pub struct Pool {
    /// `host:port` of the app.
    target: String,
    connect_timeout: Duration,
    /// The most recently used at the back.
    idle: Mutex<VecDeque<Link>>,
    /// Whether the task closing connections idle too long has started.
    sweeping: AtomicBool,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("target", &self.target)
            .field("idle", &self.lock().len())
            .finish()
    }
}

impl Pool {
    pub fn new(target: String, connect_timeout: Duration) -> Pool {
        Pool {
            target,
            connect_timeout,
            idle: Mutex::new(VecDeque::new()),
            sweeping: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Link>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new connection to the app; [`Failure::Connect`] when none can be made in time.
    pub async fn open(&self) -> Result<Link, Failure> {
        let stream = link::connect(&self.target, self.connect_timeout)
            .await
            .map_err(|e| {
                tracing::debug!(error = %e, "no connection to the app");
                Failure::Connect
            })?;
        Link::open(stream).await.map_err(|_| Failure::Connect)
    }

    /// A new connection that is not pooled, for a protocol switch.
    pub async fn open_stream(&self) -> Result<tokio::net::TcpStream, Failure> {
        link::connect(&self.target, self.connect_timeout)
            .await
            .map_err(|_| Failure::Connect)
    }

    /// The most recently used idle connection that is still open and not idle too long.
    pub fn take(&self) -> Option<Link> {
        loop {
            let mut link = self.lock().pop_back()?;
            // Checked (and, when closed, dropped) outside the lock.
            let idle = link.idle_since.elapsed();
            if idle < POOL_IDLE && link.reusable() {
                link.idle = Some(idle);
                return Some(link);
            }
        }
    }

    /// Keeps `link`, whose answer has been read to the end, for the next request. With
    /// [`MAX_IDLE`] already kept, the one idle longest is closed.
    pub fn put(self: &Arc<Self>, mut link: Link) {
        // Driven as its answer ended, it is usually seen ready without being driven again.
        if !link.ready() && !link.reusable() {
            return;
        }
        link.idle_since = Instant::now();
        let evicted = {
            let mut idle = self.lock();
            idle.push_back(link);
            if idle.len() > MAX_IDLE {
                idle.pop_front()
            } else {
                None
            }
        };
        drop(evicted);
        if !self.sweeping.load(Ordering::Relaxed)
            && !self.sweeping.swap(true, Ordering::Relaxed)
            && !sweep_every(POOL_IDLE / 2, Arc::downgrade(self))
        {
            self.sweeping.store(false, Ordering::Relaxed);
        }
    }

    /// Closes the connections idle too long and those the app has closed.
    fn sweep(&self) {
        let mut closed = Vec::new();
        {
            let mut idle = self.lock();
            let mut kept = VecDeque::with_capacity(idle.len());
            for mut link in idle.drain(..) {
                if link.idle_since.elapsed() < POOL_IDLE && link.reusable() {
                    kept.push_back(link);
                } else {
                    closed.push(link);
                }
            }
            *idle = kept;
        }
        drop(closed);
    }
}

/// Sweeps the pool every `period` for as long as it exists; `false` outside a runtime.
fn sweep_every(period: Duration, pool: Weak<Pool>) -> bool {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return false;
    };
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            match pool.upgrade() {
                Some(pool) => pool.sweep(),
                None => return,
            }
        }
    });
    true
}
