//! Reachability checks of dependencies that have no pool of their own here (Redis).

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("invalid REDIS_URL")]
    Url,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("unexpected reply")]
    Reply,
}

/// Sends `PING` (after `AUTH` when the URL carries a password) and waits for `+PONG`.
pub async fn redis_ping(url: &str, timeout: Duration) -> Result<Duration, ProbeError> {
    let started = Instant::now();
    let target = RedisTarget::parse(url).ok_or(ProbeError::Url)?;
    let exchange = async {
        let stream = TcpStream::connect((target.host.as_str(), target.port)).await?;
        let mut stream = BufReader::new(stream);
        if let Some(password) = &target.password {
            let command = match &target.user {
                Some(user) => resp(&["AUTH", user, password]),
                None => resp(&["AUTH", password]),
            };
            stream.get_mut().write_all(&command).await?;
            expect_line(&mut stream, "+OK").await?;
        }
        stream.get_mut().write_all(&resp(&["PING"])).await?;
        expect_line(&mut stream, "+PONG").await
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result.map(|()| started.elapsed()),
        Err(_) => Err(ProbeError::Timeout(timeout)),
    }
}

async fn expect_line(stream: &mut BufReader<TcpStream>, want: &str) -> Result<(), ProbeError> {
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    if line.trim_end() == want {
        Ok(())
    } else {
        Err(ProbeError::Reply)
    }
}

fn resp(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        out.extend_from_slice(format!("${}\r\n{part}\r\n", part.len()).as_bytes());
    }
    out
}

struct RedisTarget {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
}

impl RedisTarget {
    fn parse(url: &str) -> Option<Self> {
        let rest = url.strip_prefix("redis://")?;
        let authority = rest.split('/').next()?;
        let (credentials, host_port) = match authority.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, authority),
        };
        let (host, port) = match host_port.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (host_port, 6379),
        };
        let (user, password) = match credentials.map(|c| c.split_once(':')) {
            Some(Some((u, p))) => ((!u.is_empty()).then(|| u.to_string()), Some(p.to_string())),
            Some(None) => (None, credentials.map(str::to_string)),
            None => (None, None),
        };
        Some(Self {
            host: host.trim_matches(['[', ']']).to_string(),
            port,
            user,
            password: password.filter(|p| !p.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::RedisTarget;

    #[test]
    fn parses_urls() {
        let t = RedisTarget::parse("redis://:pw@cache:6380/0").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("cache", 6380));
        assert_eq!(t.password.as_deref(), Some("pw"));
        assert!(t.user.is_none());
        let t = RedisTarget::parse("redis://127.0.0.1").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 6379));
        assert!(RedisTarget::parse("http://x").is_none());
    }
}
