//! The development webhook secret: generated once into `data_dir/dev-webhook.key` (owner-only,
//! like the development token and data keys). In development, when no billing provider and no
//! webhook secret is configured, every provider is on under it, so `keel serve` and
//! `keel dev webhook` agree with no secret set by hand. Never outside development.

use std::path::{Path, PathBuf};

use secrecy::SecretString;

use super::{BillingSettings, WebhookProvider};

pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-webhook.key")
}

/// `billing` as a process runs with it: with every provider on under the development secret
/// when `development` holds and nothing about webhooks is configured; otherwise as it is.
pub fn effective(
    billing: &BillingSettings,
    data_dir: &Path,
    development: bool,
) -> Result<BillingSettings, String> {
    let unconfigured = billing.providers.is_empty()
        && billing.revenuecat_webhook_secret.is_none()
        && billing.stripe_webhook_secrets.is_empty()
        && billing.whop_webhook_secrets.is_empty();
    if !(development && unconfigured) {
        return Ok(billing.clone());
    }
    let key = crate::auth::dev::load_or_create_file(&key_path(data_dir))?;
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    Ok(BillingSettings {
        providers: vec![
            WebhookProvider::RevenueCat,
            WebhookProvider::Stripe,
            WebhookProvider::Whop,
        ],
        revenuecat_webhook_secret: Some(SecretString::from(format!("dev_{hex}"))),
        stripe_webhook_secrets: vec![SecretString::from(format!("whsec_dev_{hex}"))],
        whop_webhook_secrets: vec![SecretString::from(format!("dev_whop_{hex}"))],
        ..billing.clone()
    })
}
