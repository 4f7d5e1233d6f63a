//! The gateway's section of the settings: `UPSTREAM_URL` (where the app listens),
//! `UPSTREAM_CONNECT_TIMEOUT_SECONDS`, `UPSTREAM_TIMEOUT_SECONDS`, `UPSTREAM_SIGNING_SECRET` and
//! `UPSTREAM_HEALTH_PATH`, plus the `[[routes]]` rules of `keel.toml`.

use std::time::Duration;

use axum::http::uri::{Authority, Scheme};
use axum::http::Uri;
use secrecy::{ExposeSecret, SecretString};

use super::rules::Rule;

/// The shortest signing secret accepted anywhere, and in production.
pub const MIN_SECRET_LEN: usize = 16;
pub const MIN_PRODUCTION_SECRET_LEN: usize = 32;

/// Where the app listens: an `http://` origin and an optional base path every forwarded path is
/// put under.
#[derive(Debug, Clone)]
pub struct UpstreamUrl {
    pub scheme: Scheme,
    pub authority: Authority,
    /// Empty, or `/prefix` without a trailing slash.
    pub base_path: String,
}

impl UpstreamUrl {
    pub fn parse(text: &str) -> Result<UpstreamUrl, String> {
        const SHAPE: &str = "must be an http:// URL of the app: a host, a port and an optional \
            path (https, credentials, a query or a fragment are not supported; Keel reaches the \
            app on a private network)";
        let uri: Uri = text.trim().parse().map_err(|_| SHAPE.to_string())?;
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(SHAPE.into());
        };
        if scheme != &Scheme::HTTP
            || authority.as_str().contains('@')
            || authority.host().is_empty()
            || uri.query().is_some()
            || text.contains('#')
        {
            return Err(SHAPE.into());
        }
        Ok(UpstreamUrl {
            scheme: scheme.clone(),
            authority: authority.clone(),
            base_path: uri.path().trim_end_matches('/').to_string(),
        })
    }
}

/// What the gateway is configured with. Without [`GatewaySettings::upstream`] there is no
/// gateway: a path no Keel route serves is 404.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub upstream: Option<UpstreamUrl>,
    /// How long opening a connection to the app may take (502 after).
    pub connect_timeout: Duration,
    /// How long the app may take to start its answer once the request is sent (504 after), and
    /// how long a client may pause while sending its body (408 after).
    pub timeout: Duration,
    /// Signs the identity headers (`x-keel-signature`) when set.
    pub signing_secret: Option<SecretString>,
    /// A path of the app asked by `/health/ready` when set.
    pub health_path: Option<String>,
    /// The `[[routes]]` rules, first match wins.
    pub rules: Vec<Rule>,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            upstream: None,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
            signing_secret: None,
            health_path: None,
            rules: Vec::new(),
        }
    }
}

/// The raw values of the gateway's variables.
#[derive(Debug, Default)]
pub struct RawGateway {
    pub url: Option<String>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub signing_secret: Option<SecretString>,
    pub health_path: Option<String>,
    /// Whether `UPSTREAM_CONNECT_TIMEOUT_SECONDS` or `UPSTREAM_TIMEOUT_SECONDS` was set.
    pub timeouts_set: [bool; 2],
}

