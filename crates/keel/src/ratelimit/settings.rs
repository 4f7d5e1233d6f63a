//! The rate-limit section of the settings: the backend (`RATE_LIMIT_BACKEND`, `REDIS_URL`), what a
//! request meets when it cannot answer, the proxies whose `X-Forwarded-For` is believed, and the
//! policies (`[[rate_limits]]` of `keel.toml` over the built-ins, resolved by
//! [`super::policy::resolve`]).

use secrecy::SecretString;

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
    pub fail_closed: bool,
    pub trusted_proxies: Vec<IpNet>,
    pub policies: Vec<Policy>,
}

impl RateLimitSettings {
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
