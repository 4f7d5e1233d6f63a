//! HTTP job kinds: jobs the app runs behind a URL. `[jobs.http."KIND"]` in `keel.toml` names the
//! URL (absolute, or a path joined to `APP_URL`); the worker POSTs each attempt there, signed the
//! Standard Webhooks way, and reads the answer as [`crate::outbound::deliver`] classifies it.
//! The URL only ever comes from configuration, never from a job's arguments.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::handler::{JobContext, JobFailure, Registry};
use super::spec::JobSpec;
use super::{is_valid_name, QueueSettings, DEFAULT_QUEUE};
use crate::clock::Clock;
use crate::crypto::standard_webhooks::WebhookSecret;
use crate::outbound::{self, AppSettings, Message, Outcome};

/// How long a delivery may take when its declaration does not say.
pub const DEFAULT_HTTP_TIMEOUT_SECONDS: u64 = 30;

/// How much longer than its delivery an HTTP job may run by default: the delivery's own timeout
/// ends it first, with the clearer error.
const JOB_TIMEOUT_MARGIN: Duration = Duration::from_secs(5);

/// The `[jobs]` table of `keel.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsDecl {
    /// Kind → where the app runs it.
    #[serde(default)]
    pub http: BTreeMap<String, HttpKindDecl>,
}

/// One `[jobs.http."KIND"]` table, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpKindDecl {
    /// An absolute http(s) URL.
    pub url: Option<String>,
    /// A path joined to `APP_URL`.
    pub path: Option<String>,
    /// Seconds one delivery may take; below the job lease.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// The queue jobs of this kind go to when the enqueuer names none.
    pub queue: Option<String>,
    /// Attempts when the enqueuer sets none.
    pub max_attempts: Option<i32>,
}

fn default_timeout() -> u64 {
    DEFAULT_HTTP_TIMEOUT_SECONDS
}

/// A declared HTTP kind, checked and resolved to its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpKind {
    pub url: String,
    pub timeout: Duration,
    pub queue: Option<String>,
    pub max_attempts: Option<i32>,
}

/// Checks every declaration against the rest of the settings; returns the kinds that passed and
/// one message per problem.
pub fn resolve(
    decls: &BTreeMap<String, HttpKindDecl>,
    app: &AppSettings,
    lease: Duration,
    queues: &BTreeMap<String, QueueSettings>,
) -> (BTreeMap<String, HttpKind>, Vec<String>) {
    let mut kinds = BTreeMap::new();
    let mut problems = Vec::new();
    for (kind, decl) in decls {
        let before = problems.len();
        let mut problem = |message: String| problems.push(format!("jobs.http.{kind:?}: {message}"));
        if !is_valid_name(kind) {
            problem("the kind must be 1 to 100 characters of A-Z a-z 0-9 . _ : -".into());
        }
        let url = match (&decl.url, &decl.path) {
            (Some(url), None) => Some(url.clone()),
            (None, Some(path)) if !path.starts_with('/') => {
                problem("path must start with /".into());
                None
            }
            (None, Some(path)) => match &app.url {
                Some(base) => Some(format!("{}{path}", base.trim_end_matches('/'))),
                None => {
                    problem("path needs APP_URL (or give an absolute url)".into());
                    None
                }
            },
            _ => {
                problem("give exactly one of url and path".into());
                None
            }
        };
        if let Some(url) = &url {
            if !is_http_url(url) {
                problem("url must be an absolute http(s) URL".into());
            }
        }
        if app.webhook_secrets.is_empty() {
            problem("needs APP_WEBHOOK_SECRET (every delivery is signed)".into());
        }
        let timeout = Duration::from_secs(decl.timeout);
        if timeout.is_zero() || timeout >= lease {
            problem(format!(
                "timeout must be from 1 to {} s (below JOB_LEASE_SECONDS)",
                lease.as_secs().saturating_sub(1)
            ));
        }
        if let Some(queue) = &decl.queue {
            if queue != DEFAULT_QUEUE && !queues.contains_key(queue) {
                problem(format!(
                    "queue {queue:?} is not served by any worker (declare [queues.{queue}])"
                ));
            }
        }
        if decl.max_attempts.is_some_and(|n| !(1..=1000).contains(&n)) {
            problem("max_attempts must be from 1 to 1000".into());
        }
        if let (Some(url), true) = (url, problems.len() == before) {
            let declared = HttpKind {
                url,
                timeout,
                queue: decl.queue.clone(),
                max_attempts: decl.max_attempts,
            };
            kinds.insert(kind.clone(), declared);
        }
    }
    (kinds, problems)
}

fn is_http_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

/// What enqueueing a job of a declared kind fills in when the enqueuer did not.
#[derive(Debug, Clone, Default)]
pub struct KindDefaults {
    http: Arc<BTreeMap<String, HttpKind>>,
}

impl KindDefaults {
    pub fn new(http: BTreeMap<String, HttpKind>) -> Self {
        Self {
            http: Arc::new(http),
        }
    }

    /// `spec` with its kind's queue, attempts and timeout where it sets none.
    pub fn apply(&self, mut spec: JobSpec) -> JobSpec {
        if let Some(kind) = self.http.get(&spec.kind) {
            if spec.queue.is_none() {
                spec.queue.clone_from(&kind.queue);
            }
            if spec.max_attempts.is_none() {
                spec.max_attempts = kind.max_attempts;
            }
            if spec.timeout_seconds.is_none() {
                spec.timeout_seconds = Some((kind.timeout + JOB_TIMEOUT_MARGIN).as_secs());
            }
        }
        spec
    }
}

