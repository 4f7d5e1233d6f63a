//! The providers Keel receives webhooks from: adding a provider adds it here.

use super::model::Provider;
use super::provider::BillingProvider;
use super::revenuecat::RevenueCat;
use super::stripe::Stripe;
use super::whop::Whop;

/// Every provider Keel receives webhooks from, in the order routes and messages list them.
/// A new provider is one file implementing [`BillingProvider`], added here.
static PROVIDERS: &[&dyn BillingProvider] = &[&RevenueCat, &Stripe, &Whop];

/// Every provider, in order.
pub fn all() -> impl Iterator<Item = &'static dyn BillingProvider> {
    PROVIDERS.iter().copied()
}

/// The provider `id` names; `None` for [`Provider::Manual`], which has no webhooks.
pub fn get(id: Provider) -> Option<&'static dyn BillingProvider> {
    all().find(|p| p.id() == id)
}

/// The provider called `name` (`revenuecat`, `stripe`, `whop`).
pub fn named(name: &str) -> Option<&'static dyn BillingProvider> {
    all().find(|p| p.id().as_str() == name)
}

/// The providers' names, in order.
pub fn names() -> Vec<&'static str> {
    all().map(|p| p.id().as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    /// Every variant, by an exhaustive match: a new variant does not compile until it is listed
    /// here, and then the test below wants it in the registry.
    fn variants() -> Vec<Provider> {
        let all = [
            Provider::RevenueCat,
            Provider::Stripe,
            Provider::Whop,
            Provider::Manual,
        ];
        for p in all {
            match p {
                Provider::RevenueCat | Provider::Stripe | Provider::Whop | Provider::Manual => {}
            }
        }
        all.to_vec()
    }

    #[test]
    fn the_registry_covers_every_provider_but_manual() {
        for id in variants() {
            match (id, get(id)) {
                (Provider::Manual, found) => assert!(found.is_none()),
                (_, Some(p)) => {
                    assert_eq!(p.id(), id);
                    assert_eq!(named(id.as_str()).map(|p| p.id()), Some(id));
                    assert_eq!(p.webhook_path(), format!("/webhooks/{}", id.as_str()));
                }
                (_, None) => panic!("{} is not in the registry", id.as_str()),
            }
        }
        assert_eq!(all().count(), variants().len() - 1);
        assert_eq!(names(), ["revenuecat", "stripe", "whop"]);
    }

    #[test]
    fn every_sample_type_makes_a_body_its_provider_parses() {
        let settings = crate::billing::BillingSettings {
            providers: Vec::new(),
            revenuecat_webhook_secret: None,
            revenuecat_api_key: None,
            revenuecat_api_url: "https://api.revenuecat.com".into(),
            stripe_webhook_secrets: Vec::new(),
            stripe_past_due_grace: std::time::Duration::from_secs(3 * 86_400),
            whop_webhook_secrets: Vec::new(),
            accept_sandbox: true,
            products: Default::default(),
        };
        let now = Utc::now();
        for p in all() {
            assert!(p
                .sample(&"no-such-type".repeat(2), "u1", "p", now)
                .is_none());
            for kind in p.sample_types() {
                let body = p.sample(kind, "u1", p.sample_product(), now);
                let body = body.map(|b| b.to_string()).unwrap_or_default();
                let event = p.parse(&settings, body.as_bytes());
                assert!(event.is_ok(), "{} {kind}: {event:?}", p.id().as_str());
                assert_eq!(event.map(|e| e.provider).ok(), Some(p.id()));
            }
        }
    }
}
