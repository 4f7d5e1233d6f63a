//! The issuer's signing keys, fetched from its JWKS URL and cached by key id.
//!
//! - fetched at start, then again when the issuer's `Cache-Control: max-age` runs out (clamped to
//!   1 minute … 1 day), or every 10 minutes without one;
//! - a token naming an unknown `kid` triggers a fetch at most once a minute (key rotation);
//! - when the issuer cannot be reached, the keys already held keep verifying;
//! - each key verifies only its own algorithm: RSA → RS256, P-256 → ES256, Ed25519 → EdDSA.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};

use super::jws::VerifyingKey;
use super::Reason;

const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);
const MIN_MAX_AGE: Duration = Duration::from_secs(60);
const MAX_MAX_AGE: Duration = Duration::from_secs(86_400);
const UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(60);
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);
const MAX_KEYS: usize = 100;

#[derive(Debug, Default)]
struct State {
    keys: HashMap<String, Arc<VerifyingKey>>,
    fetched_at: Option<Instant>,
    max_age: Option<Duration>,
    unknown_kid_fetch_at: Option<Instant>,
    last_error: Option<String>,
}

/// What readiness and `/health/deep` report about the keys.
#[derive(Debug, Clone, Serialize)]
pub struct KeysStatus {
    pub loaded: bool,
    pub keys: usize,
    pub age_s: Option<u64>,
    pub fresh: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug)]
pub struct KeyStore {
    url: String,
    client: reqwest::Client,
    state: RwLock<State>,
    fetching: Mutex<()>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Value>,
}

impl KeyStore {
    pub fn new(url: String) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("cannot build the JWKS client: {e}"))?;
        Ok(Self {
            url,
            client,
            state: RwLock::new(State::default()),
            fetching: Mutex::new(()),
        })
    }

    /// The key named `kid` (or the only key, for a token without `kid`).
    pub async fn key(&self, kid: Option<&str>) -> Result<Arc<VerifyingKey>, Reason> {
        if let Some(key) = self.lookup(kid).await? {
            return Ok(key);
        }
        let may_fetch = {
            let mut state = self.state.write().await;
            let due = state
                .unknown_kid_fetch_at
                .is_none_or(|at| at.elapsed() >= UNKNOWN_KID_INTERVAL);
            if due {
                state.unknown_kid_fetch_at = Some(Instant::now());
            }
            due
        };
        if may_fetch {
            let _ = self.refresh().await;
            if let Some(key) = self.lookup(kid).await? {
                return Ok(key);
            }
        }
        if self.state.read().await.fetched_at.is_none() {
            Err(Reason::Unavailable)
        } else {
            Err(Reason::UnknownKey)
        }
    }

    async fn lookup(&self, kid: Option<&str>) -> Result<Option<Arc<VerifyingKey>>, Reason> {
        let state = self.state.read().await;
        Ok(match kid {
            Some(kid) => state.keys.get(kid).cloned(),
            None if state.keys.len() == 1 => state.keys.values().next().cloned(),
            None if state.keys.is_empty() => None,
            None => return Err(Reason::Malformed),
        })
    }

    /// Fetches the key set now; on failure the keys held stay in use.
    pub async fn refresh(&self) -> Result<usize, String> {
        let _one_at_a_time = self.fetching.lock().await;
        match self.fetch().await {
            Ok((keys, max_age)) => {
                let mut state = self.state.write().await;
                let count = keys.len();
                state.keys = keys;
                state.fetched_at = Some(Instant::now());
                state.max_age = max_age;
                state.last_error = None;
                tracing::debug!(keys = count, "JWKS refreshed");
                Ok(count)
            }
            Err(e) => {
                tracing::warn!(error = %e, "JWKS fetch failed; the keys held stay in use");
                self.state.write().await.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    async fn fetch(
        &self,
    ) -> Result<(HashMap<String, Arc<VerifyingKey>>, Option<Duration>), String> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| format!("JWKS request failed: {}", without_url(&e)))?;
        if !response.status().is_success() {
            return Err(format!("JWKS answered {}", response.status()));
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let set: JwkSet = response
            .json()
            .await
            .map_err(|_| "JWKS is not a JSON key set".to_string())?;
        let mut keys = HashMap::new();
        for (i, jwk) in set.keys.iter().take(MAX_KEYS).enumerate() {
            if let Some(key) = parse_jwk(jwk) {
                let kid = jwk
                    .get("kid")
                    .and_then(|k| k.as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("#{i}"));
                keys.insert(kid, Arc::new(key));
            }
        }
        if keys.is_empty() {
            return Err("JWKS holds no usable signing key".into());
        }
        Ok((keys, max_age))
    }

    /// How long until the keys should be fetched again.
    async fn next_refresh(&self) -> Duration {
        let state = self.state.read().await;
        match (state.fetched_at, &state.last_error) {
            (None, _) | (_, Some(_)) => RETRY_AFTER_FAILURE,
            (Some(_), None) => state.max_age.unwrap_or(DEFAULT_MAX_AGE),
        }
    }

    /// Fetches now and then on schedule, until the returned task is aborted.
    pub fn spawn_refresher(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let _ = self.refresh().await;
                tokio::time::sleep(self.next_refresh().await).await;
            }
        })
    }

    pub async fn status(&self) -> KeysStatus {
        let state = self.state.read().await;
        let age = state.fetched_at.map(|at| at.elapsed());
        let max_age = state.max_age.unwrap_or(DEFAULT_MAX_AGE);
        KeysStatus {
            loaded: !state.keys.is_empty(),
            keys: state.keys.len(),
            age_s: age.map(|a| a.as_secs()),
            fresh: age.is_some_and(|a| a <= max_age + RETRY_AFTER_FAILURE * 2),
            last_error: state.last_error.clone(),
        }
    }
}

fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        "request error".into()
    }
}

fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control
        .split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).clamp(MIN_MAX_AGE, MAX_MAX_AGE))
}

fn b64(jwk: &serde_json::Value, field: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(jwk.get(field)?.as_str()?).ok()
}

/// A signing key of a supported kind, or `None` (encryption keys, other curves, other algorithms).
fn parse_jwk(jwk: &serde_json::Value) -> Option<VerifyingKey> {
    if jwk
        .get("use")
        .and_then(|u| u.as_str())
        .is_some_and(|u| u != "sig")
    {
        return None;
    }
    let alg = jwk.get("alg").and_then(|a| a.as_str());
    let crv = jwk.get("crv").and_then(|c| c.as_str());
    match (jwk.get("kty")?.as_str()?, crv) {
        ("RSA", _) if alg.is_none_or(|a| a == "RS256") => {
            let n = b64(jwk, "n")?;
            let first = n.iter().position(|b| *b != 0)?;
            Some(VerifyingKey::Rs256 {
                n: n[first..].to_vec(),
                e: b64(jwk, "e")?,
            })
        }
        ("EC", Some("P-256")) if alg.is_none_or(|a| a == "ES256") => {
            let (x, y) = (b64(jwk, "x")?, b64(jwk, "y")?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut point = vec![4u8];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Some(VerifyingKey::Es256(point))
        }
        ("OKP", Some("Ed25519")) if alg.is_none_or(|a| a == "EdDSA") => {
            let x = b64(jwk, "x")?;
            (x.len() == 32).then_some(VerifyingKey::EdDsa(x))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_max_age() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(max_age("max-age=5"), Some(MIN_MAX_AGE));
        assert_eq!(max_age("no-store"), None);
    }

    #[test]
    fn keys_are_pinned_to_their_algorithm() {
        let rsa = serde_json::json!({"kty":"RSA","n":"AQAB","e":"AQAB","alg":"RS256"});
        assert_eq!(parse_jwk(&rsa).map(|k| k.alg()), Some("RS256"));
        let rsa_other = serde_json::json!({"kty":"RSA","n":"AQAB","e":"AQAB","alg":"RS512"});
        assert!(parse_jwk(&rsa_other).is_none());
        let enc = serde_json::json!({"kty":"RSA","n":"AQAB","e":"AQAB","use":"enc"});
        assert!(parse_jwk(&enc).is_none());
        let oct = serde_json::json!({"kty":"oct","k":"c2VjcmV0"});
        assert!(
            parse_jwk(&oct).is_none(),
            "a symmetric key from a JWKS never verifies anything"
        );
    }
}
