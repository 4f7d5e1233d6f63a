//! Where Redis is, read once for every part of Keel that talks to it (the rate limiter and the
//! `/health` probe): `REDIS_URL`, `redis://` or `rediss://` (TLS), with percent-encoded
//! credentials and bracketed IPv6 hosts, and an optional CA certificate (`REDIS_CA_FILE`) for a
//! TLS server whose certificate is not signed by a public authority.

use std::path::Path;

use redis::{ConnectionAddr, IntoConnectionInfo};

/// A parsed `REDIS_URL` (and CA), ready to make clients; its `Debug` shows no credentials.
#[derive(Clone)]
pub struct RedisTarget {
    info: redis::ConnectionInfo,
    ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (scheme, host, port) = match self.info.addr() {
            ConnectionAddr::Tcp(host, port) => ("redis", host.as_str(), *port),
            ConnectionAddr::TcpTls { host, port, .. } => ("rediss", host.as_str(), *port),
            _ => ("unix", "", 0),
        };
        let db = self.info.redis_settings().db();
        if host.contains(':') {
            write!(f, "{scheme}://[{host}]:{port}/{db}")
        } else {
            write!(f, "{scheme}://{host}:{port}/{db}")
        }
    }
}

const SHAPE: &str = "must be redis:// or rediss://[[user]:password@]host[:port][/db]";

impl RedisTarget {
    /// `redis://` or `rediss://`, user and password percent-decoded, `[::1]` for IPv6 hosts.
    pub fn parse(url: &str) -> Result<RedisTarget, String> {
        let bad = |why: &str| format!("{SHAPE} ({why})");
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(bad("the scheme is neither redis:// nor rediss://"));
        }
        if url.contains('#') {
            return Err(bad("a fragment such as #insecure is not accepted"));
        }
        // The crate's own error text may quote the URL, password included: it is not shown.
        let info = url
            .into_connection_info()
            .map_err(|_| bad("the host, port or database is malformed"))?;
        let info = info.clone().set_redis_settings(
            info.redis_settings()
                .clone()
                .set_lib_name("keel", env!("CARGO_PKG_VERSION")),
        );
        Ok(RedisTarget { info, ca_pem: None })
    }

    /// This target, trusting only the CA certificate(s) in the PEM file at `path` for TLS.
    pub fn with_ca_file(self, path: &Path) -> Result<RedisTarget, String> {
        let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        self.with_ca_pem(pem)
            .map_err(|why| format!("{}: {why}", path.display()))
    }

    /// This target, trusting only the CA certificate(s) in `pem` for TLS.
    pub fn with_ca_pem(mut self, pem: Vec<u8>) -> Result<RedisTarget, String> {
        if !self.is_tls() {
            return Err("a CA certificate is only used with rediss:// (TLS)".into());
        }
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err("holds no PEM certificate".into());
        }
        self.ca_pem = Some(pem);
        Ok(self)
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.info.addr(), ConnectionAddr::TcpTls { .. })
    }

    /// A client for this target (it connects only when asked to).
    pub fn client(&self) -> Result<redis::Client, redis::RedisError> {
        match &self.ca_pem {
            Some(pem) => redis::Client::build_with_tls(
                self.info.clone(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => redis::Client::open(self.info.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RedisTarget;

    #[test]
    fn parses_urls() {
        let t = RedisTarget::parse("redis://:p%40ss%3A%2F@cache:6380/2").unwrap();
        assert_eq!(format!("{t:?}"), "redis://cache:6380/2");
        assert_eq!(t.info.redis_settings().password(), Some("p@ss:/"));
        assert_eq!(t.info.redis_settings().username(), None);
        let t = RedisTarget::parse("redis://keel:pw@127.0.0.1").unwrap();
        assert_eq!(t.info.redis_settings().username(), Some("keel"));
        assert_eq!(format!("{t:?}"), "redis://127.0.0.1:6379/0");
        assert!(!format!("{t:?}").contains("pw"));
        let t = RedisTarget::parse("redis://[::1]:7000").unwrap();
        assert_eq!(format!("{t:?}"), "redis://[::1]:7000/0");
        let t = RedisTarget::parse("rediss://u:pw@[::1]").unwrap();
        assert!(t.is_tls());
        assert_eq!(format!("{t:?}"), "rediss://[::1]:6379/0");
    }

    #[test]
    fn refuses_what_is_not_a_redis_url_without_echoing_it() {
        for url in [
            "http://x",
            "redis://h:port",
            "redis://:secret@h/x",
            "rediss://h#insecure",
            "unix:///tmp/redis.sock",
        ] {
            let error = RedisTarget::parse(url).unwrap_err();
            assert!(error.starts_with("must be redis://"), "{url}: {error}");
            assert!(!error.contains("secret"), "{error}");
        }
    }

    #[test]
    fn a_ca_is_for_tls_and_must_hold_a_certificate() {
        let plain = RedisTarget::parse("redis://h").unwrap();
        assert!(plain
            .with_ca_pem(b"-----BEGIN CERTIFICATE-----".to_vec())
            .is_err());
        let tls = RedisTarget::parse("rediss://h").unwrap();
        assert!(tls.clone().with_ca_pem(b"nothing".to_vec()).is_err());
        assert!(tls
            .with_ca_pem(b"-----BEGIN CERTIFICATE-----\n".to_vec())
            .is_ok());
    }
}
