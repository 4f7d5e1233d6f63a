//! The Redis backend: one Lua script computes GCRA atomically on the Redis server, in one round
//! trip, so every process sharing the Redis enforces one limit together.
//!
//! Time is the Redis server's (`TIME`), not the caller's: processes whose clocks disagree still
//! agree on every key. The script is sent once per Redis start (`EVALSHA`, then `EVAL` on
//! `NOSCRIPT`); each key expires (`PX`) when its TAT passes, so idle keys cost no memory.
//!
//! The client is deliberately small: RESP over a pool of plain connections, each used by one
//! request at a time. Every check has a short deadline; a connection that fails or times out is
//! dropped; after a failed connect or a timeout the backend is treated as down for a second, so
//! requests are not each held up by a Redis that is not there.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::gcra::{Decision, Rate};

/// Deadline of one check, connecting included.
pub const TIMEOUT: Duration = Duration::from_millis(250);
/// After a failed connect, checks fail at once for this long.
const DOWN_FOR: Duration = Duration::from_secs(1);
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 64;
const MAX_LINE: usize = 64 * 1024;

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
    #[error("REDIS_URL is not a redis:// URL")]
    Url,
    #[error("Redis was unreachable moments ago; not trying again yet")]
    Down,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connecting: {0}")]
    Connect(std::io::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("Redis answered: {0}")]
    Reply(String),
}

/// Where Redis is: `redis://[[user]:password@]host[:port][/db]`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub db: u32,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "redis://{}:{}/{}", self.host, self.port, self.db)
    }
}

impl RedisTarget {
    pub fn parse(url: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("must be redis://[[user]:password@]host[:port][/db] ({why})");
        let rest = url.strip_prefix("redis://").ok_or_else(|| {
            if url.starts_with("rediss://") {
                bad("TLS (rediss://) is not supported by the rate limiter; use a TLS tunnel")
            } else {
                bad("the scheme is not redis://")
            }
        })?;
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, host_port) = match authority.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, authority),
        };
        let port_of = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| bad("the port is not a number"))
        };
        let (host, port) = match host_port.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((h, "")) => (h, 6379),
                Some((h, after)) => match after.strip_prefix(':') {
                    Some(p) => (h, port_of(p)?),
                    None => return Err(bad("the host is malformed")),
                },
                None => return Err(bad("the host is malformed")),
            },
            None => match host_port.rsplit_once(':') {
                Some((h, p)) => (h, port_of(p)?),
                None => (host_port, 6379),
            },
        };
        if host.is_empty() {
            return Err(bad("the host is missing"));
        }
        let (user, password) = match credentials {
            None => (None, None),
            Some(c) => match c.split_once(':') {
                Some((u, p)) => (
                    Some(crate::percent::decode(u)).filter(|u| !u.is_empty()),
                    Some(crate::percent::decode(p)),
                ),
                None => (None, Some(crate::percent::decode(c))),
            },
        };
        let db = match path.trim_matches('/') {
            "" => 0,
            n => n.parse().map_err(|_| bad("the database is not a number"))?,
        };
        Ok(RedisTarget {
            host: host.to_string(),
            port,
            user,
            password: password.filter(|p| !p.is_empty()),
            db,
        })
    }
}

#[derive(Debug)]
pub struct RedisStore {
    target: Result<RedisTarget, String>,
    sha: String,
    idle: Mutex<Vec<Conn>>,
    epoch: Instant,
    /// Milliseconds after `epoch` until which Redis counts as down.
    down_until_ms: AtomicU64,
}

