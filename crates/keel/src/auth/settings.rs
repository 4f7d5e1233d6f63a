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
}
