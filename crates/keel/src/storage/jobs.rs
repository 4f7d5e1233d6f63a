//! The built-in `storage.cleanup` job and schedule: abandoned uploads (not confirmed within
//! `abandoned_after`) and expired temporary objects are removed from the backend and forgotten.

use crate::jobs::{JobFailure, Registry};
use crate::services::Services;

/// The kind (and the built-in schedule) of the cleanup.
pub const CLEANUP_KIND: &str = "storage.cleanup";

/// When the cleanup runs: every hour, at minute 15.
pub const CLEANUP_CRON: &str = "15 * * * *";

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
