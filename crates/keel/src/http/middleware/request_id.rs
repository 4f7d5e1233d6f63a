//! `x-request-id`: a well-formed inbound value is kept, otherwise a new one is made. The id is
//! visible to everything that runs for the request through [`current`].

use std::cell::RefCell;
use std::future::Future;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::response::Response;
use tokio::task::futures::TaskLocalFuture;

pub const HEADER: &str = "x-request-id";
const MAX_LEN: usize = 128;

tokio::task_local! {
    static REQUEST_ID: HeaderValue;
    static USER_ID: RefCell<Option<String>>;
    static ROUTE: RefCell<Option<MatchedPath>>;
}

/// Records the route template the request matched (for the access log and metrics).
pub fn set_route(route: MatchedPath) {
    let _ = ROUTE.try_with(|r| *r.borrow_mut() = Some(route));
}

/// The route template the request matched, once routed.
pub fn current_route() -> Option<MatchedPath> {
    ROUTE.try_with(|r| r.borrow().clone()).ok().flatten()
}

/// Records the authenticated user of the request being served (for error reports).
pub fn set_user(id: &str) {
    let _ = USER_ID.try_with(|user| *user.borrow_mut() = Some(id.to_string()));
}

/// The authenticated user of the request being served, once known.
pub fn current_user() -> Option<String> {
    USER_ID
        .try_with(|user| user.borrow().clone())
        .ok()
        .flatten()
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

/// A new id: 32 hex digits, a random prefix drawn once per process and a counter. Unique per
/// process, and across processes but for a 1-in-2^64 prefix collision; cheap (no clock read, no
/// random draw, one allocation per request).
fn new_id() -> HeaderValue {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut text = [0u8; 32];
    for (i, byte) in text.iter_mut().enumerate() {
        let word = if i < 16 { prefix } else { n };
        *byte = HEX[((word >> (4 * (15 - i % 16))) & 0xf) as usize];
    }
    HeaderValue::from_maybe_shared(axum::body::Bytes::copy_from_slice(&text))
        .unwrap_or_else(|_| HeaderValue::from_static("0"))
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
        .get(HEADER)
        .filter(|v| v.to_str().is_ok_and(is_acceptable))
        .cloned()
        .unwrap_or_else(new_id)
}

/// The request-scoped values around a request's future.
pub type Scoped<F> = TaskLocalFuture<
    HeaderValue,
    TaskLocalFuture<RefCell<Option<String>>, TaskLocalFuture<RefCell<Option<MatchedPath>>, F>>,
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
    response.headers_mut().insert(HEADER, id);
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
        assert_ne!(a, b.to_str().unwrap());
        assert_eq!(a[..16], b.to_str().unwrap()[..16]);
    }
}
