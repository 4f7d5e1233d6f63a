//! The rate-limit section of the settings: the backend (`RATE_LIMIT_BACKEND`, `REDIS_URL`,
//! `REDIS_CA_FILE`), what a
//! request meets when it cannot answer, the proxies whose `X-Forwarded-For` is believed, and the
//! policies (`[[rate_limits]]` of `keel.toml` over the built-ins, resolved by
//! [`super::policy::resolve`]).

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use crate::redis_target::RedisTarget;

use super::ip::IpNet;
use super::policy::Policy;

/// Where the limiter keeps its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitBackend {
    Memory,
    Redis,
}

#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    pub backend: RateLimitBackend,
    /// Required with the Redis backend; `/health` checks it whenever it is set.
    pub redis_url: Option<SecretString>,
    /// The CA certificate(s), PEM, a `rediss://` server's certificate must be signed by, in place
    /// of the public authorities.
    pub redis_ca_file: Option<PathBuf>,
    pub fail_closed: bool,
    pub trusted_proxies: Vec<IpNet>,
    pub policies: Vec<Policy>,
}

impl RateLimitSettings {
    /// Where Redis is (`None` without `REDIS_URL`; `Err` for a URL or CA file that is refused).
    pub fn redis_target(&self) -> Option<Result<RedisTarget, String>> {
        let url = self.redis_url.as_ref()?;
        Some(
            RedisTarget::parse(url.expose_secret()).and_then(|target| match &self.redis_ca_file {
                Some(path) => target.with_ca_file(path),
                None => Ok(target),
            }),
        )
    }

    /// What is wrong with this section, as (variable, message) pairs.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.backend == RateLimitBackend::Redis && self.redis_url.is_none() {
            problems.push((
                "REDIS_URL",
                "is required when RATE_LIMIT_BACKEND=redis".to_string(),
            ));
        }
        problems
    }
}
