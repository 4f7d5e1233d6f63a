//! What leaves the process: the user's id and nothing else about them; no request headers,
//! cookies, body or query string; no field whose name says it holds a credential or a payload
//! (`authorization`, `token`, `secret`, `password`, `payload`, `body`, `args`, …); and in the text
//! that remains (messages, panic messages, field values) credentials in URLs, `Bearer`/`Basic`
//! values and `name=value` pairs with such names are replaced by `[redacted]`.

use sentry::protocol::{Breadcrumb, Context, Event, Map, User, Value};

const REDACTED: &str = "[redacted]";

/// Parts of field names that mark a value as a credential or a payload.
const SENSITIVE: &[&str] = &[
    "authorization",
    "cookie",
    "password",
    "passwd",
    "secret",
    "token",
    "signature",
    "credential",
    "api_key",
    "apikey",
    "dsn",
    "payload",
    "body",
];

/// Field names that are sensitive only as a whole word (`key`, `job_key` but not `keyboard`).
const SENSITIVE_WORDS: &[&str] = &["key", "sig", "args", "auth", "email", "ip"];

pub(super) fn scrub_event(mut event: Event<'static>) -> Option<Event<'static>> {
    event.user = event.user.take().and_then(|user| {
        user.id.map(|id| User {
            id: Some(id),
            ..User::default()
        })
    });
    if let Some(request) = event.request.as_mut() {
        request.data = None;
        request.query_string = None;
        request.cookies = None;
        request.headers.clear();
        request.env.clear();
        if let Some(url) = request.url.as_mut() {
            url.set_query(None);
            url.set_fragment(None);
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
    }
    if let Some(message) = event.message.as_mut() {
        *message = redact(message);
    }
    if let Some(entry) = event.logentry.as_mut() {
        entry.message = redact(&entry.message);
        entry.params.iter_mut().for_each(scrub_value);
    }
    for exception in event.exception.values.iter_mut() {
        if let Some(value) = exception.value.as_mut() {
            *value = redact(value);
        }
    }
    for value in event.tags.values_mut() {
        *value = redact(value);
    }
    scrub_map(&mut event.extra);
    for context in event.contexts.values_mut() {
        if let Context::Other(fields) = context {
            scrub_map(fields);
        }
    }
    for crumb in event.breadcrumbs.values.iter_mut() {
        *crumb = scrub_breadcrumb(std::mem::take(crumb));
    }
    Some(event)
}

pub(super) fn scrub_breadcrumb(mut crumb: Breadcrumb) -> Breadcrumb {
    if let Some(message) = crumb.message.as_mut() {
        *message = redact(message);
    }
    scrub_map(&mut crumb.data);
    crumb
}

fn scrub_map(fields: &mut Map<String, Value>) {
    fields.retain(|name, _| !is_sensitive(name));
    fields.values_mut().for_each(scrub_value);
}

fn scrub_value(value: &mut Value) {
    match value {
        Value::String(text) => *text = redact(text),
        Value::Array(items) => items.iter_mut().for_each(scrub_value),
        Value::Object(fields) => {
            fields.retain(|name, _| !is_sensitive(name));
            fields.values_mut().for_each(scrub_value);
        }
        _ => {}
    }
}

/// Whether a field or parameter named `name` may hold a credential or a payload.
fn is_sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SENSITIVE.iter().any(|part| name.contains(part))
        || name
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| SENSITIVE_WORDS.contains(&word))
}

/// `text` with credentials in URLs, `Bearer`/`Basic` values and sensitive `name=value` or
/// `name: value` pairs replaced by `[redacted]`.
pub(super) fn redact(text: &str) -> String {
    let text = redact_userinfo(text);
    let text = redact_after(&text, "bearer ");
    let text = redact_after(&text, "basic ");
    redact_pairs(&text)
}

fn ends_value(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '&' | '"' | '\'' | ',' | ';' | ')' | '}' | ']' | '<' | '>'
        )
}

