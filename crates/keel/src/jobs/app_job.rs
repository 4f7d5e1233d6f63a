//! Typed jobs that run with the application's own context: a mailer, an HTTP client, settings of
//! its own, anything the application builds once at start-up and hands to the registry.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::handler::{JobContext, JobFailure, Registry};

/// A typed job whose handler receives the application's context beside Keel's [`JobContext`].
/// Its arguments are `Self`; [`Registry::register_with`] registers it with the context value
/// every run receives (a clone of it).
///
/// ```
/// use keel::jobs::{AppJob, JobContext, JobFailure, Registry};
///
/// #[derive(Clone)]
/// struct Mailer { from: String }
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Welcome { user_id: String }
///
/// impl AppJob for Welcome {
///     const KIND: &'static str = "app.welcome";
///     type Context = Mailer;
///
///     async fn run(self, _job: JobContext, mailer: Mailer) -> Result<(), JobFailure> {
///         println!("from {} to {}", mailer.from, self.user_id);
///         Ok(())
///     }
/// }
///
/// let mut registry = Registry::with_builtins();
/// registry.register_with::<Welcome>(Mailer { from: "hello@example.com".into() });
/// assert!(registry.kinds().any(|k| k == "app.welcome"));
/// ```
pub trait AppJob: Serialize + DeserializeOwned + Send + 'static {
    /// The kind the job is enqueued under (`[A-Za-z0-9._:-]`, 1 to 100 characters).
    const KIND: &'static str;

    /// What the application hands every run: cloned once per run, so usually `Arc`s inside.
    type Context: Clone + Send + Sync + 'static;

    /// Runs one attempt. A retryable failure is retried with backoff while attempts remain.
    fn run(
        self,
        job: JobContext,
        ctx: Self::Context,
    ) -> impl Future<Output = Result<(), JobFailure>> + Send;
}

impl Registry {
    /// Registers the typed job `J`, whose runs receive a clone of `ctx`. Arguments that do not
    /// decode into `J` discard the job at once (retrying cannot fix them).
    pub fn register_with<J: AppJob>(&mut self, ctx: J::Context) -> &mut Self {
        self.register_fn(J::KIND, move |job, args| {
            let ctx = ctx.clone();
            async move {
                let decoded: J = serde_json::from_value(args).map_err(|e| {
                    JobFailure::permanent(format!("arguments do not fit {}: {e}", J::KIND))
                })?;
                decoded.run(job, ctx).await
            }
        })
    }
}