/// The webhook id of every attempt of job `id`: the same on each, so the app can drop repeats.
pub fn webhook_id(job: i64) -> String {
    format!("job_{job}")
}

/// Registers a handler for each HTTP kind that delivers the job to its URL.
pub fn register(
    registry: &mut Registry,
    kinds: &BTreeMap<String, HttpKind>,
    secrets: &[WebhookSecret],
    clock: &Clock,
) {
    let client = outbound::client();
    let secrets: Arc<[WebhookSecret]> = secrets.into();
    for (name, kind) in kinds {
        let target = Arc::new(Target {
            url: kind.url.clone(),
            timeout: kind.timeout,
            secrets: secrets.clone(),
            client: client.clone(),
            clock: clock.clone(),
        });
        registry.register_fn(name, move |ctx, args| {
            let target = target.clone();
            async move { target.deliver(ctx, args).await }
        });
    }
}

struct Target {
    url: String,
    timeout: Duration,
    secrets: Arc<[WebhookSecret]>,
    client: reqwest::Client,
    clock: Clock,
}

impl Target {
    async fn deliver(&self, ctx: JobContext, args: serde_json::Value) -> Result<(), JobFailure> {
        let body = serde_json::json!({
            "id": ctx.id,
            "kind": ctx.kind,
            "args": args,
            "attempt": ctx.attempt,
            "max_attempts": ctx.max_attempts,
            "queue": ctx.queue,
            "enqueued_at": ctx.enqueued_at,
        });
        let body = serde_json::to_vec(&body)
            .map_err(|e| JobFailure::permanent(format!("cannot encode the job: {e}")))?;
        let id = webhook_id(ctx.id);
        let message = Message {
            url: &self.url,
            id: &id,
            body: &body,
            timeout: self.timeout,
        };
        match outbound::deliver(&self.client, &self.secrets, message, self.clock.now()).await {
            Outcome::Delivered { .. } => Ok(()),
            Outcome::Retry {
                error,
                retry_after: Some(wait),
            } => Err(JobFailure::retry_after(error, wait)),
            Outcome::Retry { error, .. } => Err(JobFailure::retry(error)),
            Outcome::Refused { error } => Err(JobFailure::permanent(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(toml_text: &str) -> BTreeMap<String, HttpKindDecl> {
        let jobs: JobsDecl = toml::from_str(toml_text).unwrap();
        jobs.http
    }

    fn app(url: Option<&str>, secret: bool) -> AppSettings {
        AppSettings::parse(
            url.map(Into::into),
            None,
            secret.then_some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        )
        .0
    }

    #[test]
    fn a_path_joins_app_url_and_defaults_fill_in() {
        let decls = decl(
            "[http.\"app.welcome\"]\npath = \"/keel/jobs/welcome\"\nqueue = \"mail\"\n\
             [http.\"app.other\"]\nurl = \"https://other.example/run\"\ntimeout = 5\n",
        );
        let queues = BTreeMap::from([("mail".to_string(), QueueSettings::default())]);
        let (kinds, problems) = resolve(
            &decls,
            &app(Some("http://app:3000/"), true),
            Duration::from_secs(60),
            &queues,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            kinds["app.welcome"].url,
            "http://app:3000/keel/jobs/welcome"
        );
        assert_eq!(kinds["app.welcome"].timeout, Duration::from_secs(30));
        let defaults = KindDefaults::new(kinds);
        let spec = defaults.apply(JobSpec::new("app.welcome", serde_json::json!({})));
        assert_eq!(spec.queue.as_deref(), Some("mail"));
        assert_eq!(spec.timeout_seconds, Some(35));
        let spec = defaults.apply(JobSpec::new("app.other", serde_json::json!({})).queue("x"));
        assert_eq!(spec.queue.as_deref(), Some("x"));
        assert_eq!(spec.timeout_seconds, Some(10));
    }

    #[test]
    fn every_bad_declaration_is_named() {
        let decls = decl(
            "[http.\"a.relative\"]\nurl = \"/nowhere\"\n\
             [http.\"a.path\"]\npath = \"/x\"\n\
             [http.\"a.both\"]\nurl = \"http://a\"\npath = \"/x\"\n\
             [http.\"a.slow\"]\nurl = \"http://a\"\ntimeout = 60\n\
             [http.\"a.queue\"]\nurl = \"http://a\"\nqueue = \"nobody\"\n",
        );
        let (kinds, problems) = resolve(
            &decls,
            &app(None, false),
            Duration::from_secs(60),
            &BTreeMap::new(),
        );
        assert!(kinds.is_empty());
        let text = problems.join("\n");
        for expected in [
            "\"a.relative\": url must be an absolute",
            "\"a.path\": path needs APP_URL",
            "\"a.both\": give exactly one",
            "\"a.slow\": timeout must be from 1 to 59 s",
            "\"a.queue\": queue \"nobody\" is not served",
            "needs APP_WEBHOOK_SECRET",
        ] {
            assert!(text.contains(expected), "{expected} not in:\n{text}");
        }
    }
}
