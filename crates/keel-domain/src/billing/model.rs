//! What a provider event means, independent of the provider: the state it says a subscription is
//! in, links between provider-side ids and users, and transfers between users.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

// Where an entitlement or event came from. (A plain comment: a doc comment here would become the
// schema's description where an entitlement's `source` inlines it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    RevenueCat,
    Stripe,
    Whop,
    Manual,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::RevenueCat => "revenuecat",
            Provider::Stripe => "stripe",
            Provider::Whop => "whop",
            Provider::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Provider> {
        match s {
            "revenuecat" => Some(Provider::RevenueCat),
            "stripe" => Some(Provider::Stripe),
            "whop" => Some(Provider::Whop),
            "manual" => Some(Provider::Manual),
            _ => None,
        }
    }
}

/// Live purchases and store test purchases are kept apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Production,
    Sandbox,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Production => "production",
            Environment::Sandbox => "sandbox",
        }
    }

    pub fn parse(s: &str) -> Environment {
        if s == "production" {
            Environment::Production
        } else {
            Environment::Sandbox
        }
    }
}

/// The complete state of one subscription as one event describes it. The newest state wins:
/// states compare by `(rank, at, event_id)`, so applying a set of events in any order, any number
/// of times, ends in the same place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// Unique per provider: the original store transaction (RevenueCat) or subscription id (Stripe).
    pub key: String,
    /// Who the provider says owns it: a user id (RevenueCat) or a customer id (Stripe).
    pub subject: String,
    pub environment: Environment,
    pub platform: String,
    pub product_id: String,
    pub entitlements: Vec<String>,
    /// Whether this state gives access (until `expires_at`, or `grace_until` when later).
    pub grants: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub grace_until: Option<DateTime<Utc>>,
    pub will_renew: bool,
    /// Terminal states (a Stripe subscription that ended) outrank any time order.
    pub rank: i32,
    /// A payment went through: any grace period named by an earlier event is over.
    pub recovered: bool,
    /// The organisation the subscription is held in (a Whop company), when the provider names one.
    pub tenant: Option<String>,
}

/// One change an event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Subscription(SubscriptionState),
    /// A paid invoice: access runs at least until `until` (merged by maximum, so order-free).
    PaidThrough {
        key: String,
        subject: String,
        environment: Environment,
        product_id: String,
        entitlements: Vec<String>,
        until: DateTime<Utc>,
    },
    /// A provider-side id (a Stripe customer, a RevenueCat alias) belongs to a user.
    Link {
        external_id: String,
        user_id: String,
    },
    /// Purchases move from some users to another (RevenueCat TRANSFER).
    Transfer {
        from: Vec<String>,
        to: String,
    },
}

/// A verified, parsed provider event.
#[derive(Debug, Clone)]
pub struct BillingEvent {
    pub provider: Provider,
    pub id: String,
    pub kind: String,
    /// The Keel user the event concerns, when the event names one.
    pub user_id: Option<String>,
    /// The provider-side owner when it is not a user id (a Stripe customer), resolved through links.
    pub subject: Option<String>,
    pub product_id: Option<String>,
    pub environment: Environment,
    pub at: DateTime<Utc>,
    /// Other ids of the same user (RevenueCat `original_app_user_id` and `aliases`).
    pub aliases: Vec<String>,
    pub effects: Vec<Effect>,
}

/// Why a payload is refused, per field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// An id that may be stored and logged: 1 to 255 characters, no control characters.
pub fn valid_id(value: &str) -> bool {
    !value.is_empty() && value.chars().count() <= 255 && !value.chars().any(char::is_control)
}

/// Milliseconds since the epoch as a time; `None` when out of range.
pub fn from_millis(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(ms)
}
