//! Rules that span several settings, and the production rules of SPEC §3.1.

use secrecy::{ExposeSecret, SecretString};

use super::problems::Problems;
use super::{AppEnv, RateLimitBackend, Settings, Source, WebhookProvider};

const MIN_SECRET_LEN: usize = 32;

pub(crate) fn check(s: &Settings, src: &Source, p: &mut Problems) {
    if s.rate_limit.backend == RateLimitBackend::Redis && s.rate_limit.redis_url.is_none() {
        p.push("REDIS_URL", "is required when RATE_LIMIT_BACKEND=redis");
    }
    if s.auth.dev_mode && s.app_env != AppEnv::Development {
        p.push("AUTH_DEV_MODE", "is allowed only with APP_ENV=development");
    }
    if let Some(url) = &s.auth.jwks_url {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            p.push("AUTH_JWKS_URL", "must be an http(s) URL");
        }
    }
    if s.is_production() {
        production(s, src, p);
    }
}

fn production(s: &Settings, src: &Source, p: &mut Problems) {
    if s.auth.jwks_url.is_none() && s.auth.hs256_secret.is_none() {
        p.push(
            "AUTH_JWKS_URL",
            "no token verifier is configured: set AUTH_JWKS_URL or AUTH_HS256_SECRET",
        );
    }
    if s.auth
        .jwks_url
        .as_deref()
        .is_some_and(|u| !u.starts_with("https://"))
    {
        p.push("AUTH_JWKS_URL", "must be an https:// URL in production");
    }
    if s.http.metrics_token.is_none() {
        p.push("METRICS_TOKEN", "is required in production");
    }
    if s.data_keys.is_empty() && src.get("DATA_ENCRYPTION_KEYS").is_none() {
        p.push("DATA_ENCRYPTION_KEYS", "is required in production");
    }
    if s.http.cors_allowed_origins.iter().any(|o| o.contains('*')) {
        p.push(
            "CORS_ALLOWED_ORIGINS",
            "must list exact origins in production (no wildcard)",
        );
    }
    for provider in &s.billing.providers {
        match provider {
            WebhookProvider::RevenueCat if s.billing.revenuecat_webhook_secret.is_none() => p.push(
                "REVENUECAT_WEBHOOK_SECRET",
                "is required because revenuecat is an enabled billing provider",
            ),
            WebhookProvider::Stripe if s.billing.stripe_webhook_secrets.is_empty() => p.push(
                "STRIPE_WEBHOOK_SECRET",
                "is required because stripe is an enabled billing provider",
            ),
            _ => {}
        }
    }
    let secrets: [(&str, Option<&SecretString>); 5] = [
        ("AUTH_HS256_SECRET", s.auth.hs256_secret.as_ref()),
        ("ADMIN_TOKEN", s.auth.admin_token.as_ref()),
        (
            "REVENUECAT_WEBHOOK_SECRET",
            s.billing.revenuecat_webhook_secret.as_ref(),
        ),
        ("SCHEDULER_SECRET_KEY", s.jobs.scheduler_secret_key.as_ref()),
        ("METRICS_TOKEN", s.http.metrics_token.as_ref()),
    ];
    for (name, secret) in secrets {
        if secret.is_some_and(|v| v.expose_secret().len() < MIN_SECRET_LEN) {
            p.push(
                name,
                format!("must be at least {MIN_SECRET_LEN} characters in production"),
            );
        }
    }
    if s.billing
        .stripe_webhook_secrets
        .iter()
        .any(|v| v.expose_secret().len() < MIN_SECRET_LEN)
    {
        p.push(
            "STRIPE_WEBHOOK_SECRET",
            format!("each secret must be at least {MIN_SECRET_LEN} characters in production"),
        );
    }
}
