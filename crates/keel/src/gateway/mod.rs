//! The gateway: Keel in front of the app. With `UPSTREAM_URL` set, a request no Keel route serves
//! goes to the app under the first `[[routes]]` rule that matches it (by default a token is
//! required), with the caller's identity in headers only Keel can set. The HTTP side, which
//! admits requests and answers failures, is `http/gateway.rs`; this module holds the settings,
//! the rules, the headers, the signature, the connection to the app and the metrics.

pub mod answer;
mod failure;
pub mod headers;
mod link;
pub mod metrics;
mod pool;
pub mod rules;
pub mod settings;
pub mod signature;
pub mod upload;
pub mod upstream;

use std::time::{Duration, Instant};

use axum::http::uri::PathAndQuery;
use axum::http::{header, Method, Request, Response, Uri};
use secrecy::ExposeSecret;

pub use answer::Answer;
pub use failure::Failure;
pub use rules::{AuthMode, RouteDecl, Rule};
pub use settings::{GatewaySettings, RawGateway, UpstreamUrl};
pub use upload::{Upload, UploadState};

use metrics::RuleMetrics;
use signature::Signer;
use upstream::Upstream;

/// How long the readiness check waits for the app.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// The gateway of a process that serves the API with `UPSTREAM_URL` set.
#[derive(Debug)]
pub struct Gateway {
    rules: Vec<Rule>,
    fallback: Rule,
    /// One per rule.
    metrics: Vec<RuleMetrics>,
    fallback_metrics: RuleMetrics,
    app: Upstream,
    signer: Option<Signer>,
    upstream: UpstreamUrl,
    /// The app's `Host`, made once rather than for every request.
    host: axum::http::HeaderValue,
    timeout: Duration,
    health_path: Option<String>,
}

impl Gateway {
    /// The gateway `settings` describe; `None` without `UPSTREAM_URL`.
    pub fn new(settings: &GatewaySettings) -> Option<Gateway> {
        let upstream = settings.upstream.clone()?;
        let host = axum::http::HeaderValue::from_str(upstream.authority.as_str()).ok()?;
        let fallback = Rule::fallback();
        let metrics = settings
            .rules
            .iter()
            .map(|rule| RuleMetrics::new(rule.label.clone()))
            .collect();
        Some(Gateway {
            rules: settings.rules.clone(),
            fallback_metrics: RuleMetrics::new(fallback.label.clone()),
            fallback,
            metrics,
            app: Upstream::new(target(&upstream), settings.connect_timeout),
            signer: settings
                .signing_secret
                .as_ref()
                .map(|s| Signer::new(s.expose_secret())),
            upstream,
            host,
            timeout: settings.timeout,
            health_path: settings.health_path.clone(),
        })
    }

    /// The rule a request falls under (the defaults when none matches) and its metrics.
    pub fn route(&self, method: &Method, path: &str) -> (&Rule, &RuleMetrics) {
        rules::find(&self.rules, method, path)
            .and_then(|i| Some((self.rules.get(i)?, self.metrics.get(i)?)))
            .unwrap_or((&self.fallback, &self.fallback_metrics))
    }

    /// The `Host` header of requests to the app.
    pub fn host(&self) -> axum::http::HeaderValue {
        self.host.clone()
    }

    pub fn signer(&self) -> Option<&Signer> {
        self.signer.as_ref()
    }

    /// How long the app may take to start an answer, and a client to pause in its body.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The request target at the app for a request to `original`: its path and query under the
    /// base path (origin-form, as sent on the connection).
    pub fn uri(&self, original: &Uri) -> Option<Uri> {
        let path_and_query = match original.path_and_query() {
            None => PathAndQuery::from_static("/"),
            Some(pq) if self.upstream.base_path.is_empty() => pq.clone(),
            Some(pq) => format!("{}{}", self.upstream.base_path, pq.as_str())
                .parse()
                .ok()?,
        };
        Some(Uri::from(path_and_query))
    }

    /// Sends a prepared request to the app; see [`Upstream::send`].
    pub async fn send(
        &self,
        req: Request<Upload>,
        upload: Option<std::sync::Arc<UploadState>>,
    ) -> Result<Response<Answer>, Failure> {
        self.app.send(req, upload, self.timeout).await
    }

    /// Whether the app answers its health path (`UPSTREAM_HEALTH_PATH`) with 2xx within a few
    /// seconds, and how long it took; `None` when no health path is configured.
    pub async fn health(&self) -> Option<Result<Duration, String>> {
        let path = self.health_path.as_deref()?;
        let started = Instant::now();
        let uri = match path.parse::<Uri>().ok().and_then(|u| self.uri(&u)) {
            Some(uri) => uri,
            None => return Some(Err("the health path is not a valid path".into())),
        };
        let mut req = Request::new(Upload::empty());
        *req.uri_mut() = uri;
        req.headers_mut().insert(header::HOST, self.host());
        let answer = self.app.send(req, None, HEALTH_TIMEOUT).await;
        Some(match answer {
            Ok(response) if response.status().is_success() => Ok(started.elapsed()),
            Ok(response) => Err(format!("the app answered {}", response.status().as_u16())),
            Err(Failure::Connect) => Err("the app refused or is unreachable".into()),
            Err(Failure::Timeout) => Err(format!(
                "the app did not answer within {} s",
                HEALTH_TIMEOUT.as_secs()
            )),
            Err(_) => Err("the connection to the app failed".into()),
        })
    }
}

/// `host:port` of the app (port 80 when the URL names none).
fn target(upstream: &UpstreamUrl) -> String {
    let authority = &upstream.authority;
    match authority.port_u16() {
        Some(port) => format!("{}:{port}", authority.host()),
        None => format!("{}:80", authority.host()),
    }
}
