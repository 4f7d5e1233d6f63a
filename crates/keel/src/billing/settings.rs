//! The billing section of the settings: which providers' webhooks are served, their secrets, the
//! RevenueCat REST access, and the product catalogue of `keel.toml`.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;
use serde::Serialize;

/// A provider whose webhook route can be enabled (`BILLING_PROVIDERS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookProvider {
    RevenueCat,
    Stripe,
    Whop,
}

impl WebhookProvider {
    /// The provider a `BILLING_PROVIDERS` entry names (any case).
    pub fn parse(name: &str) -> Result<WebhookProvider, String> {
        match name.to_ascii_lowercase().as_str() {
            "revenuecat" => Ok(WebhookProvider::RevenueCat),
            "stripe" => Ok(WebhookProvider::Stripe),
            "whop" => Ok(WebhookProvider::Whop),
            other => Err(format!(
                "unknown provider {other:?} (known: revenuecat, stripe, whop)"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BillingSettings {
    pub providers: Vec<WebhookProvider>,
    pub revenuecat_webhook_secret: Option<SecretString>,
    pub revenuecat_api_key: Option<SecretString>,
    pub revenuecat_api_url: String,
    pub stripe_webhook_secrets: Vec<SecretString>,
    /// How long a `past_due` Stripe subscription keeps access after its period ends.
    pub stripe_past_due_grace: Duration,
    /// Whop webhook secrets as configured (raw dashboard secrets or `whsec_…`), newest first.
    pub whop_webhook_secrets: Vec<SecretString>,
    /// Whether sandbox (RevenueCat) and test-mode (Stripe) purchases grant entitlements.
    pub accept_sandbox: bool,
    /// Store product id → entitlements it grants (`[products]` of `keel.toml`).
    pub products: BTreeMap<String, Vec<String>>,
}

impl BillingSettings {
    /// What production refuses in this section, as (variable, message) pairs: each enabled
    /// provider needs its webhook secret.
    pub fn production_problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        for provider in &self.providers {
            match provider {
                WebhookProvider::RevenueCat if self.revenuecat_webhook_secret.is_none() => problems
                    .push((
                        "REVENUECAT_WEBHOOK_SECRET",
                        "is required because revenuecat is an enabled billing provider".to_string(),
                    )),
                WebhookProvider::Stripe if self.stripe_webhook_secrets.is_empty() => {
                    problems.push((
                        "STRIPE_WEBHOOK_SECRET",
                        "is required because stripe is an enabled billing provider".to_string(),
                    ))
                }
                WebhookProvider::Whop if self.whop_webhook_secrets.is_empty() => problems.push((
                    "WHOP_WEBHOOK_SECRET",
                    "is required because whop is an enabled billing provider".to_string(),
                )),
                _ => {}
            }
        }
        problems
    }
}
