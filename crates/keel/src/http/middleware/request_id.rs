//! `x-request-id`: a well-formed inbound value is kept, otherwise a new one is made. The id is
//! visible to everything that runs for the request through [`current`].

use std::future::Future;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::Response;

pub const HEADER: &str = "x-request-id";
const MAX_LEN: usize = 128;

tokio::task_local! {
    static REQUEST_ID: String;
    static USER_ID: std::cell::RefCell<Option<String>>;
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
    REQUEST_ID.try_with(Clone::clone).ok()
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
/// random draw per request).
fn new_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix:016x}{n:016x}")
}

/// The request's id: its well-formed inbound `x-request-id`, or a new one. The request carries
/// it onward in the same header.
pub fn assign(req: &mut Request) -> String {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_acceptable(v))
        .map(str::to_string)
        .unwrap_or_else(new_id);
    if let Ok(value) = HeaderValue::from_str(&id) {
        req.headers_mut().insert(HEADER, value);
    }
    id
}

/// Runs `future` with `id` (and room for the user id) visible through [`current`].
pub async fn scoped<F: Future>(id: String, future: F) -> F::Output {
    REQUEST_ID
        .scope(id, USER_ID.scope(Default::default(), future))
        .await
}

/// Sets `x-request-id` on the response.
pub fn echo(response: &mut Response, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(HEADER, value);
    }
}

#[cfg(test)]
mod tests {
    use super::is_acceptable;

    #[test]
    fn accepts_only_safe_ids() {
        assert!(is_acceptable("abc-123_x.y"));
        assert!(!is_acceptable(""));
        assert!(!is_acceptable("a b"));
        assert!(!is_acceptable("<script>"));
        assert!(!is_acceptable(&"a".repeat(129)));
        assert!(is_acceptable(&"a".repeat(128)));
    }
}
