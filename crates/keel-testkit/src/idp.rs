//! A fake OpenID-style identity provider: a JWKS endpoint served over real HTTP, and a signer
//! that mints tokens (valid or deliberately broken) with fixed test keys.
//!
//! ```ignore
//! let idp = keel_testkit::FakeIdp::start().await;
//! let token = idp.token(&idp.claims("user-1"));          // RS256, kid "rsa-1"
//! idp.publish(&[KeyId::Rsa2]);                            // rotate the JWKS
//! idp.set_down(true);                                     // JWKS answers 503
//! ```

mod jws;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::fake_server::{self, FakeServer};

/// The JWKS path the fake serves.
const JWKS_PATH: &str = "/.well-known/jwks.json";

/// One of the embedded test keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyId {
    /// RSA 2048, kid `rsa-1`.
    Rsa1,
    /// RSA 2048, kid `rsa-2`.
    Rsa2,
    /// P-256, kid `ec-1`.
    Ec1,
    /// Ed25519, kid `ed-1`.
    Ed1,
}

impl KeyId {
    /// The `kid` this key carries in the JWKS and in default token headers.
    pub fn kid(self) -> &'static str {
        match self {
            KeyId::Rsa1 => "rsa-1",
            KeyId::Rsa2 => "rsa-2",
            KeyId::Ec1 => "ec-1",
            KeyId::Ed1 => "ed-1",
        }
    }

    /// The key's entry in `keys/public.json`.
    fn file_stem(self) -> &'static str {
        match self {
            KeyId::Rsa1 => "rsa1",
            KeyId::Rsa2 => "rsa2",
            KeyId::Ec1 => "ec1",
            KeyId::Ed1 => "ed1",
        }
    }
}

/// How a token is signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, with the given RSA key (`Rs256(KeyId::Ec1)` panics).
    Rs256(KeyId),
    /// ECDSA P-256 with SHA-256 (fixed 64-byte r||s), with [`KeyId::Ec1`].
    Es256,
    /// Ed25519, with [`KeyId::Ed1`].
    EdDsa,
    /// HMAC-SHA-256 with the given secret.
    Hs256(Vec<u8>),
    /// No signature at all: `header.claims.` (the `alg: none` attack).
    None,
}

impl Alg {
    /// The JWS `alg` header value.
    pub fn name(&self) -> &'static str {
        match self {
            Alg::Rs256(_) => "RS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
            Alg::Hs256(_) => "HS256",
            Alg::None => "none",
        }
    }
}

/// What the JWKS endpoint serves; shared with the server task.
struct Shared {
    state: Mutex<JwksState>,
    fetches: AtomicUsize,
}

struct JwksState {
    published: Vec<KeyId>,
    max_age: Option<u64>,
    down: bool,
}

struct Inner {
    shared: Arc<Shared>,
    /// Dropping it (with the last handle) shuts the server down.
    server: FakeServer,
}

/// A running fake identity provider. Cloning gives another handle to the same server; the
/// server stops when the last handle is dropped (or when the test runtime ends).
#[derive(Clone)]
pub struct FakeIdp {
    inner: Arc<Inner>,
}

impl FakeIdp {
    /// Binds `127.0.0.1:0` and serves `GET /.well-known/jwks.json` on the current tokio runtime.
    /// The JWKS initially lists `rsa-1`, `ec-1`, `ed-1`, with no `Cache-Control` header.
    /// Starts the fake on a free port; panics if none can be bound (a test harness).
    pub async fn start() -> FakeIdp {
        match Self::try_start().await {
            Ok(idp) => idp,
            Err(e) => panic!("cannot start the fake IdP: {e}"),
        }
    }

