//! Handlers by kind. Library users implement [`Job`] for a serde type and register it; the
//! worker decodes the stored arguments into it.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::store::Db;

/// What a running job knows about itself.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub id: i64,
    pub queue: String,
    pub kind: String,
    pub attempt: i32,
    pub max_attempts: i32,
    /// When the job was enqueued.
    pub enqueued_at: chrono::DateTime<chrono::Utc>,
    pub db: Db,
}

/// Why an attempt failed. A retryable failure is retried with backoff while attempts remain
/// (not before `retry_after`, when set); a permanent one discards the job at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    pub message: String,
    pub retryable: bool,
    /// The least time before the next attempt; the backoff applies when it is longer.
    pub retry_after: Option<Duration>,
}

impl JobFailure {
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
            retry_after: None,
        }
    }

    /// A retryable failure whose next attempt waits at least `wait`.
    pub fn retry_after(message: impl Into<String>, wait: Duration) -> Self {
        Self {
            retry_after: Some(wait),
            ..Self::retry(message)
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
            retry_after: None,
        }
    }
}

impl<E: std::error::Error> From<E> for JobFailure {
    fn from(e: E) -> Self {
        Self::retry(e.to_string())
    }
}

/// A typed job: its arguments are `Self`.
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    const KIND: &'static str;

    fn run(self, ctx: JobContext) -> impl Future<Output = Result<(), JobFailure>> + Send;
}

pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), JobFailure>> + Send>>;
type Handler = Arc<dyn Fn(JobContext, serde_json::Value) -> HandlerFuture + Send + Sync>;

/// Handlers by kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Handler>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds: Vec<_> = self.handlers.keys().collect();
        kinds.sort();
        f.debug_struct("Registry").field("kinds", &kinds).finish()
    }
}

impl Registry {
    /// A registry with the built-in diagnostic kinds (`diag.noop`, `diag.sleep`, `diag.fail`).
    pub fn with_builtins() -> Self {
        let mut registry = Self::default();
        super::diag::register(&mut registry);
        registry
    }

    pub fn register<J: Job>(&mut self) -> &mut Self {
        self.register_fn(J::KIND, |ctx, args| async move {
            let job: J = serde_json::from_value(args).map_err(|e| {
                JobFailure::permanent(format!("arguments do not fit {}: {e}", J::KIND))
            })?;
            job.run(ctx).await
        })
    }

    /// Registers a handler over raw JSON arguments.
    pub fn register_fn<F, Fut>(&mut self, kind: &str, handler: F) -> &mut Self
    where
        F: Fn(JobContext, serde_json::Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobFailure>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |ctx, args| Box::pin(handler(ctx, args)));
        self.handlers.insert(kind.to_string(), handler);
        self
    }

    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }

    /// Whether a handler for `kind` is registered.
    pub fn handles(&self, kind: &str) -> bool {
        self.handlers.contains_key(kind)
    }

    pub(crate) fn start(&self, ctx: JobContext, args: serde_json::Value) -> HandlerFuture {
        match self.handlers.get(&ctx.kind) {
            Some(handler) => handler(ctx, args),
            None => {
                let kind = ctx.kind.clone();
                Box::pin(async move {
                    Err(JobFailure::retry(format!(
                        "no handler for kind {kind} in this worker"
                    )))
                })
            }
        }
    }
}