impl GatewaySettings {
    /// Checks the raw values; each problem names its variable.
    pub fn parse(raw: RawGateway) -> (GatewaySettings, Vec<(&'static str, String)>) {
        let mut problems = Vec::new();
        let upstream = raw
            .url
            .as_deref()
            .and_then(|url| match UpstreamUrl::parse(url) {
                Ok(url) => Some(url),
                Err(message) => {
                    problems.push(("UPSTREAM_URL", message));
                    None
                }
            });
        let configured = raw.url.is_some();
        let only_with_url = |name: &'static str, set: bool, problems: &mut Vec<_>| {
            if set && !configured {
                problems.push((name, "is only used with UPSTREAM_URL".to_string()));
            }
        };
        only_with_url(
            "UPSTREAM_CONNECT_TIMEOUT_SECONDS",
            raw.timeouts_set[0],
            &mut problems,
        );
        only_with_url(
            "UPSTREAM_TIMEOUT_SECONDS",
            raw.timeouts_set[1],
            &mut problems,
        );
        only_with_url(
            "UPSTREAM_SIGNING_SECRET",
            raw.signing_secret.is_some(),
            &mut problems,
        );
        only_with_url(
            "UPSTREAM_HEALTH_PATH",
            raw.health_path.is_some(),
            &mut problems,
        );
        if let Some(secret) = &raw.signing_secret {
            if secret.expose_secret().chars().count() < MIN_SECRET_LEN {
                problems.push((
                    "UPSTREAM_SIGNING_SECRET",
                    format!("must be at least {MIN_SECRET_LEN} characters"),
                ));
            }
        }
        let health_path = raw.health_path.filter(|path| {
            let ok = path.starts_with('/')
                && !path.contains(|c: char| c.is_whitespace() || c.is_control() || c == '#')
                && path.parse::<axum::http::uri::PathAndQuery>().is_ok();
            if !ok {
                problems.push((
                    "UPSTREAM_HEALTH_PATH",
                    "must be a path of the app starting with / (like /healthz)".to_string(),
                ));
            }
            ok
        });
        let settings = GatewaySettings {
            upstream,
            connect_timeout: raw.connect_timeout,
            timeout: raw.timeout,
            signing_secret: raw.signing_secret,
            health_path,
            rules: Vec::new(),
        };
        (settings, problems)
    }

    /// Production rules: a signing secret long enough to resist guessing.
    pub fn production_problems(&self) -> Vec<(&'static str, String)> {
        match &self.signing_secret {
            Some(s) if s.expose_secret().chars().count() < MIN_PRODUCTION_SECRET_LEN => vec![(
                "UPSTREAM_SIGNING_SECRET",
                format!("must be at least {MIN_PRODUCTION_SECRET_LEN} characters in production"),
            )],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(url: Option<&str>) -> RawGateway {
        RawGateway {
            url: url.map(str::to_string),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
            ..Default::default()
        }
    }

    #[test]
    fn urls_are_http_origins_with_an_optional_base_path() {
        let url = UpstreamUrl::parse("http://app.internal:3000").unwrap();
        assert_eq!(url.authority.as_str(), "app.internal:3000");
        assert_eq!(url.base_path, "");
        let url = UpstreamUrl::parse("http://10.0.0.2:8000/api/").unwrap();
        assert_eq!(url.base_path, "/api");
        for bad in [
            "https://app:3000",
            "app:3000",
            "http://user:pw@app:3000",
            "http://app:3000/?a=1",
            "http://app:3000/#x",
            "/just/a/path",
            "",
        ] {
            assert!(UpstreamUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_problem_names_its_variable() {
        let (_, problems) = GatewaySettings::parse(raw(Some("ftp://app")));
        assert_eq!(problems[0].0, "UPSTREAM_URL");
        assert!(!problems[0].1.contains("ftp"), "{:?}", problems[0]);

        let mut r = raw(None);
        r.signing_secret = Some(SecretString::from("short-secret-value"));
        r.health_path = Some("/healthz".into());
        r.timeouts_set = [true, true];
        let (_, problems) = GatewaySettings::parse(r);
        let names: Vec<&str> = problems.iter().map(|p| p.0).collect();
        assert_eq!(
            names,
            [
                "UPSTREAM_CONNECT_TIMEOUT_SECONDS",
                "UPSTREAM_TIMEOUT_SECONDS",
                "UPSTREAM_SIGNING_SECRET",
                "UPSTREAM_HEALTH_PATH"
            ]
        );

        let mut r = raw(Some("http://app:3000"));
        r.signing_secret = Some(SecretString::from("tiny"));
        r.health_path = Some("healthz".into());
        let (settings, problems) = GatewaySettings::parse(r);
        let names: Vec<&str> = problems.iter().map(|p| p.0).collect();
        assert_eq!(names, ["UPSTREAM_SIGNING_SECRET", "UPSTREAM_HEALTH_PATH"]);
        assert!(problems.iter().all(|p| !p.1.contains("tiny")));
        assert_eq!(
            settings.production_problems()[0].0,
            "UPSTREAM_SIGNING_SECRET"
        );
    }
}
