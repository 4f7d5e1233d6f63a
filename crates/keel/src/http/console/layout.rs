//! The frame of every console page, its response headers (a strict `content-security-policy`:
//! nothing but Keel's own stylesheet and script, and requests to Keel itself), and the
//! stylesheet and the live-refresh script themselves.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::operator::Operator;
use crate::http::middleware::errors::OwnBody;

pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const CSS: &str = include_str!("console.css");
const SCRIPT: &str = include_str!("console.js");

/// A page: the navigation (with the operator and the sign-out button when signed in) around
/// `body`.
pub fn page(title: &str, operator: Option<&Operator>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Keel console" }
                link rel="stylesheet" href="/admin/console.css";
                @if operator.is_some() { script src="/admin/console.js" defer {} }
            }
            body {
                @if let Some(op) = operator {
                    nav {
                        a href="/admin" { "Overview" }
                        a href="/admin/jobs" { "Jobs" }
                        a href="/admin/schedules" { "Schedules" }
                        a href="/admin/billing" { "Billing events" }
                        a href="/admin/flags" { "Kill switches" }
                        a href="/admin/users" { "Users" }
                        a href="/admin/audit" { "Audit log" }
                        span.who {
                            (op.actor)
                            @if op.read_only { " (read-only)" }
                        }
                        form method="post" action="/admin/logout" {
                            input type="hidden" name="csrf" value=(op.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A hidden CSRF field and a button that posts to `action`; nothing for a read-only operator.
pub fn action_button(op: &Operator, action: &str, label: &str, fields: &[(&str, &str)]) -> Markup {
    html! {
        @if !op.read_only {
            form.inline method="post" action=(action) {
                input type="hidden" name="csrf" value=(op.csrf);
                @for (name, value) in fields {
                    input type="hidden" name=(name) value=(value);
                }
                button type="submit" { (label) }
            }
        }
    }
}

/// `markup` as an HTML response with the console's headers.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        markup.into_string(),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    // With `no-referrer` a browser sends `Origin: null` on form posts, which the origin check
    // refuses; `same-origin` names the console to itself and to no one else.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response.extensions_mut().insert(OwnBody);
    response
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}
