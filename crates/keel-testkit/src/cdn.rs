//! A CDN in front of a directory: `GET /KEY` answers the file at `KEY`. A request carrying a
//! CloudFront signature (`Expires`, `Signature`, `Key-Pair-Id`) is checked as CloudFront checks a
//! canned policy — RSA-SHA1 over the policy of this URL, under the key pair's public key, before
//! the deadline — and refused with 403 otherwise; unsigned requests are public.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use sha1::Sha1;

use crate::fake_server::{self, FakeServer};

/// A running CDN; dropping it stops it.
#[derive(Debug)]
pub struct StaticFiles {
    server: FakeServer,
}

struct Origin {
    dir: PathBuf,
    /// Key pair id → its public key.
    keys: HashMap<String, VerifyingKey<Sha1>>,
}

impl StaticFiles {
    /// Serves `dir`, accepting no signature.
    pub async fn serve(dir: &Path) -> StaticFiles {
        Self::start(dir, HashMap::new()).await
    }

    /// Serves `dir`, accepting CloudFront signatures of `key_id` under `public_key`.
    pub async fn serve_signed(dir: &Path, key_id: &str, public_key: RsaPublicKey) -> StaticFiles {
        let keys = HashMap::from([(key_id.to_string(), VerifyingKey::<Sha1>::new(public_key))]);
        Self::start(dir, keys).await
    }

    async fn start(dir: &Path, keys: HashMap<String, VerifyingKey<Sha1>>) -> StaticFiles {
        let origin = Arc::new(Origin {
            dir: dir.to_path_buf(),
            keys,
        });
        let router = Router::new().fallback(move |request: Request| {
            let origin = origin.clone();
            async move { origin.answer(request).await }
        });
        let server = fake_server::start(router)
            .await
            .unwrap_or_else(|e| panic!("static server: {e}"));
        StaticFiles { server }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }
}

impl Origin {
    async fn answer(&self, request: Request) -> Response {
        let path = request.uri().path().to_string();
        if let Some(query) = request.uri().query() {
            let host = request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            if !self.signed(&format!("http://{host}{path}"), query) {
                return StatusCode::FORBIDDEN.into_response();
            }
        }
        let relative = path.trim_start_matches('/');
        if relative.split('/').any(|s| s.is_empty() || s == "..") {
            return StatusCode::NOT_FOUND.into_response();
        }
        match tokio::fs::read(self.dir.join(relative)).await {
            Ok(bytes) => bytes.into_response(),
            Err(_) => StatusCode::NOT_FOUND.into_response(),
        }
    }

    /// Whether `query` holds a valid, unexpired canned-policy signature of `url`.
    fn signed(&self, url: &str, query: &str) -> bool {
        let params: HashMap<&str, &str> = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .collect();
        let (Some(expires), Some(signature), Some(key_id)) = (
            params.get("Expires").and_then(|e| e.parse::<i64>().ok()),
            params.get("Signature"),
            params.get("Key-Pair-Id"),
        ) else {
            return false;
        };
        let Some(key) = self.keys.get(*key_id) else {
            return false;
        };
        if chrono::Utc::now().timestamp() >= expires {
            return false;
        }
        let standard: String = signature
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '=',
                '~' => '/',
                c => c,
            })
            .collect();
        let Ok(bytes) = STANDARD.decode(standard) else {
            return false;
        };
        let Ok(signature) = Signature::try_from(bytes.as_slice()) else {
            return false;
        };
        let policy = format!(
            r#"{{"Statement":[{{"Resource":"{url}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}}}]}}"#
        );
        key.verify(policy.as_bytes(), &signature).is_ok()
    }
}