    /// Starts the fake on a free port.
    pub async fn try_start() -> std::io::Result<FakeIdp> {
        let shared = Arc::new(Shared {
            state: Mutex::new(JwksState {
                published: vec![KeyId::Rsa1, KeyId::Ec1, KeyId::Ed1],
                max_age: None,
                down: false,
            }),
            fetches: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route(JWKS_PATH, get(serve_jwks))
            .with_state(shared.clone());
        let server = fake_server::start(router).await?;
        Ok(FakeIdp {
            inner: Arc::new(Inner { shared, server }),
        })
    }

    /// `http://127.0.0.1:PORT/.well-known/jwks.json`.
    pub fn jwks_url(&self) -> String {
        format!("http://{}{JWKS_PATH}", self.inner.server.addr)
    }

    /// `http://127.0.0.1:PORT/`, the `iss` of [`FakeIdp::claims`].
    pub fn issuer(&self) -> String {
        format!("http://{}/", self.inner.server.addr)
    }

    /// Which public keys the JWKS lists, in this order (default: `Rsa1, Ec1, Ed1`).
    pub fn publish(&self, keys: &[KeyId]) {
        self.state().published = keys.to_vec();
    }

    /// `Cache-Control: max-age=N` on JWKS responses; `None` (default) sends no such header.
    pub fn set_max_age(&self, secs: Option<u64>) {
        self.state().max_age = secs;
    }

    /// While down, the JWKS answers 503; the server stays bound, so the URL does not change.
    pub fn set_down(&self, down: bool) {
        self.state().down = down;
    }

    /// How many JWKS requests were answered with 200.
    pub fn fetches(&self) -> usize {
        self.inner.shared.fetches.load(Ordering::SeqCst)
    }

    /// Valid default claims: `sub`, `iss` = [`FakeIdp::issuer`], `aud` = `keel-test`, `iat` and
    /// `nbf` now, `exp` in ten minutes.
    pub fn claims(&self, sub: &str) -> Value {
        let now = now();
        json!({
            "sub": sub,
            "iss": self.issuer(),
            "aud": "keel-test",
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        })
    }

    /// A valid token: RS256 with `rsa-1`, kid `rsa-1`.
    pub fn token(&self, claims: &Value) -> String {
        self.sign(Alg::Rs256(KeyId::Rsa1), Some(KeyId::Rsa1.kid()), claims)
    }

    /// Signs `claims` with header `{"alg", "typ": "JWT", "kid"?}`; `kid` is whatever is given,
    /// so it may deliberately disagree with the signing key.
    pub fn sign(&self, alg: Alg, kid: Option<&str>, claims: &Value) -> String {
        let mut header = json!({ "alg": alg.name(), "typ": "JWT" });
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        jws::compact(&header, claims, &alg)
    }

    /// Signs with `alg` under an arbitrary header (nothing in it is checked or added).
    /// `Alg::None` gives an empty signature: `header.claims.`.
    pub fn sign_with_header(&self, header: &Value, claims: &Value, alg: Alg) -> String {
        jws::compact(header, claims, &alg)
    }

    /// The public JWK of `key`, exactly as the JWKS lists it.
    pub fn jwk(key: KeyId) -> Value {
        jws::jwk(key)
    }

    /// The public key derived from `key`'s embedded private key (RSA: PKCS#1 DER; P-256: the
    /// uncompressed point; Ed25519: the 32 bytes), to check the published JWK against.
    pub fn derived_public_key(key: KeyId) -> Vec<u8> {
        jws::derived_public_key(key)
    }

    /// The RSA public key as PKCS#1 DER (`RSAPublicKey ::= SEQUENCE { n, e }`), e.g. as the
    /// HMAC secret of the "HS256 signed with the RSA public key" attack. Panics for non-RSA keys.
    pub fn rsa_public_key_der(key: KeyId) -> Vec<u8> {
        jws::rsa_public_key_der(key)
    }

    fn state(&self) -> MutexGuard<'_, JwksState> {
        lock(&self.inner.shared)
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, JwksState> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970") // invariant: the system clock is after 1970
        .as_secs()
}

async fn serve_jwks(State(shared): State<Arc<Shared>>) -> Response {
    let state = lock(&shared);
    if state.down {
        return (StatusCode::SERVICE_UNAVAILABLE, "identity provider is down").into_response();
    }
    let keys: Vec<Value> = state.published.iter().map(|&k| jws::jwk(k)).collect();
    let max_age = state.max_age;
    drop(state);
    let mut response = Json(json!({ "keys": keys })).into_response();
    if let Some(secs) = max_age {
        let value = HeaderValue::from_str(&format!("max-age={secs}")).expect("valid header"); // invariant: a number is a valid header value
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    shared.fetches.fetch_add(1, Ordering::SeqCst);
    response
}
