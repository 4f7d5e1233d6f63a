//! Billing's background jobs: the RevenueCat sync after a webhook, and re-sealing stored payloads
//! under the newest data key after a rotation.

use serde::{Deserialize, Serialize};

use super::ingest::payload_aad;
use super::revenuecat::SYNC_KIND;
use super::Billing;
use crate::jobs::{JobFailure, Registry};

/// The job kind that re-seals stored payloads under the newest key.
pub const RESEAL_KIND: &str = "crypto.reseal";
const RESEAL_BATCH: i64 = 500;

#[derive(Debug, Serialize, Deserialize)]
struct SyncArgs {
    user_id: String,
}

/// Registers billing's job kinds with `billing` as their service.
pub fn register(registry: &mut Registry, billing: &Billing) {
    let sync = billing.clone();
    registry.register_fn(SYNC_KIND, move |_ctx, args| {
        let billing = sync.clone();
        async move {
            let args: SyncArgs = serde_json::from_value(args)
                .map_err(|e| JobFailure::permanent(format!("arguments: {e}")))?;
            billing
                .sync(&args.user_id)
                .await
                .map_err(|e| JobFailure::retry(e.to_string()))?;
            Ok(())
        }
    });
    let reseal = billing.clone();
    registry.register_fn(RESEAL_KIND, move |_ctx, _args| {
        let billing = reseal.clone();
        async move {
            let count = billing
                .reseal()
                .await
                .map_err(|e| JobFailure::retry(e.to_string()))?;
            tracing::info!(count, "payloads re-sealed under the newest key");
            Ok(())
        }
    });
}

impl Billing {
    /// Re-seals every stored payload not sealed under the newest key; returns how many.
    pub async fn reseal(&self) -> Result<u64, super::BillingError> {
        let sealer = &self.inner.sealer;
        let current = sealer.current_key_id().to_string();
        let mut count = 0u64;
        loop {
            let mut tx = self.inner.db.begin().await?;
            let batch = tx.payloads_not_under(&current, RESEAL_BATCH).await?;
            if batch.is_empty() {
                tx.commit().await?;
                return Ok(count);
            }
            for row in &batch {
                let aad = payload_aad(&row.provider, &row.event_id);
                let plain = sealer.open(&row.payload, &aad)?;
                let sealed = sealer.seal(&plain, &aad)?;
                tx.replace_payload(&row.provider, &row.event_id, &current, &sealed)
                    .await?;
            }
            tx.commit().await?;
            count += batch.len() as u64;
        }
    }
}