/// `scheme://user:password@host` → `scheme://[redacted]@host`.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || ends_value(c))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(userinfo_end) => {
                out.push_str(REDACTED);
                out.push_str(&authority[userinfo_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The word following `scheme` (matched without regard to case) replaced.
fn redact_after(text: &str, scheme: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find(scheme) {
        let start = from + found + scheme.len();
        let end = text[start..]
            .find(ends_value)
            .map_or(text.len(), |e| start + e);
        if end > start {
            out.push_str(&text[copied..start]);
            out.push_str(REDACTED);
            copied = end;
        }
        from = end.max(start);
    }
    out.push_str(&text[copied..]);
    out
}

/// `token=abc`, `password: "abc"` and the like, for sensitive names.
fn redact_pairs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (at, separator) in text.match_indices(['=', ':']) {
        if at < copied {
            continue;
        }
        let before = text[..at].trim_end_matches(' ');
        let name_start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let name = &before[name_start..];
        if name.is_empty() || !is_sensitive(name) {
            continue;
        }
        let after = at + separator.len();
        let value_start = after
            + text[after..]
                .find(|c: char| !matches!(c, ' ' | '"' | '\''))
                .unwrap_or(text.len() - after);
        let end = text[value_start..]
            .find(ends_value)
            .map_or(text.len(), |e| value_start + e);
        if end == value_start || text[value_start..].starts_with("//") {
            continue;
        }
        out.push_str(&text[copied..value_start]);
        out.push_str(REDACTED);
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentry::protocol::{Exception, Request};

    #[test]
    fn credentials_in_text_are_redacted() {
        for (text, secret) in [
            (
                "cannot connect to postgres://keel:db-pass-1@db.internal/keel",
                "db-pass-1",
            ),
            ("GET /v1/x?access_token=tok-2&page=1", "tok-2"),
            ("header Authorization: Bearer eyJhbGciOi.tok-3", "tok-3"),
            ("basic dXNlcjpwYXNz-4", "dXNlcjpwYXNz-4"),
            ("Config { api_key: \"key-5\", name: \"x\" }", "key-5"),
            ("webhook_secret=whsec_6 failed", "whsec_6"),
            ("password = hunter-7", "hunter-7"),
        ] {
            let redacted = redact(text);
            assert!(!redacted.contains(secret), "{text} → {redacted}");
            assert!(redacted.contains(REDACTED), "{text} → {redacted}");
        }
        for text in [
            "job 42 (diag.fail) failed its last attempt: planned",
            "GET /v1/me answered 500",
            "see https://docs.example/x?page=2",
            "thread 'tokio-runtime-worker' panicked at src/x.rs:10:5",
            "ünïcödé token",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn events_keep_the_user_id_only_and_no_request_details() {
        let mut event = Event {
            user: Some(User {
                id: Some("user-1".into()),
                email: Some("a@b.example".into()),
                ip_address: Some(Default::default()),
                ..User::default()
            }),
            request: Some(Request {
                url: "https://api.example/v1/x?token=t-1".parse().ok(),
                data: Some("{\"card\":\"4242\"}".into()),
                query_string: Some("token=t-1".into()),
                cookies: Some("session=s-1".into()),
                headers: [("Authorization".to_string(), "Bearer t-1".to_string())]
                    .into_iter()
                    .collect(),
                ..Request::default()
            }),
            message: Some("refused token=t-1".into()),
            ..Event::default()
        };
        event.exception.values.push(Exception {
            ty: "panic".into(),
            value: Some("called unwrap on redis://:r-pass@cache/0".into()),
            ..Exception::default()
        });
        event
            .extra
            .insert("payload".into(), "{\"card\":\"4242\"}".into());
        event
            .extra
            .insert("authorization".into(), "Bearer t-1".into());
        event.extra.insert("route".into(), "/v1/x".into());
        let mut crumb = Breadcrumb {
            message: Some("GET /x?token=t-1".into()),
            ..Breadcrumb::default()
        };
        crumb
            .data
            .insert("args".into(), "{\"card\":\"4242\"}".into());
        event.breadcrumbs.values.push(crumb);
        let event = scrub_event(event).unwrap();
        let text = serde_json::to_string(&event).unwrap();
        for secret in ["a@b.example", "t-1", "4242", "s-1", "r-pass"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(event.user.unwrap().id.as_deref(), Some("user-1"));
        assert_eq!(event.extra["route"], "/v1/x");
    }
}
