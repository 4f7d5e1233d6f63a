//! Runtime kill switches, stored in the database and cached per process for at most
//! [`Flags::STALENESS`], so a change reaches every process within that time without a restart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::RwLock;
use utoipa::ToSchema;

use crate::clock::Clock;
use crate::store::audit::AuditEntry;
use crate::store::{Db, StoreError};

pub const SCHEDULER: &str = "scheduler";
pub const ENQUEUE: &str = "enqueue";
pub const WORKERS: &str = "workers";

/// The flag that stops processing of one queue.
pub fn queue_flag(queue: &str) -> String {
    format!("queue:{queue}")
}

#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    #[error("unknown flag {0:?}: use scheduler, enqueue, workers or queue:NAME")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Flag)]
pub struct FlagView {
    /// `scheduler`, `enqueue`, `workers` or `queue:NAME`.
    pub name: String,
    pub enabled: bool,
    /// `default` when never set, else who set it last.
    pub source: String,
    #[schema(required = true)]
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Default)]
struct Cache {
    loaded: Option<Instant>,
    refreshing: bool,
    /// Bumped by every `set`; a refresh that read the database before a `set` is discarded.
    generation: u64,
    values: BTreeMap<String, bool>,
}

#[derive(Debug, Clone)]
pub struct Flags {
    db: Db,
    clock: Clock,
    defaults: Arc<BTreeMap<String, bool>>,
    cache: Arc<RwLock<Cache>>,
}

impl Flags {
    /// How stale a process's view of the flags may be.
    pub const STALENESS: Duration = Duration::from_secs(2);

    pub fn new(db: Db, clock: Clock, scheduler: bool, enqueue: bool, workers: bool) -> Self {
        let defaults = BTreeMap::from([
            (SCHEDULER.to_string(), scheduler),
            (ENQUEUE.to_string(), enqueue),
            (WORKERS.to_string(), workers),
        ]);
        Self {
            db,
            clock,
            defaults: Arc::new(defaults),
            cache: Arc::new(RwLock::new(Cache::default())),
        }
    }

    pub fn validate(name: &str) -> Result<(), FlagError> {
        let valid = matches!(name, SCHEDULER | ENQUEUE | WORKERS)
            || name
                .strip_prefix("queue:")
                .is_some_and(crate::jobs::is_valid_name);
        if valid {
            Ok(())
        } else {
            Err(FlagError::Unknown(name.to_string()))
        }
    }

    /// Whether `name` is on. A flag never set has its default (on, or the `*_ENABLED` setting).
    /// Reads are served from the cache; a stale cache is refreshed in the background (the first
    /// read waits for it), so the hot path never waits on the database. When the database cannot
    /// be read, the last known values stay in force.
    pub async fn enabled(&self, name: &str) -> bool {
        {
            let mut cache = self.cache.write().await;
            match cache.loaded {
                Some(at) if at.elapsed() < Self::STALENESS => return self.value(&cache, name),
                Some(_) => {
                    if !cache.refreshing {
                        cache.refreshing = true;
                        let flags = self.clone();
                        tokio::spawn(async move { flags.refresh().await });
                    }
                    return self.value(&cache, name);
                }
                None => {}
            }
        }
        self.refresh().await;
        let cache = self.cache.read().await;
        self.value(&cache, name)
    }

    async fn refresh(&self) {
        let generation = self.cache.read().await.generation;
        let rows = self.db.flags().await;
        let mut cache = self.cache.write().await;
        if cache.generation != generation {
            cache.refreshing = false;
            return;
        }
        match rows {
            Ok(rows) => cache.values = rows.into_iter().map(|r| (r.name, r.enabled)).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read flags; keeping the last known values")
            }
        }
        cache.loaded = Some(Instant::now());
        cache.refreshing = false;
    }

    fn value(&self, cache: &Cache, name: &str) -> bool {
        cache
            .values
            .get(name)
            .or_else(|| self.defaults.get(name))
            .copied()
            .unwrap_or(true)
    }

    /// Every known flag: the three global ones, and each one stored.
    pub async fn list(&self) -> Result<Vec<FlagView>, StoreError> {
        let stored = self.db.flags().await?;
        let mut out: BTreeMap<String, FlagView> = self
            .defaults
            .iter()
            .map(|(name, enabled)| {
                let view = FlagView {
                    name: name.clone(),
                    enabled: *enabled,
                    source: "default".into(),
                    updated_at: None,
                };
                (name.clone(), view)
            })
            .collect();
        for row in stored {
            out.insert(
                row.name.clone(),
                FlagView {
                    name: row.name,
                    enabled: row.enabled,
                    source: row.updated_by,
                    updated_at: Some(row.updated_at),
                },
            );
        }
        Ok(out.into_values().collect())
    }

    /// Sets a flag for every process, with an audit row in the same transaction.
    pub async fn set(&self, name: &str, enabled: bool, actor: &str) -> Result<(), FlagError> {
        Self::validate(name)?;
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        tx.set_flag(name, enabled, actor, now).await?;
        let entry = AuditEntry::new(
            actor,
            "flag.set",
            Some(format!("flag:{name}")),
            serde_json::json!({ "enabled": enabled }),
        );
        tx.audit(&entry, now).await?;
        tx.commit().await?;
        let mut cache = self.cache.write().await;
        cache.loaded = None;
        cache.generation += 1;
        Ok(())
    }
}
