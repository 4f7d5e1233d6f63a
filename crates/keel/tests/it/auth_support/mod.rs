//! Helpers for the token authentication tests: apps wired to a fake identity provider, requests
//! with arbitrary `Authorization` headers, and checks that every refusal is a 401 problem with
//! the right challenge that quotes neither the token nor any of its claims.

#![allow(dead_code)]

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use keel_testkit::{FakeIdp, TestApp, TestAppBuilder, TestDb};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::RequestBuilder;
use serde_json::Value;

pub use keel_testkit::{Alg, KeyId};

pub const PROBLEMS: &str = "https://keel.dev/problems/";
pub const AUDIENCE: &str = "keel-test";
/// An HS256 secret of the required length, and another one.
pub const HS_SECRET: &str = "hs256-secret-for-tests-0123456789abcdef";
pub const OTHER_SECRET: &str = "another-hs256-secret-0123456789abcdefgh";

/// Unix seconds now.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An app that verifies the fake issuer's tokens (JWKS, issuer and audience set).
pub fn idp_app(db: TestDb, idp: &FakeIdp) -> TestAppBuilder {
    TestApp::builder(db)
        .env("AUTH_JWKS_URL", &idp.jwks_url())
        .env("AUTH_ISSUER", &idp.issuer())
        .env("AUTH_AUDIENCE", AUDIENCE)
}

/// `claims` with `changes` merged in (a `null` removes the claim).
pub fn with(mut claims: Value, changes: Value) -> Value {
    let map = claims.as_object_mut().expect("claims are an object");
    for (k, v) in changes.as_object().expect("changes are an object") {
        if v.is_null() {
            map.remove(k);
        } else {
            map.insert(k.clone(), v.clone());
        }
    }
    claims
}

/// What a refusal must never contain: the token, its segments, and every claim value of some
/// length (strings and numbers, nested ones included).
pub fn secrets_of(token: &str, claims: &Value) -> Vec<String> {
    let mut out = vec![token.to_string()];
    out.extend(
        token
            .split('.')
            .filter(|s| s.len() >= 8)
            .map(|s| s[..s.len().min(64)].to_string()),
    );
    collect(claims, &mut out);
    out.retain(|s| s.len() >= 4);
    out
}

fn collect(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect(v, out)),
        _ => {}
    }
}

/// The challenge a refusal must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// No bearer token was sent: `Bearer` (RFC 6750 §3.1: no error code).
    NoToken,
    /// A token was sent: `Bearer error="invalid_token"`.
    Invalid,
    /// Either of the two (requests whose classification is a judgement call).
    Either,
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        &self.body
    }

    /// A well-formed problem of `status` and type `…/slug`.
    pub fn problem(&self, status: u16, slug: &str) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        let kind = self.header("content-type").unwrap_or("");
        assert!(
            kind.starts_with("application/problem+json"),
            "{status} is {kind:?}: {}",
            self.text
        );
        assert_eq!(
            self.body["type"],
            format!("{PROBLEMS}{slug}"),
            "{}",
            self.text
        );
        assert_eq!(self.body["status"], status, "{}", self.text);
        assert!(
            self.body["title"].is_string() && self.body["detail"].is_string(),
            "{}",
            self.text
        );
        &self.body
    }

    /// 401 problem with `challenge`, quoting none of `secrets` in its body or headers.
    pub fn refused(&self, challenge: Challenge, secrets: &[String], what: &str) {
        assert_eq!(self.status, 401, "{what}: {}", self.text);
        let kind = self.header("content-type").unwrap_or("");
        assert!(
            kind.starts_with("application/problem+json"),
            "{what}: {kind:?}"
        );
        assert_eq!(self.body["status"], 401, "{what}: {}", self.text);
        let slug = self.body["type"].as_str().unwrap_or("");
        assert!(
            slug.starts_with(PROBLEMS),
            "{what}: problem type {}",
            self.text
        );
        let values: Vec<_> = self.headers.get_all("www-authenticate").iter().collect();
        assert_eq!(values.len(), 1, "{what}: one challenge: {:?}", self.headers);
        let got = values[0].to_str().unwrap_or("");
        let bare = "Bearer";
        let invalid = "Bearer error=\"invalid_token\"";
        match challenge {
            Challenge::NoToken => assert_eq!(got, bare, "{what}: no token was sent"),
            Challenge::Invalid => assert_eq!(got, invalid, "{what}: a token was sent"),
            Challenge::Either => assert!(got == bare || got == invalid, "{what}: {got}"),
        }
        self.quotes_none(secrets, what);
    }

    pub fn quotes_none(&self, secrets: &[String], what: &str) {
        for secret in secrets {
            assert!(
                !self.text.contains(secret.as_str()),
                "{what}: the body quotes {secret:?}: {}",
                self.text
            );
            for (name, value) in &self.headers {
                let value = String::from_utf8_lossy(value.as_bytes());
                assert!(
                    !value.contains(secret.as_str()),
                    "{what}: header {name} quotes {secret:?}"
                );
            }
        }
    }
}

