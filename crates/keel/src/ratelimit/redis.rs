//! The Redis backend: one Lua script computes GCRA atomically on the Redis server, in one round
//! trip, so every process sharing the Redis enforces one limit together.
//!
//! Time is the Redis server's (`TIME`), not the caller's: processes whose clocks disagree still
//! agree on every key. The script is sent once per Redis start (`EVALSHA`, then `EVAL` on
//! `NOSCRIPT`); each key expires (`PX`) when its TAT passes, so idle keys cost no memory.
//!
//! Checks share one multiplexed connection (the `redis` crate's connection manager, `redis://` or
//! `rediss://`), which reconnects when it breaks: a burst of checks is pipelined over it rather
//! than opening a connection each. Every check has a short deadline; after a failed connect or a
//! timeout the backend is treated as down for a second, so requests are not each held up by a
//! Redis that is not there.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::gcra::{Decision, Rate};
use crate::redis_target::RedisTarget;

/// Deadline of one check, connecting included.
pub const TIMEOUT: Duration = Duration::from_millis(250);
/// After a failed connect, checks fail at once for this long.
const DOWN_FOR: Duration = Duration::from_secs(1);

pub const KEY_PREFIX: &str = "keel:rl:";

/// KEYS[1]: the key. ARGV[1]: emission interval T (µs). ARGV[2]: burst tolerance τ (µs).
/// Returns {allowed (0|1), TAT − now (µs)}, the TAT after the request when allowed.
pub const SCRIPT: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then tat = math.max(tonumber(stored) or now, now) end
if now < tat - tolerance then
  return {0, tat - now}
end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
return {1, tat - now}
";

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("REDIS_URL is not a valid Redis URL")]
    Url,
    #[error("Redis was unreachable moments ago; not trying again yet")]
    Down,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connecting: {0}")]
    Connect(String),
    #[error("Redis answered: {0}")]
    Reply(String),
}

impl RedisError {
    fn from_client(e: &redis::RedisError) -> RedisError {
        if e.is_timeout() {
            RedisError::Timeout(TIMEOUT)
        } else if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
            RedisError::Connect(e.to_string())
        } else {
            RedisError::Reply(e.to_string())
        }
    }
}

pub struct RedisStore {
    target: Result<RedisTarget, String>,
    /// Made on the first check, inside the runtime.
    connection: OnceLock<Result<ConnectionManager, String>>,
    script: redis::Script,
    epoch: Instant,
    /// Milliseconds after `epoch` until which Redis counts as down.
    down_until_ms: AtomicU64,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.target)
            .finish()
    }
}

impl RedisStore {
    /// A store for `target` (`Err`: a URL the configuration rules refuse). It connects on the
    /// first check.
    pub fn new(target: Result<RedisTarget, String>) -> Self {
        RedisStore {
            target,
            connection: OnceLock::new(),
            script: redis::Script::new(SCRIPT),
            epoch: Instant::now(),
            down_until_ms: AtomicU64::new(0),
        }
    }

    /// One request for `key` (without the prefix) against Redis, within [`TIMEOUT`].
    pub async fn check(&self, key: &str, rate: Rate) -> Result<Decision, RedisError> {
        let connection = self.connection()?;
        if self.since_epoch_ms() < self.down_until_ms.load(Ordering::Relaxed) {
            return Err(RedisError::Down);
        }
        let key = format!("{KEY_PREFIX}{key}");
        let result = tokio::time::timeout(TIMEOUT, self.call(connection.clone(), &key, rate))
            .await
            .unwrap_or(Err(RedisError::Timeout(TIMEOUT)));
        if let Err(RedisError::Connect(_) | RedisError::Timeout(_)) = &result {
            // Refused, unreachable or too slow: do not make the next requests wait for it too.
            let until = self.since_epoch_ms() + DOWN_FOR.as_millis() as u64;
            self.down_until_ms.store(until, Ordering::Relaxed);
        }
        let (allowed, ahead) = result?;
        Ok(Decision::from_offset(allowed, ahead, rate))
    }

    async fn call(
        &self,
        mut connection: ConnectionManager,
        key: &str,
        rate: Rate,
    ) -> Result<(bool, i64), RedisError> {
        let mut invocation = self.script.key(key);
        invocation.arg(rate.interval_us).arg(rate.tolerance_us);
        let answer: Result<(i64, i64), _> = match invocation.invoke_async(&mut connection).await {
            // The connection broke since the last check (a Redis restart, an idle timeout): the
            // manager has started a new one, which this check waits for once.
            Err(e) if e.is_io_error() && !e.is_timeout() => {
                invocation.invoke_async(&mut connection).await
            }
            answer => answer,
        };
        let (allowed, ahead) = answer.map_err(|e| RedisError::from_client(&e))?;
        Ok((allowed == 1, ahead))
    }

    fn connection(&self) -> Result<&ConnectionManager, RedisError> {
        let made = self.connection.get_or_init(|| {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(TIMEOUT))
                .set_response_timeout(Some(TIMEOUT))
                .set_number_of_retries(0);
            let target = self.target.as_ref().map_err(Clone::clone)?;
            target
                .client()
                .and_then(|client| client.get_connection_manager_lazy(config))
                .map_err(|e| e.to_string())
        });
        made.as_ref().map_err(|_| RedisError::Url)
    }

    fn since_epoch_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(url: &str) -> RedisStore {
        RedisStore::new(RedisTarget::parse(url))
    }

    #[tokio::test]
    async fn an_unparsable_url_answers_url() {
        let store = RedisStore::new(Err("bad".into()));
        let rate = Rate::new(1, Duration::from_secs(1), 1);
        assert!(matches!(store.check("k", rate).await, Err(RedisError::Url)));
    }

    #[tokio::test]
    async fn an_unreachable_redis_fails_fast_and_then_at_once() {
        // Port 1 on localhost refuses connections.
        let store = store("redis://127.0.0.1:1");
        let rate = Rate::new(1, Duration::from_secs(1), 1);
        let first = store.check("k", rate).await.unwrap_err();
        assert!(
            matches!(first, RedisError::Connect(_) | RedisError::Timeout(_)),
            "{first}"
        );
        let second = store.check("k", rate).await.unwrap_err();
        assert!(matches!(second, RedisError::Down), "{second}");
    }

    #[tokio::test]
    async fn a_hung_redis_times_out_once_then_fails_at_once() {
        // Accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        let store = store(&format!("redis://127.0.0.1:{port}"));
        let rate = Rate::new(1, Duration::from_secs(1), 1);
        let started = Instant::now();
        let first = store.check("k", rate).await.unwrap_err();
        assert!(matches!(first, RedisError::Timeout(_)), "{first}");
        assert!(started.elapsed() < TIMEOUT * 4, "{:?}", started.elapsed());
        let started = Instant::now();
        let second = store.check("k", rate).await.unwrap_err();
        assert!(matches!(second, RedisError::Down), "{second}");
        assert!(started.elapsed() < Duration::from_millis(50));
    }
}
