//! The job kinds a Keel process runs: Keel's own (upkeep, billing, privacy), the built-in and
//! application handlers it was given, and the HTTP kinds of `keel.toml`. Any other kind is
//! refused at enqueue and in schedules.

use std::collections::BTreeSet;

use crate::config::Settings;
use crate::jobs::Registry;
use crate::services::{Services, PRUNE_KIND};

/// The kinds of Keel's own jobs, registered in every process by [`handlers`].
pub const KEEL_KINDS: [&str; 7] = [
    PRUNE_KIND,
    crate::billing::revenuecat::SYNC_KIND,
    crate::billing::jobs::RESEAL_KIND,
    crate::privacy::ERASE_KIND,
    crate::schedule::RETENTION_KIND,
    crate::schedule::MAINTENANCE_KIND,
    crate::storage::jobs::CLEANUP_KIND,
];

/// Every kind a process with `app`'s handlers runs: `app`'s (the built-in kinds and the
/// application's), Keel's own, and the HTTP kinds of `settings`. Anything else is refused at
/// enqueue and in schedules.
pub fn declared_kinds(settings: &Settings, app: &Registry) -> BTreeSet<String> {
    app.kinds()
        .chain(KEEL_KINDS)
        .chain(settings.jobs.http_kinds.keys().map(String::as_str))
        .map(str::to_string)
        .collect()
}

/// Every job handler of a process with `services`: `registry`'s (the built-in kinds and the
/// application's), Keel's own upkeep, billing and privacy jobs, and the HTTP kinds of `keel.toml`.
pub fn handlers(services: &Services, mut registry: Registry) -> Registry {
    let retention = services.settings.jobs.retention;
    let clock = services.clock.clone();
    registry.register_fn(PRUNE_KIND, move |ctx, _args| {
        let now = clock.now();
        async move {
            let done_before = now - chrono::Duration::from_std(retention).unwrap_or_default();
            let discarded_before = now - chrono::Duration::days(7);
            let pruned = ctx.db.prune_jobs(done_before, discarded_before).await?;
            tracing::info!(pruned, "finished jobs pruned");
            Ok(())
        }
    });
    crate::billing::jobs::register(&mut registry, &services.billing);
    crate::privacy::register(&mut registry, services);
    crate::storage::jobs::register(&mut registry, services);
    crate::jobs::http_kind::register(
        &mut registry,
        &services.settings.jobs.http_kinds,
        &services.settings.app.webhook_secrets,
        &services.clock,
    );
    registry
}