impl RedisStore {
    pub fn new(url: &str) -> Self {
        let digest =
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, SCRIPT.as_bytes());
        let sha = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        RedisStore {
            target: RedisTarget::parse(url),
            sha,
            idle: Mutex::new(Vec::new()),
            epoch: Instant::now(),
            down_until_ms: AtomicU64::new(0),
        }
    }

    /// One request for `key` (without the prefix) against Redis, within [`TIMEOUT`].
    pub async fn check(&self, key: &str, rate: Rate) -> Result<Decision, RedisError> {
        let target = self.target.as_ref().map_err(|_| RedisError::Url)?;
        if self.since_epoch_ms() < self.down_until_ms.load(Ordering::Relaxed) {
            return Err(RedisError::Down);
        }
        let key = format!("{KEY_PREFIX}{key}");
        let result = tokio::time::timeout(TIMEOUT, self.call(target, &key, rate))
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
        target: &RedisTarget,
        key: &str,
        rate: Rate,
    ) -> Result<(bool, i64), RedisError> {
        if let Some(mut conn) = self.take_idle() {
            // A pooled connection may have been closed by the server since (restart, idle
            // timeout): an I/O failure there is retried once on a fresh connection.
            match self.script(&mut conn, key, rate).await {
                Ok(answer) => {
                    self.put_idle(conn);
                    return Ok(answer);
                }
                Err(RedisError::Io(_)) => {}
                // The connection may be out of step with its replies: it is dropped.
                Err(e) => return Err(e),
            }
        }
        let mut conn = Conn::open(target).await?;
        let answer = self.script(&mut conn, key, rate).await?;
        self.put_idle(conn);
        Ok(answer)
    }

    async fn script(
        &self,
        conn: &mut Conn,
        key: &str,
        rate: Rate,
    ) -> Result<(bool, i64), RedisError> {
        let (t, tau) = (rate.interval_us.to_string(), rate.tolerance_us.to_string());
        conn.send(&["EVALSHA", &self.sha, "1", key, &t, &tau])
            .await?;
        let reply = match conn.read().await? {
            Reply::Error(e) if e.starts_with("NOSCRIPT") => {
                conn.send(&["EVAL", SCRIPT, "1", key, &t, &tau]).await?;
                conn.read().await?
            }
            reply => reply,
        };
        match reply {
            Reply::Array(items) => match items.as_slice() {
                [Reply::Integer(allowed), Reply::Integer(ahead)] => Ok((*allowed == 1, *ahead)),
                _ => Err(RedisError::Reply("an unexpected array".into())),
            },
            Reply::Error(e) => Err(RedisError::Reply(e)),
            _ => Err(RedisError::Reply("an unexpected reply".into())),
        }
    }

    fn since_epoch_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn take_idle(&self) -> Option<Conn> {
        self.idle.lock().ok()?.pop()
    }

    fn put_idle(&self, conn: Conn) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
    }
}

#[derive(Debug)]
struct Conn {
    stream: BufReader<TcpStream>,
}

#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

impl Conn {
    async fn open(target: &RedisTarget) -> Result<Conn, RedisError> {
        let stream = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(RedisError::Connect)?;
        let _ = stream.set_nodelay(true);
        let mut conn = Conn {
            stream: BufReader::new(stream),
        };
        if let Some(password) = &target.password {
            match &target.user {
                Some(user) => conn.send(&["AUTH", user, password]).await?,
                None => conn.send(&["AUTH", password]).await?,
            }
            conn.expect_ok().await?;
        }
        if target.db != 0 {
            conn.send(&["SELECT", &target.db.to_string()]).await?;
            conn.expect_ok().await?;
        }
        Ok(conn)
    }

    async fn expect_ok(&mut self) -> Result<(), RedisError> {
        match self.read().await? {
            Reply::Simple(s) if s == "OK" => Ok(()),
            Reply::Error(e) => Err(RedisError::Reply(e)),
            _ => Err(RedisError::Reply("an unexpected reply".into())),
        }
    }

