//! The benchmark's token issuer: an RSA-2048 key made when the run starts (no key is stored in
//! the binary), its public half served as a JWKS on a local port, and RS256 tokens signed with it.
//! The `rsa` crate generates the key, which ring cannot; ring signs, as it verifies in Keel.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use tokio::sync::oneshot;

const JWKS_PATH: &str = "/.well-known/jwks.json";
const KID: &str = "bench-rsa";
const BITS: usize = 2048;
/// The `aud` of every token, to configure as `AUTH_AUDIENCE`.
pub const AUDIENCE: &str = "keel-bench";
/// How long a token stays valid.
const TOKEN_SECONDS: u64 = 3600;

/// A running issuer; dropping it stops its JWKS server.
pub struct Issuer {
    key: RsaKeyPair,
    /// The public key as PEM (SubjectPublicKeyInfo), for verifiers configured with a key.
    public_pem: String,
    rng: SystemRandom,
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Issuer {
    /// Generates the key and serves `GET /.well-known/jwks.json` on 127.0.0.1 and a free port.
    pub async fn start() -> Result<Issuer, String> {
        let (key, jwk, public_pem) = tokio::task::spawn_blocking(generate)
            .await
            .map_err(|e| e.to_string())??;
        let jwks = json!({ "keys": [jwk] });
        let router = Router::new().route(
            JWKS_PATH,
            get(move || {
                let jwks = jwks.clone();
                async move { Json(jwks) }
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| format!("cannot bind the issuer's port: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Issuer {
            key,
            public_pem,
            rng: SystemRandom::new(),
            addr,
            _stop: stop,
        })
    }

    /// To configure as `AUTH_JWKS_URL`.
    pub fn jwks_url(&self) -> String {
        format!("http://{}{JWKS_PATH}", self.addr)
    }

    /// The `iss` of every token, to configure as `AUTH_ISSUER`.
    pub fn issuer(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The public key, PEM-encoded (`-----BEGIN PUBLIC KEY-----`).
    pub fn public_key_pem(&self) -> &str {
        &self.public_pem
    }

    /// A valid RS256 token for `sub`, good for an hour.
    pub fn token(&self, sub: &str) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": KID });
        let claims = json!({
            "sub": sub,
            "iss": self.issuer(),
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_SECONDS,
        });
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "cannot sign the bench token".to_string())?;
        Ok(format!("{input}.{}", b64(&signature)))
    }
}

/// A fresh RSA key pair for ring, its public JWK and its public key as PEM.
fn generate() -> Result<(RsaKeyPair, Value, String), String> {
    let private = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, BITS)
        .map_err(|e| format!("cannot generate an RSA key: {e}"))?;
    let jwk = json!({
        "kty": "RSA",
        "kid": KID,
        "use": "sig",
        "alg": "RS256",
        "n": b64(&private.n().to_bytes_be()),
        "e": b64(&private.e().to_bytes_be()),
    });
    let der = private
        .to_pkcs8_der()
        .map_err(|e| format!("cannot encode the RSA key: {e}"))?;
    let key = RsaKeyPair::from_pkcs8(der.as_bytes())
        .map_err(|e| format!("the generated RSA key is rejected: {e}"))?;
    let public = private
        .to_public_key()
        .to_public_key_der()
        .map_err(|e| format!("cannot encode the RSA public key: {e}"))?;
    Ok((key, jwk, pem("PUBLIC KEY", public.as_bytes())))
}

/// `der` in a PEM block labelled `label`, 64 characters a line.
fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
