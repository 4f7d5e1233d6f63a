//! Entitlement sync from RevenueCat's REST API (`GET /v1/subscribers/{app_user_id}`): the
//! subscriber's current purchases replace older states of the same products.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::entitlements::Entitlement;
use super::model::{Environment, Provider, SubscriptionState};
use super::{Billing, BillingError};

/// The longest a RevenueCat request may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
struct Response {
    request_date_ms: Option<i64>,
    subscriber: Subscriber,
}

#[derive(Debug, Deserialize)]
struct Subscriber {
    #[serde(default)]
    entitlements: BTreeMap<String, EntitlementInfo>,
    #[serde(default)]
    subscriptions: BTreeMap<String, SubscriptionInfo>,
    #[serde(default)]
    non_subscriptions: BTreeMap<String, Vec<PurchaseInfo>>,
}

#[derive(Debug, Deserialize)]
struct EntitlementInfo {
    expires_date: Option<DateTime<Utc>>,
    grace_period_expires_date: Option<DateTime<Utc>>,
    product_identifier: String,
}

#[derive(Debug, Deserialize)]
struct SubscriptionInfo {
    expires_date: Option<DateTime<Utc>>,
    grace_period_expires_date: Option<DateTime<Utc>>,
    store: Option<String>,
    #[serde(default)]
    is_sandbox: bool,
    unsubscribe_detected_at: Option<DateTime<Utc>>,
    refunded_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
struct PurchaseInfo {
    store: Option<String>,
    #[serde(default)]
    is_sandbox: bool,
}

fn platform(store: Option<&str>) -> String {
    super::revenuecat::platform(store.map(str::to_ascii_uppercase).as_deref())
}

/// The state of each product the subscriber holds, as of the response.
fn states(user_id: &str, subscriber: &Subscriber) -> Vec<SubscriptionState> {
    let mut by_product: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, e) in &subscriber.entitlements {
        by_product
            .entry(&e.product_identifier)
            .or_default()
            .push(name.clone());
    }
    let products: BTreeSet<&str> = by_product
        .keys()
        .copied()
        .chain(subscriber.subscriptions.keys().map(String::as_str))
        .chain(subscriber.non_subscriptions.keys().map(String::as_str))
        .collect();
    let mut out = Vec::new();
    for product in products {
        let entitlements = by_product.get(product).cloned().unwrap_or_default();
        let entitlement = subscriber
            .entitlements
            .values()
            .find(|e| e.product_identifier == product);
        let state = if let Some(s) = subscriber.subscriptions.get(product) {
            Some((
                s.is_sandbox,
                platform(s.store.as_deref()),
                s.refunded_at.is_none(),
                s.expires_date,
                s.grace_period_expires_date,
                s.unsubscribe_detected_at.is_none() && s.refunded_at.is_none(),
            ))
        } else if let Some(p) = subscriber
            .non_subscriptions
            .get(product)
            .and_then(|v| v.last())
        {
            Some((
                p.is_sandbox,
                platform(p.store.as_deref()),
                true,
                None,
                None,
                false,
            ))
        } else {
            entitlement.map(|e| {
                let (expires, grace) = (e.expires_date, e.grace_period_expires_date);
                (false, "unknown".to_string(), true, expires, grace, false)
            })
        };
        let Some((sandbox, platform, grants, expires_at, grace_until, will_renew)) = state else {
            continue;
        };
        let environment = if sandbox {
            Environment::Sandbox
        } else {
            Environment::Production
        };
        out.push(SubscriptionState {
            key: format!("{}:rest:{user_id}:{product}", environment.as_str()),
            subject: user_id.to_string(),
            environment,
            platform,
            product_id: product.to_string(),
            entitlements,
            grants,
            expires_at,
            grace_until,
            will_renew,
            rank: 0,
            // The subscriber as RevenueCat sees it now replaces any grace named before.
            recovered: true,
            tenant: None,
        });
    }
    out
}

impl Billing {
    /// Asks RevenueCat for the subscriber now, records what it says, and answers the user's
    /// entitlements.
    pub async fn sync(&self, user_id: &str) -> Result<BTreeMap<String, Entitlement>, BillingError> {
        let inner = &self.inner;
        let billing = &inner.settings;
        let key = billing
            .revenuecat_api_key
            .as_ref()
            .ok_or(BillingError::NotConfigured("REVENUECAT_API_KEY"))?;
        let url = format!(
            "{}/v1/subscribers/{}",
            billing.revenuecat_api_url.trim_end_matches('/'),
            crate::percent::encode(user_id)
        );
        let response = inner
            .http
            .get(url)
            .bearer_auth(key.expose_secret())
            .send()
            .await
            .map_err(|e| {
                BillingError::Upstream(if e.is_timeout() {
                    format!("no answer within {}s", TIMEOUT.as_secs())
                } else {
                    "the request could not be sent".into()
                })
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(BillingError::Upstream(format!("it answered {status}")));
        }
        let body: Response = response
            .json()
            .await
            .map_err(|_| BillingError::Upstream("its answer is not a subscriber".into()))?;
        let at = body
            .request_date_ms
            .and_then(DateTime::<Utc>::from_timestamp_millis)
            .unwrap_or_else(|| inner.clock.now());
        let now = inner.clock.now();
        let provider = Provider::RevenueCat;
        let mut tx = inner.db.begin().await?;
        tx.lock_billing_subject(provider, user_id).await?;
        let held = tx
            .subscriptions_touching(provider, &[user_id.to_string()])
            .await?;
        let event_id = format!("rest:{}", at.timestamp_millis());
        for state in states(user_id, &body.subscriber) {
            let same_product: Vec<&str> = held
                .iter()
                .filter(|h| {
                    h.product_id == state.product_id
                        && h.environment == state.environment.as_str()
                        && h.user_id.as_deref() == Some(user_id)
                })
                .map(|h| h.key.as_str())
                .collect();
            let keys = if same_product.is_empty() {
                vec![state.key.clone()]
            } else {
                same_product.into_iter().map(str::to_string).collect()
            };
            for key in keys {
                let state = SubscriptionState {
                    key,
                    ..state.clone()
                };
                tx.upsert_subscription(provider, &state, Some(user_id), at, &event_id, now)
                    .await?;
            }
        }
        crate::events::check_entitlements(inner.events, &mut tx, [user_id], now).await?;
        tx.commit().await?;
        inner.cache.forget(user_id);
        self.entitlements(user_id).await
    }
}
