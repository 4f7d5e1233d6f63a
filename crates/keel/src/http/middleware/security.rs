//! Security headers on every response.

use axum::http::{header, HeaderValue};
use axum::response::Response;

/// Whether `strict-transport-security` is sent (everywhere but development).
#[derive(Debug, Clone, Copy)]
pub struct Hsts(pub bool);

const CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Adds the security headers to `response`.
pub fn apply(response: &mut Response, hsts: Hsts) {
    let headers = response.headers_mut();
    headers.reserve(6);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // A route's own policy stands; one lookup each, not a check and then an insert.
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert_with(|| HeaderValue::from_static("no-referrer"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert_with(|| HeaderValue::from_static(CSP));
    if hsts.0 {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
}
