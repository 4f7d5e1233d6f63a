//! Signed HTTP deliveries from Keel to the app: HTTP job kinds and app events both send one JSON
//! body to a configured URL, signed the Standard Webhooks way, and read the answer the same way.
//!
//! The URL always comes from configuration, never from a job's arguments; redirects are not
//! followed, so a delivery lands only where it was configured to.

mod settings;

pub use settings::AppSettings;

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;

use crate::crypto::standard_webhooks::{sign, WebhookSecret};

/// The most of a refusing answer's body kept in an error (never its headers).
pub const ERROR_BODY_LIMIT: usize = 1024;

/// The longest `Retry-After` honoured; a longer one is cut to this.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(24 * 3600);

/// One message to send.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The configured URL.
    pub url: &'a str,
    /// The `webhook-id`: the same on every attempt of the same message.
    pub id: &'a str,
    /// The JSON body.
    pub body: &'a [u8],
    /// How long the whole exchange may take.
    pub timeout: Duration,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The app answered 2xx.
    Delivered { status: u16 },
    /// Worth trying again: 408, 425, 429, 5xx, a timeout, a refused or reset connection.
    /// `retry_after` is the app's own `Retry-After`, when it sent one.
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Any other answer (other 4xx, 3xx): trying again would not help.
    Refused { error: String },
}

/// A client for deliveries: no redirects, no cookies, rustls.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("keel/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// Sends `message` signed with every one of `secrets` at `now`.
pub async fn deliver(
    client: &reqwest::Client,
    secrets: &[WebhookSecret],
    message: Message<'_>,
    now: DateTime<Utc>,
) -> Outcome {
    let signed = sign(secrets, message.id, now.timestamp(), message.body);
    let mut request = client
        .post(message.url)
        .timeout(message.timeout)
        .header(CONTENT_TYPE, "application/json")
        .body(message.body.to_vec());
    for (name, value) in signed.pairs() {
        request = request.header(name, value);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return transport_failure(&e, message.timeout),
    };
    let status = response.status();
    let retry_after = retry_after(response.headers(), now);
    if status.is_success() {
        return Outcome::Delivered {
            status: status.as_u16(),
        };
    }
    let body = match tokio::time::timeout(message.timeout, response.bytes()).await {
        Ok(Ok(bytes)) => bytes,
        _ => Default::default(),
    };
    let error = describe(status, &body);
    if retryable(status) {
        Outcome::Retry { error, retry_after }
    } else {
        Outcome::Refused { error }
    }
}

/// Whether an answer with this status is worth another attempt.
pub fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 425 | 429) || status.is_server_error()
}

/// `HTTP <status>: <at most ERROR_BODY_LIMIT bytes of the body>`, cut on a character boundary.
pub fn describe(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(ERROR_BODY_LIMIT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let shown = text[..end].trim();
    if shown.is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        format!("HTTP {}: {shown}", status.as_u16())
    }
}

/// `Retry-After` as seconds or as an HTTP date, capped at [`RETRY_AFTER_CAP`].
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = DateTime::parse_from_rfc2822(value)
                .ok()?
                .with_timezone(&Utc);
            (at - now).to_std().unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(RETRY_AFTER_CAP))
}

fn transport_failure(e: &reqwest::Error, timeout: Duration) -> Outcome {
    let error = if e.is_timeout() {
        format!("no answer within {} ms", timeout.as_millis())
    } else if e.is_connect() {
        "the connection was refused or could not be made".to_owned()
    } else {
        "the connection failed before an answer arrived".to_owned()
    };
    Outcome::Retry {
        error,
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(retry_after).unwrap());
        h
    }

    #[test]
    fn which_statuses_are_retried() {
        for s in [408, 425, 429, 500, 502, 503, 504] {
            assert!(retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [301, 400, 401, 404, 410, 422] {
            assert!(!retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            retry_after(&headers("7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers("Thu, 01 Jan 2026 00:01:00 GMT"), now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_after(&headers("Wed, 31 Dec 2025 00:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(&headers("99999999"), now),
            Some(RETRY_AFTER_CAP)
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn errors_keep_the_status_and_at_most_a_kibibyte_of_body() {
        let long = "é".repeat(1000);
        let error = describe(StatusCode::BAD_GATEWAY, long.as_bytes());
        assert!(error.starts_with("HTTP 502: é"));
        assert!(error.len() <= ERROR_BODY_LIMIT + "HTTP 502: ".len());
        assert_eq!(describe(StatusCode::NOT_FOUND, b"  "), "HTTP 404");
    }
}
