//! A hub per request and per job: what is reported while one runs (a panic, an `error` line, a
//! 5xx, a final failure) carries its tags and its own breadcrumbs, not those of the work that ran
//! before it on the same thread. A request's reports carry `request_id`, then `route` and the
//! user's id once known; a job's carry `job_id`, `job_kind`, `queue` and `attempt`. Without
//! reporting no hub is made, and each function here does nothing.

use std::future::Future;
use std::sync::Arc;

use sentry::integrations::backtrace::current_stacktrace;
use sentry::protocol::{Event, Exception, Level, Mechanism, User};
use sentry::{Hub, Scope, SentryFutureExt};
use tokio::task::JoinSet;

use super::enabled;

/// The hub of one request or job, when the process reports errors.
pub(crate) type WorkHub = Option<Arc<Hub>>;

/// A hub for the request `request_id`.
pub(crate) fn request_hub(request_id: &str) -> WorkHub {
    let hub = fresh_hub()?;
    hub.configure_scope(|scope| scope.set_tag("request_id", request_id));
    Some(hub)
}

/// A hub for one attempt of a job.
pub(crate) fn job_hub(id: i64, kind: &str, queue: &str, attempt: i32) -> WorkHub {
    let hub = fresh_hub()?;
    hub.configure_scope(|scope| {
        scope.set_tag("job_id", id);
        scope.set_tag("job_kind", kind);
        scope.set_tag("queue", queue);
        scope.set_tag("attempt", attempt);
    });
    Some(hub)
}

/// A hub with the process's client and an empty scope: no breadcrumbs of other work.
fn fresh_hub() -> WorkHub {
    if !enabled() {
        return None;
    }
    Some(Arc::new(Hub::new(
        Hub::main().client(),
        Arc::new(Scope::default()),
    )))
}

/// Spawns `future` on `tasks`, with `hub` as the current hub while it runs.
pub(crate) fn spawn<F>(
    tasks: &mut JoinSet<F::Output>,
    hub: &WorkHub,
    future: F,
) -> tokio::task::AbortHandle
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match hub {
        Some(hub) => tasks.spawn(future.bind_hub(hub.clone())),
        None => tasks.spawn(future),
    }
}

/// Runs `f` with `hub` as the current hub (what is reported meanwhile carries its tags).
pub(crate) fn run<R>(hub: &WorkHub, f: impl FnOnce() -> R) -> R {
    match hub {
        Some(hub) => Hub::run(hub.clone(), f),
        None => f(),
    }
}

/// The route template the current request matched, on its reports from now on.
pub(crate) fn note_route(route: &str) {
    if enabled() {
        Hub::current().configure_scope(|scope| scope.set_tag("route", route));
    }
}

/// The authenticated user of the current request (their id only), on its reports from now on.
pub(crate) fn note_user(id: &str) {
    if enabled() {
        Hub::current().configure_scope(|scope| {
            scope.set_user(Some(User {
                id: Some(id.to_string()),
                ..User::default()
            }))
        });
    }
}

/// Reports a 5xx answer of the current request (not a panic's: that is reported by the hook).
pub(crate) fn capture_http_failure(method: &str, route: &str, status: u16) {
    if !enabled() {
        return;
    }
    let mut event = Event {
        level: Level::Error,
        logger: Some("keel::http".into()),
        message: Some(format!("{method} {route} answered {status}")),
        fingerprint: vec![
            "http_5xx".into(),
            method.to_string().into(),
            route.to_string().into(),
            status.to_string().into(),
        ]
        .into(),
        ..Event::default()
    };
    event.tags.insert("kind".into(), "http_5xx".into());
    event.tags.insert("status".into(), status.to_string());
    Hub::current().capture_event(event);
}

/// Reports the final failure of a job attempt run under `hub`, as an exception of type
/// `<kind> failed` with the stack where the worker recorded it; reports of one kind are grouped
/// together.
pub(crate) fn capture_job_failure(hub: &WorkHub, kind: &str, message: &str) {
    let Some(hub) = hub else {
        return;
    };
    let mut event = Event {
        level: Level::Error,
        logger: Some("keel::jobs".into()),
        exception: vec![Exception {
            ty: format!("{kind} failed"),
            value: Some(message.to_string()),
            stacktrace: current_stacktrace(),
            mechanism: Some(Mechanism {
                ty: "job".into(),
                handled: Some(true),
                ..Mechanism::default()
            }),
            ..Exception::default()
        }]
        .into(),
        fingerprint: vec!["job_failed".into(), kind.to_string().into()].into(),
        ..Event::default()
    };
    event.tags.insert("kind".into(), "job_failed".into());
    hub.capture_event(event);
}
