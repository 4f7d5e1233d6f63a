//! The authentication section of the settings: which token verifiers run, the claim rules, and
//! who is an admin.

use std::time::Duration;

use secrecy::SecretString;

#[derive(Debug, Clone)]
pub struct AuthSettings {
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
        problems
    }

    /// What production refuses in this section, as (variable, message) pairs.
    pub fn production_problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.jwks_url.is_none() && self.hs256_secret.is_none() {
            problems.push((
                "AUTH_JWKS_URL",
                "no token verifier is configured: set AUTH_JWKS_URL or AUTH_HS256_SECRET"
                    .to_string(),
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
