//! `x-request-id`: a well-formed inbound value is kept, otherwise a new one is made. The id is
//! visible to everything that runs for the request through [`current`].

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::response::Response;
use tokio::task::futures::TaskLocalFuture;

pub const HEADER: &str = "x-request-id";
/// [`HEADER`] as a header name, parsed once.
const HEADER_NAME: axum::http::HeaderName = axum::http::HeaderName::from_static(HEADER);
const MAX_LEN: usize = 128;

tokio::task_local! {
    static REQUEST_ID: HeaderValue;
    static USER_ID: RefCell<Option<String>>;
    static ROUTE: RefCell<Option<RouteName>>;
}

/// What a request was routed to: a route template of Keel's router, or a gateway rule.
#[derive(Debug, Clone)]
pub enum RouteName {
    Matched(MatchedPath),
    /// The label of the gateway rule the request to the app fell under.
    Gateway(Arc<str>),
}

impl RouteName {
    pub fn as_str(&self) -> &str {
        match self {
            RouteName::Matched(path) => path.as_str(),
            RouteName::Gateway(label) => label,
        }
    }
}

/// The span every log line of a request is written in; `route` and `user_id` are recorded once
/// known. When no subscriber wants it (logs at `warn` or above), the span is none at all: a
/// disabled span is still entered and left on every poll, and through the `log` compatibility
/// a dependency turns on, that costs each request a few hundred instructions for nothing.
pub fn span(id: &HeaderValue, method: &axum::http::Method) -> tracing::Span {
    let span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or_default(),
        method = %method,
        route = tracing::field::Empty,
        user_id = tracing::field::Empty,
    );
    if span.is_disabled() {
        tracing::Span::none()
    } else {
        span
    }
}

/// Records the route template in the request's span, as soon as it is matched (before the
/// handler runs).
pub fn record_route(route: &MatchedPath) {
    tracing::Span::current().record("route", route.as_str());
    crate::telemetry::sentry::scoped::note_route(route.as_str());
}

/// Records the route template the request matched (for the access log, metrics and the span).
pub fn set_route(route: MatchedPath) {
    record_route(&route);
    let _ = ROUTE.try_with(|r| *r.borrow_mut() = Some(RouteName::Matched(route)));
}

/// Records that the request goes to the app under the gateway rule `label`. From then on the
/// gateway's own timeouts govern it, not the request timeout.
pub fn set_gateway_rule(label: Arc<str>) {
    tracing::Span::current().record("route", &*label);
    let _ = ROUTE.try_with(|r| *r.borrow_mut() = Some(RouteName::Gateway(label)));
}

/// Whether the request being served goes to the app through the gateway.
pub fn in_gateway() -> bool {
    ROUTE
        .try_with(|r| matches!(*r.borrow(), Some(RouteName::Gateway(_))))
        .unwrap_or(false)
}

/// The route template (or gateway rule) the request matched, once routed.
pub fn current_route() -> Option<RouteName> {
    ROUTE.try_with(|r| r.borrow().clone()).ok().flatten()
}

/// Records the authenticated user of the request being served (for error reports).
pub fn set_user(id: &str) {
    tracing::Span::current().record("user_id", id);
    crate::telemetry::sentry::scoped::note_user(id);
    let _ = USER_ID.try_with(|user| *user.borrow_mut() = Some(id.to_string()));
}

/// The authenticated user of the request being served, once known.
pub fn current_user() -> Option<String> {
    USER_ID
        .try_with(|user| user.borrow().clone())
        .ok()
        .flatten()
}

/// The id of the request being served on this task, as its header value.
pub fn current_value() -> Option<HeaderValue> {
    REQUEST_ID.try_with(HeaderValue::clone).ok()
}

/// The id of the request being served on this task, if any.
pub fn current() -> Option<String> {
    REQUEST_ID
        .try_with(|id| id.to_str().map(str::to_string).ok())
        .ok()
        .flatten()
}

pub fn is_acceptable(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A new id: 32 hex digits, all random (a UUID v4's 122 random bits): it tells a client nothing
/// about the process or how many requests it served.
fn new_id() -> HeaderValue {
    let mut text = [0u8; 32];
    let id = uuid::Uuid::new_v4();
    let text = id.simple().encode_lower(&mut text);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// Runs `f` with a new request id, visible through [`current`]: for answers made before any
/// request could be read.
pub fn with_new<R>(f: impl FnOnce(&HeaderValue) -> R) -> R {
    let id = new_id();
    REQUEST_ID.sync_scope(id.clone(), || f(&id))
}

/// The request's id: its well-formed inbound `x-request-id`, or a new one. Handlers read it
/// through [`current`].
pub fn assign(req: &Request) -> HeaderValue {
    req.headers()
        .get(&HEADER_NAME)
        .filter(|v| v.to_str().is_ok_and(is_acceptable))
        .cloned()
        .unwrap_or_else(new_id)
}

/// The request-scoped values around a request's future.
pub type Scoped<F> = TaskLocalFuture<
    HeaderValue,
    TaskLocalFuture<RefCell<Option<String>>, TaskLocalFuture<RefCell<Option<RouteName>>, F>>,
>;

/// `future` with `id` (and room for the user id and the route) visible through [`current`]
/// while it runs.
pub fn scope<F: Future>(id: HeaderValue, future: F) -> Scoped<F> {
    REQUEST_ID.scope(
        id,
        USER_ID.scope(RefCell::new(None), ROUTE.scope(RefCell::new(None), future)),
    )
}

/// Sets `x-request-id` on the response.
pub fn echo(response: &mut Response, id: HeaderValue) {
    response.headers_mut().insert(HEADER_NAME, id);
}

#[cfg(test)]
mod tests {
    use super::{is_acceptable, new_id};

    #[test]
    fn accepts_only_safe_ids() {
        assert!(is_acceptable("abc-123_x.y"));
        assert!(!is_acceptable(""));
        assert!(!is_acceptable("a b"));
        assert!(!is_acceptable("<script>"));
        assert!(!is_acceptable(&"a".repeat(129)));
        assert!(is_acceptable(&"a".repeat(128)));
    }

    #[test]
    fn new_ids_are_32_hex_digits_and_differ() {
        let (a, b) = (new_id(), new_id());
        let a = a.to_str().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(is_acceptable(a));
        // No shared process prefix, no counter: the two differ from the start and at the end.
        let b = b.to_str().unwrap();
        assert_ne!(a[..16], b[..16]);
        assert_ne!(a[16..], b[16..]);
    }
}
