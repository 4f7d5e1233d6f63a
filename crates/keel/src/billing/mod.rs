//! Billing: provider webhooks turned into subscription state, and the entitlements it grants.
//!
//! Every event is stored once (unique on provider and event id) with its raw payload sealed. Each
//! event carries the complete state of the subscription it describes, and the newest state wins,
//! so deliveries in any order, any number of times, end in the same entitlements.

mod cache;
pub use keel_domain::billing::entitlements;
pub mod dev_secret;
mod fused;
pub mod ingest;
pub mod jobs;
pub use keel_domain::billing::model;
pub mod provider;
pub mod registry;
mod replay;
pub mod revenuecat;
mod settings;
pub mod stripe;
mod sync;
pub mod whop;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::clock::Clock;
use crate::crypto::{SealError, Sealer};
use crate::events::{self, AppEvents};
use crate::jobs::{JobError, Queue};
use crate::store::audit::AuditEntry;
use crate::store::{Db, StoreError};

pub use entitlements::{Entitlement, Holdings, Override};
pub use ingest::Ingested;
pub use model::{BillingEvent, Invalid, Provider};
pub use provider::{AuthHeaders, BillingProvider, Ownership};
pub use replay::Replayed;
pub use revenuecat::RevenueCat;
pub use settings::{BillingSettings, WebhookProvider};
pub use stripe::Stripe;
pub use whop::Whop;

/// What billing operations fail with.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("the webhook's authentication failed: {0}")]
    Unauthorized(&'static str),
    #[error("the payload is invalid")]
    Invalid(Vec<Invalid>),
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
    #[error("RevenueCat failed: {0}")]
    Upstream(String),
    #[error("sealing failed: {0}")]
    Seal(#[from] SealError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug)]
struct Inner {
    settings: Arc<BillingSettings>,
    db: Db,
    clock: Clock,
    queue: Queue,
    sealer: Sealer,
    events: AppEvents,
    cache: cache::HoldingsCache,
    http: reqwest::Client,
}

/// The billing service. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Billing {
    inner: Arc<Inner>,
}

impl Billing {
    pub fn new(
        settings: Arc<BillingSettings>,
        db: Db,
        clock: Clock,
        queue: Queue,
        sealer: Sealer,
        events: AppEvents,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(sync::TIMEOUT)
            .connect_timeout(sync::TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                settings,
                db,
                clock,
                queue,
                sealer,
                events,
                cache: cache::HoldingsCache::default(),
                http,
            }),
        }
    }

    pub fn sealer(&self) -> &Sealer {
        &self.inner.sealer
    }

    /// Whether `user_id` holds an active subscription of `provider` in `tenant` now (a Whop
    /// member in the company a request names).
    pub async fn holds_in_tenant(
        &self,
        provider: Provider,
        user_id: &str,
        tenant: &str,
    ) -> Result<bool, StoreError> {
        let now = self.inner.clock.now();
        self.inner
            .db
            .holds_in_tenant(provider, user_id, tenant, now)
            .await
    }

    /// Whether `provider`'s webhook route is served.
    pub fn enabled(&self, provider: Provider) -> bool {
        match registry::get(provider) {
            Some(p) => p.enabled(&self.inner.settings),
            None => true,
        }
    }

    /// Authenticates, parses and ingests one webhook delivery.
    pub async fn receive(
        &self,
        provider: Provider,
        authentication: &AuthHeaders<'_>,
        body: &[u8],
    ) -> Result<Ingested, BillingError> {
        let provider =
            registry::get(provider).ok_or(BillingError::NotConfigured("a manual webhook"))?;
        let settings = &self.inner.settings;
        provider.authenticate(settings, authentication, body, self.inner.clock.now())?;
        let event = provider
            .parse(settings, body)
            .map_err(BillingError::Invalid)?;
        self.ingest_with(provider, event, body).await
    }

    /// The user's entitlements now.
    pub async fn entitlements(
        &self,
        user_id: &str,
    ) -> Result<BTreeMap<String, Entitlement>, BillingError> {
        let holdings = self.holdings(user_id).await?;
        Ok(entitlements::view(
            &holdings,
            self.inner.clock.now(),
            self.inner.settings.accept_sandbox,
        ))
    }

    /// The names of the user's active entitlements.
    pub async fn active(&self, user_id: &str) -> Result<Vec<String>, BillingError> {
        Ok(entitlements::active_names(
            &self.entitlements(user_id).await?,
        ))
    }

    /// Whether `entitlement` is active for the user.
    pub async fn is_entitled(
        &self,
        user_id: &str,
        entitlement: &str,
    ) -> Result<bool, BillingError> {
        Ok(self
            .entitlements(user_id)
            .await?
            .get(entitlement)
            .is_some_and(|e| e.active))
    }

    async fn holdings(&self, user_id: &str) -> Result<Arc<Holdings>, BillingError> {
        if let Some(h) = self.inner.cache.get(user_id) {
            return Ok(h);
        }
        let read_at = Instant::now();
        let h = Arc::new(self.inner.db.holdings(user_id).await?);
        self.inner.cache.put(user_id, h.clone(), read_at);
        Ok(h)
    }

    /// Forgets what this process cached about the user.
    pub fn forget(&self, user_id: &str) {
        self.inner.cache.forget(user_id);
    }

    /// A manual grant or revocation by an operator, audited in the same transaction.
    pub async fn set_override(
        &self,
        user_id: &str,
        o: Override,
        actor: &str,
    ) -> Result<(), BillingError> {
        let now = self.inner.clock.now();
        let mut tx = self.inner.db.begin().await?;
        tx.set_entitlement_override(user_id, &o, actor, now).await?;
        events::check_entitlements(self.inner.events, &mut tx, [user_id], now).await?;
        let action = if o.revoked {
            "entitlement.revoke"
        } else {
            "entitlement.grant"
        };
        let metadata = serde_json::json!({
            "entitlement": o.entitlement,
            "expires_at": o.expires_at,
            "reason": o.reason,
        });
        tx.audit(
            &AuditEntry::new(actor, action, Some(user_id.to_string()), metadata),
            now,
        )
        .await?;
        tx.commit().await?;
        self.inner.cache.forget(user_id);
        Ok(())
    }
}
