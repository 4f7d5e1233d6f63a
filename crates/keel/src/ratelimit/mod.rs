//! Rate limiting: GCRA ([`gcra`]) over per-key state kept in memory ([`memory`]) or in Redis
//! ([`redis`], shared by every process), under named policies ([`policy`]) that say how many
//! requests per period each user, tenant or client IP ([`ip`]) may make on which routes.
//!
//! The HTTP side (keys from the request, headers, 429) is `http::middleware::rate_limit`.

pub mod gcra;
pub mod ip;
pub mod memory;
pub mod policy;
pub mod redis;
mod settings;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub use gcra::{Decision, Rate};
pub use ip::IpNet;
pub use policy::{KeyKind, Policies, Policy, RateLimitDecl, RateLimitKey};
pub use settings::{RateLimitBackend, RateLimitSettings};

use crate::clock::Clock;
use memory::MemoryStore;
use redis::{RedisError, RedisStore};

/// At most one warning about an unreachable backend per this many milliseconds.
const WARN_EVERY_MS: u64 = 10_000;

#[derive(Debug)]
enum Backend {
    Memory(MemoryStore),
    Redis(Box<RedisStore>),
}

/// What the limiter says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Decided(Decision),
    /// The backend could not answer (counted and logged); the caller fails open or closed.
    Unavailable,
}

/// The rate limiter of one process: its policies, its backend and its counters.
#[derive(Debug)]
pub struct RateLimiter {
    policies: Policies,
    backend: Backend,
    fail_closed: bool,
    trusted_proxies: Vec<IpNet>,
    clock: Clock,
    limited: Box<[AtomicU64]>,
    backend_errors: AtomicU64,
    warnings: LogGate,
}

impl RateLimiter {
    /// The limiter `settings` describe.
    pub fn new(settings: &RateLimitSettings, clock: Clock) -> RateLimiter {
        let backend = match settings.backend {
            // Without a valid REDIS_URL (refused by the configuration rules) an unchecked section
            // still gets a limiter, one whose every check is unavailable.
            RateLimitBackend::Redis => Backend::Redis(Box::new(RedisStore::new(
                settings
                    .redis_target()
                    .unwrap_or_else(|| Err("REDIS_URL is not set".into())),
            ))),
            RateLimitBackend::Memory => Backend::Memory(MemoryStore::default()),
        };
        Self::build(
            Policies::new(settings.policies.clone()),
            backend,
            settings.fail_closed,
            settings.trusted_proxies.clone(),
            clock,
        )
    }

    /// An in-memory limiter over `policies` (tests, and library users without settings).
    pub fn memory(policies: Vec<Policy>, clock: Clock) -> RateLimiter {
        let backend = Backend::Memory(MemoryStore::default());
        Self::build(Policies::new(policies), backend, false, Vec::new(), clock)
    }

    fn build(
        policies: Policies,
        backend: Backend,
        fail_closed: bool,
        trusted_proxies: Vec<IpNet>,
        clock: Clock,
    ) -> RateLimiter {
        let limited = policies.all().iter().map(|_| AtomicU64::new(0)).collect();
        RateLimiter {
            policies,
            backend,
            fail_closed,
            trusted_proxies,
            clock,
            limited,
            backend_errors: AtomicU64::new(0),
            warnings: LogGate::new(),
        }
    }

    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    pub fn trusted_proxies(&self) -> &[IpNet] {
        &self.trusted_proxies
    }

    /// Whether a request is refused (503) when the backend cannot answer.
    pub fn fail_closed(&self) -> bool {
        self.fail_closed
    }

    /// One request under `policy` by `key` (`user:…`, `tenant:…`, `ip:…`).
    pub async fn check(&self, policy: &Policy, key: &str) -> Outcome {
        if let Some(outcome) = self.check_now(policy, key) {
            return outcome;
        }
        let full_key = format!("{}:{key}", policy.name);
        let result = match &self.backend {
            Backend::Redis(store) => store.check(&full_key, policy.rate).await,
            Backend::Memory(_) => return Outcome::Unavailable,
        };
        self.outcome(policy, result)
    }

    /// [`RateLimiter::check`] when the backend answers without waiting (memory); `None` for
    /// a backend that needs a round trip (Redis).
    pub fn check_now(&self, policy: &Policy, key: &str) -> Option<Outcome> {
        let Backend::Memory(store) = &self.backend else {
            return None;
        };
        let mut full_key = String::with_capacity(policy.name.len() + 1 + key.len());
        full_key.push_str(&policy.name);
        full_key.push(':');
        full_key.push_str(key);
        let now = self.clock.now().timestamp_micros();
        Some(self.outcome(policy, Ok(store.check(&full_key, policy.rate, now))))
    }

    fn outcome(&self, policy: &Policy, result: Result<Decision, RedisError>) -> Outcome {
        match result {
            Ok(decision) => {
                if !decision.allowed {
                    if let Some(n) = self.limited.get(policy.index) {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Outcome::Decided(decision)
            }
            Err(e) => {
                self.backend_errors.fetch_add(1, Ordering::Relaxed);
                self.warnings.warn(&e, self.fail_closed);
                Outcome::Unavailable
            }
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis(_) => "redis",
        }
    }

    /// Requests refused with 429, per policy name.
    pub fn limited_total(&self) -> Vec<(&str, u64)> {
        self.policies
            .all()
            .iter()
            .zip(self.limited.iter())
            .map(|(p, n)| (p.name.as_str(), n.load(Ordering::Relaxed)))
            .collect()
    }

    /// Checks the backend could not answer.
    pub fn backend_errors_total(&self) -> u64 {
        self.backend_errors.load(Ordering::Relaxed)
    }

    /// The memory backend's keys held and active keys evicted to stay within its bound.
    pub fn memory_stats(&self) -> Option<(usize, u64)> {
        match &self.backend {
            Backend::Memory(store) => Some(store.stats()),
            Backend::Redis(_) => None,
        }
    }
}

/// Logs the first backend failure at once and then at most one line per [`WARN_EVERY_MS`],
/// saying how many were not logged: a Redis outage under load must not flood the logs.
#[derive(Debug)]
struct LogGate {
    epoch: Instant,
    /// Milliseconds after `epoch` (plus one) of the last line; 0 before the first.
    last_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl LogGate {
    fn new() -> Self {
        LogGate {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    fn warn(&self, error: &RedisError, fail_closed: bool) {
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        let last = self.last_ms.load(Ordering::Relaxed);
        let due = last == 0 || now >= last + WARN_EVERY_MS;
        if !due
            || self
                .last_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let not_logged = self.suppressed.swap(0, Ordering::Relaxed);
        let effect = if fail_closed {
            "requests are refused with 503 (RATE_LIMIT_FAIL_CLOSED)"
        } else {
            "requests are let through unlimited (fail open)"
        };
        tracing::warn!(
            error = %error,
            failures_not_logged = not_logged,
            "rate-limit backend unavailable: {effect}"
        );
    }
}