pub async fn send(request: RequestBuilder) -> Resp {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        text,
        body,
    }
}

/// GET `path` with these raw `Authorization` header values (none, one or several).
pub async fn get_with(app: &TestApp, path: &str, auth: &[HeaderValue]) -> Resp {
    let mut request = app.client.get(app.url(path));
    for value in auth {
        request = request.header(AUTHORIZATION, value.clone());
    }
    send(request).await
}

/// GET `path` with `Authorization: Bearer <token>`.
pub async fn get_as(app: &TestApp, path: &str, token: &str) -> Resp {
    send(app.client.get(app.url(path)).bearer_auth(token)).await
}

/// A header value from text (panics on characters no header can hold).
pub fn hv(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("a valid header value")
}

pub fn bearer(token: &str) -> HeaderValue {
    hv(&format!("Bearer {token}"))
}

/// `GET /v1/me` as `token`, which must be accepted.
pub async fn me(app: &TestApp, token: &str) -> Value {
    get_as(app, "/v1/me", token).await.ok(200).clone()
}

/// `keel_auth_failures_total` by reason, from `GET /metrics`.
pub async fn failures(app: &TestApp) -> HashMap<String, u64> {
    let r = send(app.client.get(app.url("/metrics"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.text
        .lines()
        .filter_map(|line| line.strip_prefix("keel_auth_failures_total{reason=\""))
        .filter_map(|rest| {
            let (reason, count) = rest.split_once("\"} ")?;
            Some((reason.to_string(), count.trim().parse().ok()?))
        })
        .collect()
}

// The attack matrix: cases, each run on both routes.

pub const SUB: &str = "attacker-7f3a9c";
pub const ROUTES: [&str; 2] = ["/v1/me", "/v1/auth/check"];

pub enum Expect {
    Accepted,
    Refused(Challenge),
    /// Either answer is defensible; a 5xx is not.
    AcceptedOrRefused,
}

pub struct Case {
    pub name: String,
    pub auth: Vec<HeaderValue>,
    pub expect: Expect,
    pub secrets: Vec<String>,
}

pub fn raw(name: &str, auth: Vec<HeaderValue>, expect: Expect) -> Case {
    let secrets = auth
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .filter(|s| s.len() >= 8)
        .collect();
    Case {
        name: name.into(),
        auth,
        expect,
        secrets,
    }
}

/// A case sending `Bearer <token>` once, signed over `claims`.
pub fn tok(name: &str, token: String, claims: &Value, expect: Expect) -> Case {
    Case {
        name: name.into(),
        auth: vec![bearer(&token)],
        expect,
        secrets: secrets_of(&token, claims),
    }
}

pub fn refused(name: &str, token: String, claims: &Value) -> Case {
    tok(name, token, claims, Expect::Refused(Challenge::Invalid))
}

pub fn accepted(name: &str, token: String, claims: &Value) -> Case {
    tok(name, token, claims, Expect::Accepted)
}

/// Every case on both routes: accepted ones answer the caller, refused ones a clean 401.
pub async fn run(app: &TestApp, cases: &[Case]) {
    let failed = run_all(app, cases).await;
    assert!(
        failed.is_empty(),
        "{} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// Runs every case and names the ones that failed.
pub async fn run_all(app: &TestApp, cases: &[Case]) -> Vec<String> {
    let mut failed = Vec::new();
    for case in cases {
        for path in ROUTES {
            let r = get_with(app, path, &case.auth).await;
            let what = format!("{} on {path}", case.name);
            let check = || match case.expect {
                Expect::Accepted if path == "/v1/me" => {
                    assert_eq!(r.status, 200, "{what}: {}", r.text);
                    assert_eq!(r.body["user_id"], SUB, "{what}");
                }
                Expect::Accepted => {
                    assert_eq!(r.status, 200, "{what}: {}", r.text);
                    assert_eq!(r.header("x-user-id"), Some(SUB), "{what}");
                }
                Expect::Refused(challenge) => r.refused(challenge, &case.secrets, &what),
                Expect::AcceptedOrRefused if r.status == 401 => {
                    r.refused(Challenge::Invalid, &case.secrets, &what)
                }
                Expect::AcceptedOrRefused => assert_eq!(r.status, 200, "{what}: {}", r.text),
            };
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)).is_err() {
                failed.push(format!(
                    "{what} ({} {})",
                    r.status,
                    r.header("www-authenticate").unwrap_or("-")
                ));
            }
        }
    }
    failed
}

/// The token with its payload replaced by `claims`, header and signature kept.
pub fn tampered(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{}.{payload}.{}", parts[0], parts[2])
}
