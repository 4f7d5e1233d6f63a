//! Token verification: the configured verifiers (JWKS, HS256, development), the claim rules and
//! the cache of verified tokens, behind one `verify`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::cache::TokenCache;
use super::jwks::{KeyStore, KeysStatus};
use super::jws::{self, VerifyingKey};
use super::principal::Rules;
use super::{dev, AuthSettings, AuthStats, Principal, Reason};
use crate::clock::Clock;

#[derive(Debug, Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

/// The issuer of Whop user tokens.
pub const WHOP_ISSUER: &str = "urn:whopcom:exp-proxy";

/// Whop user tokens: ES256 only, from Whop's key set, for one app.
#[derive(Debug)]
struct WhopProfile {
    keys: Arc<KeyStore>,
    rules: Rules,
}

#[derive(Debug)]
struct Inner {
    hs256: Option<VerifyingKey>,
    jwks: Option<Arc<KeyStore>>,
    whop: Option<WhopProfile>,
    dev: Option<VerifyingKey>,
    rules: Rules,
    dev_rules: Rules,
    cache: TokenCache,
    stats: AuthStats,
    clock: Clock,
    refreshers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Verifier {
    /// The verifiers `auth` configures. Development tokens verify only with `AUTH_DEV_MODE` and a
    /// `dev_key_dir` (the data directory holding the development key), which the caller passes
    /// only in development.
    pub fn from_settings(
        auth: &AuthSettings,
        dev_key_dir: Option<&Path>,
        clock: Clock,
    ) -> Result<Self, String> {
        use secrecy::ExposeSecret;
        let rules = Rules {
            issuers: auth.issuers.clone(),
            audiences: auth.audiences.clone(),
            authorized_parties: auth.authorized_parties.clone(),
            leeway_s: auth.leeway.as_secs() as i64,
            required: auth.required_claims.clone(),
            tenant_claim: auth.tenant_claim.clone(),
            admin_user_ids: auth.admin_user_ids.iter().cloned().collect(),
        };
        let dev_rules = Rules {
            issuers: vec![],
            audiences: vec![],
            authorized_parties: vec![],
            ..rules.clone()
        };
        let dev = match dev_key_dir {
            Some(dir) if auth.dev_mode => Some(VerifyingKey::hs256(&dev::load_or_create(dir)?)),
            _ => None,
        };
        let jwks = match &auth.jwks_url {
            Some(url) => Some(Arc::new(KeyStore::new(url.clone())?)),
            None => None,
        };
        let whop = match &auth.whop_app_id {
            Some(app) => Some(WhopProfile {
                keys: Arc::new(KeyStore::new(auth.whop_jwks_url.clone())?),
                // As Whop's SDK checks them: that issuer, the app as the one audience, `exp`
                // without tolerance.
                rules: Rules {
                    issuers: vec![WHOP_ISSUER.to_string()],
                    audiences: vec![app.clone()],
                    authorized_parties: vec![],
                    leeway_s: 0,
                    required: vec!["sub".into(), "aud".into()],
                    ..rules.clone()
                },
            }),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                hs256: auth
                    .hs256_secret
                    .as_ref()
                    .map(|s| VerifyingKey::hs256(s.expose_secret().as_bytes())),
                jwks,
                whop,
                dev,
                rules,
                dev_rules,
                cache: TokenCache::default(),
                stats: AuthStats::default(),
                clock,
                refreshers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Starts fetching the issuers' keys in the background (once).
    pub fn start(&self) {
        let stores = self
            .inner
            .jwks
            .iter()
            .chain(self.inner.whop.iter().map(|w| &w.keys));
        if let Ok(mut refreshers) = self.inner.refreshers.lock() {
            if refreshers.is_empty() {
                refreshers.extend(stores.map(|keys| keys.clone().spawn_refresher()));
            }
        }
    }

    /// Stops the background fetching.
    pub fn stop(&self) {
        if let Ok(mut refreshers) = self.inner.refreshers.lock() {
            for task in refreshers.drain(..) {
                task.abort();
            }
        }
    }

    pub fn configured(&self) -> bool {
        self.inner.hs256.is_some()
            || self.inner.jwks.is_some()
            || self.inner.whop.is_some()
            || self.inner.dev.is_some()
    }

    pub fn stats(&self) -> &AuthStats {
        &self.inner.stats
    }

    pub fn cached_tokens(&self) -> usize {
        self.inner.cache.len()
    }

    /// The JWKS keys' state, when a JWKS URL is configured.
    pub async fn keys_status(&self) -> Option<KeysStatus> {
        match &self.inner.jwks {
            Some(jwks) => Some(jwks.status().await),
            None => None,
        }
    }

    /// The caller a bearer token names, or why it does not.
    pub async fn verify(&self, token: &str) -> Result<Arc<Principal>, Reason> {
        let result = self.verify_uncounted(token).await;
        match &result {
            Ok(_) => {}
            Err(reason) => self.inner.stats.failure(*reason),
        }
        result
    }

    /// The caller a bearer token names, like [`Verifier::verify`] except that a refusal is not
    /// counted: for layers that look at the caller before the handler runs (rate limiting), so
    /// that a refused token is counted once, by the handler that refuses it.
    pub async fn identify(&self, token: &str) -> Option<Arc<Principal>> {
        self.verify_uncounted(token).await.ok()
    }

    async fn verify_uncounted(&self, token: &str) -> Result<Arc<Principal>, Reason> {
        let inner = &self.inner;
        if token.len() > jws::MAX_TOKEN_BYTES {
            return Err(Reason::TooLarge);
        }
        let now = inner.clock.now().timestamp();
        let key = inner.cache.key(token);
        if let Some(principal) = inner.cache.get(&key, now) {
            inner.stats.verified(true);
            return Ok(principal);
        }
        let is_dev_token =
            |p: &jws::Token<'_>| p.alg == "HS256" && p.kid.as_deref() == Some(dev::DEV_KID);
        if !self.configured() {
            // No verifier accepts any algorithm: the token is refused, as a client error.
            return Err(match jws::parse(token) {
                Ok(parsed) if is_dev_token(&parsed) => Reason::DevTokenRefused,
                _ => Reason::UnsupportedAlgorithm,
            });
        }
        let parsed = jws::parse(token)?;
        if is_dev_token(&parsed) && inner.dev.is_none() {
            return Err(Reason::DevTokenRefused);
        }
        let issuer = parsed.claims.get("iss").and_then(|v| v.as_str());
        let principal = match &inner.whop {
            // A token Whop issued verifies only as one: ES256 under Whop's keys.
            Some(whop) if issuer == Some(WHOP_ISSUER) => {
                if parsed.alg != "ES256" {
                    return Err(Reason::UnsupportedAlgorithm);
                }
                // One app, as one string.
                if !parsed.claims.get("aud").is_some_and(|a| a.is_string()) {
                    return Err(Reason::WrongAudience);
                }
                let key = whop.keys.key(parsed.kid.as_deref()).await?;
                key.verify(&parsed)?;
                Principal {
                    whop_member: true,
                    ..whop.rules.principal(&parsed.claims, now, false)?
                }
            }
            _ => self.verify_configured(&parsed, now).await?,
        };
        let principal = Arc::new(principal);
        inner.cache.insert(key, principal.clone(), now);
        inner.stats.verified(false);
        Ok(principal)
    }

    /// A token checked by the verifier its algorithm (and `kid`) selects.
    async fn verify_configured(
        &self,
        parsed: &jws::Token<'_>,
        now: i64,
    ) -> Result<Principal, Reason> {
        let inner = &self.inner;
        let principal = match parsed.alg.as_str() {
            "HS256" if parsed.kid.as_deref() == Some(dev::DEV_KID) && inner.dev.is_some() => {
                let key = inner.dev.as_ref().ok_or(Reason::UnsupportedAlgorithm)?;
                key.verify(parsed)?;
                let admin = parsed.claims.get("keel_admin").and_then(|v| v.as_bool()) == Some(true);
                inner.dev_rules.principal(&parsed.claims, now, admin)?
            }
            "HS256" => {
                let key = inner.hs256.as_ref().ok_or(Reason::UnsupportedAlgorithm)?;
                key.verify(parsed)?;
                inner.rules.principal(&parsed.claims, now, false)?
            }
            "RS256" | "ES256" | "EdDSA" => {
                let jwks = inner.jwks.as_ref().ok_or(Reason::UnsupportedAlgorithm)?;
                let key = jwks.key(parsed.kid.as_deref()).await?;
                key.verify(parsed)?;
                inner.rules.principal(&parsed.claims, now, false)?
            }
            _ => return Err(Reason::UnsupportedAlgorithm),
        };
        Ok(principal)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut refreshers) = self.refreshers.lock() {
            for task in refreshers.drain(..) {
                task.abort();
            }
        }
    }
}
