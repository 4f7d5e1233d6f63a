//! `keel bench http-serve`: Keel serving `GET /v1/me` with RS256 tokens, for an external load
//! generator. A key is generated for the run; the instance is the one `keel bench http` measures
//! (SQLite in a temporary directory, the full edge stack; `GET /v1/me` under a rate-limit policy
//! far above what one machine sends, in place of the default policy's 300 a minute, so every
//! request is checked and none refused). One JSON line on stdout says where it listens, a valid token, and the public key and
//! claims a peer needs to verify the same token, and where the bare route (the same handler
//! without the edge stack, on Keel's accept loop) listens; it serves until SIGINT or SIGTERM.

use axum::routing::get;
use axum::Router;
use serde::Serialize;

use super::instance::Instance;
use super::issuer::{self, Issuer};
use super::{bare_server, limits_config, BARE, ME, TRIVIAL};

/// What a load generator and a peer server need.
#[derive(Debug, Clone, Serialize)]
pub struct Serving {
    /// `GET` this with `Authorization: Bearer <token>`.
    pub url: String,
    pub token: String,
    /// The token's `sub`, which `/v1/me` answers as `user_id`.
    pub subject: String,
    pub issuer: String,
    pub audience: String,
    /// The public half of the signing key, PEM (SubjectPublicKeyInfo).
    pub public_key_pem: String,
    /// The trivial handler with no edge stack, on a port of its own: what the stack costs is
    /// the difference between this and the trivial route.
    pub bare_url: String,
    pub pid: u32,
}

const SUBJECT: &str = "bench-user";

/// Starts the issuer and the instance, checks the token against `/v1/me`, calls `ready` with
/// what a client needs, and serves until `stop` resolves.
pub async fn run(
    ready: impl FnOnce(&Serving),
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let issuer = Issuer::start().await?;
    let limits = tempfile::tempdir().map_err(|e| e.to_string())?;
    let routes = Router::new().route(TRIVIAL, get(|| async { "ok" }));
    let env = [
        ("AUTH_JWKS_URL", issuer.jwks_url()),
        ("AUTH_ISSUER", issuer.issuer()),
        ("AUTH_AUDIENCE", issuer::AUDIENCE.to_string()),
        ("KEEL_CONFIG", limits_config(limits.path(), "bench")?),
    ];
    let app = Instance::start(&env, routes).await?;
    let bare = bare_server().await?;
    let token = issuer.token(SUBJECT)?;
    let answer = reqwest::Client::new()
        .get(app.url(ME))
        .bearer_auth(&token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if answer.status() != 200 {
        let _ = app.shutdown().await;
        return Err(format!(
            "GET /v1/me answered {} with the bench token",
            answer.status()
        ));
    }
    ready(&Serving {
        url: app.url(ME),
        token,
        subject: SUBJECT.to_string(),
        issuer: issuer.issuer(),
        audience: issuer::AUDIENCE.to_string(),
        public_key_pem: issuer.public_key_pem().to_string(),
        bare_url: format!("http://{bare}{BARE}"),
        pid: std::process::id(),
    });
    stop.await;
    app.shutdown().await
}
