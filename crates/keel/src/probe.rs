//! Reachability checks of dependencies that have no pool of their own here (Redis).

use std::time::{Duration, Instant};

use crate::redis_target::RedisTarget;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("invalid REDIS_URL or REDIS_CA_FILE: {0}")]
    Target(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Redis(String),
    #[error("unexpected reply")]
    Reply,
}

/// Connects (TLS and `AUTH` as the target says), sends `PING` and waits for `PONG`.
pub async fn redis_ping(target: &RedisTarget, timeout: Duration) -> Result<Duration, ProbeError> {
    let started = Instant::now();
    let client = target
        .client()
        .map_err(|e| ProbeError::Target(e.to_string()))?;
    let exchange = async {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let mut connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| ProbeError::Redis(e.to_string()))?;
        let reply: String = redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .map_err(|e| ProbeError::Redis(e.to_string()))?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(ProbeError::Reply)
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result.map(|()| started.elapsed()),
        Err(_) => Err(ProbeError::Timeout(timeout)),
    }
}

/// [`redis_ping`] for a `REDIS_URL` without a CA file.
pub async fn redis_ping_url(url: &str, timeout: Duration) -> Result<Duration, ProbeError> {
    let target = RedisTarget::parse(url).map_err(ProbeError::Target)?;
    redis_ping(&target, timeout).await
}
