//! Input no store can hold, refused at the edge the same way on both engines: a NUL character
//! (`%00`) in the path or the query string, and more header fields than the server reads.
//! JSON bodies are checked for `\u0000` by the extractors in `http/extract.rs`.

use axum::extract::Request;
use axum::http::StatusCode;

use crate::http::problem::ApiError;

/// The most header fields a request may carry. hyper reads up to [`PARSED_HEADERS`] so that a
/// request over this limit is answered here, as a problem, rather than by hyper with no body.
pub const MAX_HEADERS: usize = 100;

/// How many header fields hyper parses before refusing the request itself.
pub const PARSED_HEADERS: usize = 1000;

/// The problem for a request the edge refuses before routing, if any.
pub fn refusal(req: &Request) -> Option<ApiError> {
    let count = req.headers().len();
    if count > MAX_HEADERS {
        return Some(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            "Request header fields too large",
            format!("The request has {count} header fields; at most {MAX_HEADERS} are accepted."),
        ));
    }
    let uri = req.uri();
    if has_nul(uri.path()) {
        return Some(nul_refusal("path"));
    }
    if uri.query().is_some_and(has_nul) {
        return Some(nul_refusal("query string"));
    }
    None
}

/// Whether percent-encoded text decodes to a NUL character.
fn has_nul(encoded: &str) -> bool {
    encoded.as_bytes().windows(3).any(|w| w == b"%00")
}

pub fn nul_refusal(part: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "nul-character",
        "NUL character refused",
        format!("The request's {part} contains a NUL character (%00), which Keel does not accept in any text."),
    )
}

/// Whether a JSON text has a string holding a NUL character, written `\u0000` (a raw NUL byte
/// is not valid JSON at all). A backslash escaped by another backslash starts no escape.
pub fn json_has_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json[i + 1..].starts_with(b"u0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_escapes_are_found_and_escaped_backslashes_are_not() {
        assert!(json_has_nul(br#"{"a":"x\u0000y"}"#));
        assert!(json_has_nul(br#"{"a\u0000":1}"#));
        assert!(json_has_nul(br#"{"a":"\\\u0000"}"#));
        assert!(!json_has_nul(br#"{"a":"\\u0000"}"#));
        assert!(!json_has_nul(br#"{"a":"\u0001 \n \\"}"#));
        assert!(!json_has_nul(br#"{"a":"x\"#));
    }

    #[test]
    fn percent_encoded_nul_is_found() {
        assert!(has_nul("/admin/api/users/ab%00cd"));
        assert!(has_nul("kind=a%00b"));
        assert!(!has_nul("/admin/api/users/ab%200"));
    }
}
