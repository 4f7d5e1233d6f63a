//! What a billing provider is to Keel.
//!
//! A provider authenticates a delivery, parses it into a provider-neutral [`BillingEvent`], says
//! how its events name who holds a subscription, and makes realistic sample events. Ingest,
//! replay, the webhook routes and `keel dev webhook` know providers only through this trait.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::model::{BillingEvent, Invalid, Provider};
use super::BillingError;
use super::BillingSettings;
use crate::jobs::JobSpec;

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

/// The authentication headers of one delivery, as received (names lowercase).
#[derive(Debug, Clone, Default)]
pub struct AuthHeaders<'a> {
    pairs: Vec<(&'static str, &'a str)>,
}

impl<'a> AuthHeaders<'a> {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// These headers and `name: value`.
    pub fn with(mut self, name: &'static str, value: &'a str) -> Self {
        self.pairs.push((name, value));
        self
    }

    /// The value of `name`, when received.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// One billing provider: its webhook's authentication and meaning, and its sample events.
pub trait BillingProvider: Send + Sync + 'static {
    /// Its name in stored rows, metrics labels, routes and commands.
    fn id(&self) -> Provider;

    /// The route its webhooks are received on.
    fn webhook_path(&self) -> &'static str;

    /// The request headers that carry a delivery's authentication (lowercase).
    fn auth_headers(&self) -> &'static [&'static str];

    /// Whether the settings enable its webhook route.
    fn enabled(&self, billing: &BillingSettings) -> bool;

    /// Checks a delivery's authentication (its `auth_headers` as received) over its raw body.
    fn authenticate(
        &self,
        billing: &BillingSettings,
        headers: &AuthHeaders<'_>,
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

    /// The authentication headers (name, value) the provider would send `body` with at `now`,
    /// under the configured secret.
    fn sign(
        &self,
        billing: &BillingSettings,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<(&'static str, String)>, BillingError>;
}
