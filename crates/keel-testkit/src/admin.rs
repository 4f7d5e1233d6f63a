//! Requests to the admin API with the app's `ADMIN_TOKEN`, and the answers as tests read them.

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

use crate::TestApp;

/// Where the problem types of Keel's answers live (RFC 9457 `type`).
pub const PROBLEMS: &str = "https://keel.dev/problems/";

/// One answer: its status, headers, text, and the text as JSON (`Null` when it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Reply {
    /// Asserts the status and returns the body.
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        &self.body
    }

    /// Asserts a 2xx status and returns the body.
    pub fn success(&self) -> &Value {
        assert!(self.status.is_success(), "{}: {}", self.status, self.text);
        &self.body
    }

    /// Asserts a problem+json answer of `status` whose type is `slug`; returns the body.
    pub fn problem(&self, status: u16, slug: &str) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/problem+json"),
            "{content_type}: {}",
            self.text
        );
        assert_eq!(
            self.body["type"],
            format!("{PROBLEMS}{slug}"),
            "{}",
            self.text
        );
        assert_eq!(self.body["status"], status, "{}", self.text);
        &self.body
    }

    /// 401: `unauthorized` with a bare `Bearer` challenge when no token was sent,
    /// `invalid-token` with `error="invalid_token"` when one was (RFC 6750 §3.1).
    pub fn unauthorized(&self) {
        assert_eq!(self.status, 401, "{}", self.text);
        let challenge = self.header("www-authenticate");
        if self.body["type"] == format!("{PROBLEMS}unauthorized") {
            assert_eq!(challenge, Some("Bearer"), "{:?}", self.headers);
        } else {
            self.problem(401, "invalid-token");
            assert_eq!(
                challenge,
                Some("Bearer error=\"invalid_token\""),
                "{:?}",
                self.headers
            );
        }
    }

    /// The fields named by a validation problem's `errors`.
    pub fn fields(&self) -> std::collections::BTreeSet<String> {
        let errors = self.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("errors: {}", self.text));
        errors
            .iter()
            .map(|e| match e["field"].as_str() {
                Some(field) => field.to_string(),
                None => panic!("an error without a field: {}", self.text),
            })
            .collect()
    }

    /// Asserts a problem+json of this answer's status with a type, title, detail and request id,
    /// that quotes none of `secrets`.
    pub fn well_formed_problem(&self, secrets: &[&str]) {
        let (status, text) = (self.status.as_u16(), &self.text);
        for secret in secrets {
            assert!(!text.contains(secret), "a secret in a {status}: {text}");
        }
        let kind = self.header("content-type").unwrap_or_default();
        assert!(
            kind.starts_with("application/problem+json"),
            "{status} is {kind:?}: {text}"
        );
        let problem = &self.body;
        assert_eq!(problem["status"], status, "{text}");
        assert!(
            problem["type"]
                .as_str()
                .is_some_and(|t| t.starts_with(PROBLEMS)),
            "{text}"
        );
        assert!(
            problem["title"].is_string() && problem["detail"].is_string(),
            "{text}"
        );
        assert!(
            problem["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "{text}"
        );
    }

    /// A header as text, when present and ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `request`; panics when no answer comes (the test fails with the reason).
pub async fn send(request: RequestBuilder) -> Reply {
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => panic!("request: {e}"),
    };
    let (status, headers) = (response.status(), response.headers().clone());
    let text = match response.text().await {
        Ok(text) => text,
        Err(e) => panic!("{status}: cannot read the body: {e}"),
    };
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        body,
    }
}

/// `method path` with the app's `ADMIN_TOKEN` as bearer and `body` as JSON. Every 4xx or 5xx
/// must be a well-formed problem that quotes none of the app's secrets.
pub async fn admin(app: &TestApp, method: Method, path: &str, body: Option<&Value>) -> Reply {
    let Some(token) = app.admin_token() else {
        panic!("{method} {path}: the test app has no ADMIN_TOKEN");
    };
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let reply = send(request).await;
    if reply.status.as_u16() >= 400 {
        let secrets: Vec<&str> = app.secrets().collect();
        reply.well_formed_problem(&secrets);
    }
    reply
}
