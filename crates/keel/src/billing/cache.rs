//! Entitlement inputs per user, kept in memory for a few seconds. This process forgets a user at
//! once when their entitlements change; other processes see the change when the entry expires,
//! within [`FRESH`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::entitlements::Holdings;

/// How long an entry is trusted. Below the 5 s within which every process must see a change.
pub const FRESH: Duration = Duration::from_secs(4);
const MAX_USERS: usize = 100_000;

#[derive(Debug, Default)]
pub struct HoldingsCache {
    entries: Mutex<HashMap<String, (Arc<Holdings>, Instant)>>,
}

impl HoldingsCache {
    pub fn get(&self, user_id: &str) -> Option<Arc<Holdings>> {
        let entries = self.entries.lock().ok()?;
        let (holdings, at) = entries.get(user_id)?;
        (at.elapsed() < FRESH).then(|| holdings.clone())
    }

    pub fn put(&self, user_id: &str, holdings: Arc<Holdings>, read_at: Instant) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_USERS {
                entries.retain(|_, (_, at)| at.elapsed() < FRESH);
                if entries.len() >= MAX_USERS {
                    entries.clear();
                }
            }
            entries.insert(user_id.to_string(), (holdings, read_at));
        }
    }

    pub fn forget(&self, user_id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(user_id);
        }
    }
}
