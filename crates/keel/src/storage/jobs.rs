//! The built-in `storage.cleanup` job and schedule: abandoned uploads (not confirmed within
//! `abandoned_after`) and expired temporary objects are removed from the backend and forgotten.

use crate::jobs::{JobFailure, Registry};
pub use crate::schedule::{
    STORAGE_CLEANUP_CRON as CLEANUP_CRON, STORAGE_CLEANUP_KIND as CLEANUP_KIND,
};
use crate::services::Services;

/// Registers the cleanup job.
pub fn register(registry: &mut Registry, services: &Services) {
    let storage = services.storage.clone();
    registry.register_fn(CLEANUP_KIND, move |_, _| {
        let storage = storage.clone();
        async move {
            let removed = storage
                .cleanup()
                .await
                .map_err(|e| JobFailure::retry(e.to_string()))?;
            tracing::info!(removed, "expired storage objects removed");
            Ok(())
        }
    });
}