    async fn send(&mut self, parts: &[&str]) -> Result<(), RedisError> {
        let mut out = Vec::with_capacity(64 + parts.iter().map(|p| p.len() + 16).sum::<usize>());
        out.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
        for part in parts {
            out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.stream.get_mut().write_all(&out).await?;
        Ok(())
    }

    async fn line(&mut self) -> Result<String, RedisError> {
        let mut line = Vec::new();
        let n = (&mut self.stream)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Err(RedisError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        if !line.ends_with(b"\r\n") {
            return Err(RedisError::Reply("a malformed line".into()));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|_| RedisError::Reply("a line that is not UTF-8".into()))
    }

    /// One reply; arrays may hold scalars only (all this client asks for).
    async fn read(&mut self) -> Result<Reply, RedisError> {
        let line = self.line().await?;
        match parse_scalar(&line)? {
            Head::Reply(reply) => Ok(reply),
            Head::Bulk(len) => self.bulk(len).await,
            Head::Array(len) => {
                let mut items = Vec::with_capacity(len.min(16));
                for _ in 0..len {
                    let line = self.line().await?;
                    items.push(match parse_scalar(&line)? {
                        Head::Reply(reply) => reply,
                        Head::Bulk(len) => self.bulk(len).await?,
                        Head::Array(_) => return Err(RedisError::Reply("a nested array".into())),
                    });
                }
                Ok(Reply::Array(items))
            }
        }
    }

    async fn bulk(&mut self, len: Option<usize>) -> Result<Reply, RedisError> {
        let Some(len) = len else {
            return Ok(Reply::Bulk(None));
        };
        if len > MAX_LINE {
            return Err(RedisError::Reply("an oversized bulk string".into()));
        }
        let mut data = vec![0; len + 2];
        self.stream.read_exact(&mut data).await?;
        data.truncate(len);
        Ok(Reply::Bulk(Some(data)))
    }
}

enum Head {
    Reply(Reply),
    Bulk(Option<usize>),
    Array(usize),
}

fn parse_scalar(line: &str) -> Result<Head, RedisError> {
    let malformed = || RedisError::Reply(format!("a malformed reply {:?}", truncate(line)));
    let (kind, rest) = line.split_at_checked(1).ok_or_else(malformed)?;
    Ok(match kind {
        "+" => Head::Reply(Reply::Simple(rest.to_string())),
        "-" => Head::Reply(Reply::Error(rest.to_string())),
        ":" => Head::Reply(Reply::Integer(rest.parse().map_err(|_| malformed())?)),
        "$" if rest == "-1" => Head::Bulk(None),
        "$" => Head::Bulk(Some(rest.parse().map_err(|_| malformed())?)),
        "*" if rest == "-1" => Head::Array(0),
        "*" => Head::Array(rest.parse().map_err(|_| malformed())?),
        _ => return Err(malformed()),
    })
}

fn truncate(line: &str) -> &str {
    let mut end = line.len().min(64);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let t = RedisTarget::parse("redis://:p%40ss@cache:6380/2").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.db), ("cache", 6380, 2));
        assert_eq!(t.password.as_deref(), Some("p@ss"));
        assert!(t.user.is_none());
        let t = RedisTarget::parse("redis://keel:pw@127.0.0.1").unwrap();
        assert_eq!((t.user.as_deref(), t.port, t.db), (Some("keel"), 6379, 0));
        let t = RedisTarget::parse("redis://[::1]:7000").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 7000));
        let t = RedisTarget::parse("redis://[::1]").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 6379));
        assert!(RedisTarget::parse("rediss://x")
            .unwrap_err()
            .contains("TLS"));
        assert!(RedisTarget::parse("http://x").is_err());
        assert!(RedisTarget::parse("redis://h:port").is_err());
        assert!(RedisTarget::parse("redis://h/x").is_err());
        assert!(!format!("{t:?}").contains("pw"));
    }

    #[test]
    fn parses_replies() {
        assert!(matches!(
            parse_scalar(":42"),
            Ok(Head::Reply(Reply::Integer(42)))
        ));
        assert!(
            matches!(parse_scalar("-NOSCRIPT x"), Ok(Head::Reply(Reply::Error(e))) if e.starts_with("NOSCRIPT"))
        );
        assert!(matches!(parse_scalar("$-1"), Ok(Head::Bulk(None))));
        assert!(matches!(parse_scalar("*2"), Ok(Head::Array(2))));
        assert!(parse_scalar("").is_err());
        assert!(parse_scalar("?").is_err());
    }

    #[test]
    fn the_script_digest_is_sha1_hex() {
        let store = RedisStore::new("redis://127.0.0.1:1");
        assert_eq!(store.sha.len(), 40);
    }

    #[tokio::test]
    async fn an_unreachable_redis_fails_fast_and_then_at_once() {
        // Port 1 on localhost refuses connections.
        let store = RedisStore::new("redis://127.0.0.1:1");
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
        let store = RedisStore::new(&format!("redis://127.0.0.1:{port}"));
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
