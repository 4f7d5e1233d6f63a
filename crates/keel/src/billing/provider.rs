//! What a billing provider is to Keel, and the list of the providers Keel receives webhooks from.
//!
//! A provider authenticates a delivery, parses it into a provider-neutral [`BillingEvent`], says
//! how its events name who holds a subscription, and makes realistic sample events. Ingest,
//! replay, the webhook routes and `keel dev webhook` know providers only through this trait.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::model::{BillingEvent, Invalid, Provider};
use super::revenuecat::RevenueCat;
use super::stripe::Stripe;
use super::BillingError;
use super::BillingSettings;
use crate::jobs::JobSpec;

/// Every provider Keel receives webhooks from, in the order routes and messages list them.
/// A new provider is one file implementing [`BillingProvider`], added here.
static PROVIDERS: &[&dyn BillingProvider] = &[&RevenueCat, &Stripe];

/// How a provider's events name who holds a subscription, and so how the owner is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// Events name users by id (RevenueCat). An id starting with `anonymous` stands for a user not
    /// yet identified and resolves through the links earlier events made; the event's other ids
    /// are linked to the user it resolves to; subscriptions are held by that user and move with
    /// transfers.
    UserIds { anonymous: Option<&'static str> },
    /// Events name a provider-side customer (Stripe) that events naming both link to a user; a
    /// subscription belongs to whichever user its customer is linked to.
    Customers,
}

/// One billing provider: its webhook's authentication and meaning, and its sample events.
pub trait BillingProvider: Send + Sync + 'static {
    /// Its name in stored rows, metrics labels, routes and commands.
    fn id(&self) -> Provider;

    /// The route its webhooks are received on.
    fn webhook_path(&self) -> &'static str;

    /// The request header that carries a delivery's authentication.
    fn auth_header(&self) -> &'static str;

    /// Whether the settings enable its webhook route.
    fn enabled(&self, billing: &BillingSettings) -> bool;

    /// Checks a delivery's authentication (the `auth_header` value) over its raw body.
    fn authenticate(
        &self,
        billing: &BillingSettings,
        header: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), BillingError>;

    /// Parses an authenticated body into what it means, under the current configuration.
    fn parse(&self, billing: &BillingSettings, body: &[u8]) -> Result<BillingEvent, Vec<Invalid>>;

    /// How its events name who holds a subscription.
    fn ownership(&self) -> Ownership;

    /// The job enqueued, in the event's transaction, after an applied event that concerns `user`.
    fn follow_up(&self, _billing: &BillingSettings, _user: &str) -> Option<JobSpec> {
        None
    }

    /// The event types [`BillingProvider::sample`] makes.
    fn sample_types(&self) -> &'static [&'static str];

    /// The product a sample names when the caller names none.
    fn sample_product(&self) -> &'static str;

    /// A realistic webhook body of `kind` for `user` buying `product`, happening `now`; `None`
    /// for a kind not in [`BillingProvider::sample_types`].
    fn sample(&self, kind: &str, user: &str, product: &str, now: DateTime<Utc>) -> Option<Value>;

    /// The `auth_header` value the provider would send `body` with at `now`, under the
    /// configured secret.
    fn sign(
        &self,
        billing: &BillingSettings,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<String, BillingError>;
}

/// Every provider, in order.
pub fn all() -> impl Iterator<Item = &'static dyn BillingProvider> {
    PROVIDERS.iter().copied()
}

/// The provider `id` names; `None` for [`Provider::Manual`], which has no webhooks.
pub fn get(id: Provider) -> Option<&'static dyn BillingProvider> {
    all().find(|p| p.id() == id)
}

/// The provider called `name` (`revenuecat`, `stripe`).
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

    /// Every variant, by an exhaustive match: a new variant does not compile until it is listed
    /// here, and then the test below wants it in the registry.
    fn variants() -> Vec<Provider> {
        let all = [Provider::RevenueCat, Provider::Stripe, Provider::Manual];
        for p in all {
            match p {
                Provider::RevenueCat | Provider::Stripe | Provider::Manual => {}
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
        assert_eq!(names(), ["revenuecat", "stripe"]);
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
