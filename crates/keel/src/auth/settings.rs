//! The authentication section of the settings: which token verifiers run, the claim rules, and
//! who is an admin.

use std::time::Duration;

use secrecy::SecretString;

/// Where Whop publishes the keys of its user tokens.
pub const WHOP_JWKS_URL: &str = "https://api.whop.com/.well-known/jwks.json";

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The request header a token is read from (lowercase): `authorization` (with the `Bearer`
    /// scheme), or another header that carries the token alone (`x-whop-user-token`).
    pub token_header: String,
    /// The Whop app whose user tokens are accepted (their `aud`); unset, none are.
    pub whop_app_id: Option<String>,
    /// Where the keys of Whop user tokens are fetched from.
    pub whop_jwks_url: String,
    pub jwks_url: Option<String>,
    pub hs256_secret: Option<SecretString>,
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    pub authorized_parties: Vec<String>,
    pub leeway: Duration,
    pub tenant_claim: String,
    pub required_claims: Vec<String>,
    pub dev_mode: bool,
    pub admin_user_ids: Vec<String>,
    pub admin_token: Option<SecretString>,
    /// `SERVICE_TOKENS`: the app's credentials for the jobs API.
    pub service_tokens: super::ServiceTokens,
    /// Users who may sign in to the operations console to read, never to change.
    pub admin_readonly_user_ids: Vec<String>,
}

impl AuthSettings {
    /// What is wrong with this section in any environment, as (variable, message) pairs.
    pub fn problems(&self, development: bool) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.dev_mode && !development {
            problems.push((
                "AUTH_DEV_MODE",
                "is allowed only with APP_ENV=development".to_string(),
            ));
        }
        if let Some(url) = &self.jwks_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                problems.push(("AUTH_JWKS_URL", "must be an http(s) URL".to_string()));
            }
        }
        if !(self.whop_jwks_url.starts_with("https://")
            || self.whop_jwks_url.starts_with("http://"))
        {
            problems.push(("WHOP_JWKS_URL", "must be an http(s) URL".to_string()));
        }
        if axum::http::HeaderName::from_bytes(self.token_header.as_bytes()).is_err() {
            problems.push((
                "AUTH_TOKEN_HEADER",
                "must be an HTTP header name".to_string(),
            ));
        }
        problems
    }

    /// What production refuses in this section, as (variable, message) pairs.
    pub fn production_problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.jwks_url.is_none() && self.hs256_secret.is_none() && self.whop_app_id.is_none() {
            problems.push((
                "AUTH_JWKS_URL",
                "no token verifier is configured: set AUTH_JWKS_URL, AUTH_HS256_SECRET or \
                 WHOP_APP_ID"
                    .to_string(),
            ));
        }
        if self.whop_app_id.is_some() && !self.whop_jwks_url.starts_with("https://") {
            problems.push((
                "WHOP_JWKS_URL",
                "must be an https:// URL in production".to_string(),
            ));
        }
        if self
            .jwks_url
            .as_deref()
            .is_some_and(|u| !u.starts_with("https://"))
        {
            problems.push((
                "AUTH_JWKS_URL",
                "must be an https:// URL in production".to_string(),
            ));
        }
        problems
    }
}
