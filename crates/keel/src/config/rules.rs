//! The rules of the whole configuration: each section's own checks (by its subsystem), the rules
//! that span several sections, and the production rules of SPEC §3.1.

use secrecy::{ExposeSecret, SecretString};

use super::problems::Problems;
use super::{AppEnv, Settings, Source};

const MIN_SECRET_LEN: usize = 32;

pub(crate) fn check(s: &Settings, src: &Source, p: &mut Problems) {
    push_all(p, s.rate_limit.problems());
    push_all(p, s.auth.problems(s.app_env == AppEnv::Development));
    push_all(p, s.app.problems());
    push_all(p, s.telemetry.problems());
    push_all(p, s.storage.problems());
    if s.is_production() {
        production(s, src, p);
    }
}

/// Problems a subsystem found in its section.
fn push_all(p: &mut Problems, found: Vec<(&'static str, String)>) {
    for (variable, message) in found {
        p.push(variable, message);
    }
}

fn production(s: &Settings, src: &Source, p: &mut Problems) {
    push_all(p, s.auth.production_problems());
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
    push_all(p, s.billing.production_problems());
    push_all(p, s.app.production_problems());
    push_all(p, s.gateway.production_problems());
    for message in s.auth.service_tokens.production_problems() {
        p.push("SERVICE_TOKENS", message);
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
        if secret.is_some_and(|v| v.expose_secret().chars().count() < MIN_SECRET_LEN) {
            p.push(
                name,
                format!("must be at least {MIN_SECRET_LEN} characters in production"),
            );
        }
    }
    let lists = [
        ("STRIPE_WEBHOOK_SECRET", &s.billing.stripe_webhook_secrets),
        ("WHOP_WEBHOOK_SECRET", &s.billing.whop_webhook_secrets),
    ];
    for (name, list) in lists {
        if list
            .iter()
            .any(|v| v.expose_secret().chars().count() < MIN_SECRET_LEN)
        {
            p.push(
                name,
                format!("each secret must be at least {MIN_SECRET_LEN} characters in production"),
            );
        }
    }
}
