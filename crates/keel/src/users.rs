//! Users as the service sees them: the row behind a principal, kept off the database on the hot
//! path — a user seen in the last minute is answered from memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::auth::Principal;
use crate::clock::Clock;
use crate::events::{self, AppEvents};
use crate::store::users::UserRow;
use crate::store::{Db, StoreError};

const FRESH: Duration = Duration::from_secs(60);
const MAX_REMEMBERED: usize = 100_000;

#[derive(Debug, Clone)]
pub struct Users {
    db: Db,
    clock: Clock,
    events: AppEvents,
    seen: Arc<Mutex<HashMap<String, (UserRow, Instant)>>>,
}

impl Users {
    pub fn new(db: Db, clock: Clock, events: AppEvents) -> Self {
        Self {
            db,
            clock,
            events,
            seen: Arc::default(),
        }
    }

    /// The user's row, if they were ever seen.
    pub async fn get(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        self.db.user(id).await
    }

    /// The caller's row, created on first sight.
    pub async fn touch(&self, principal: &Principal) -> Result<UserRow, StoreError> {
        if let Ok(seen) = self.seen.lock() {
            if let Some((row, at)) = seen.get(&principal.user_id) {
                if at.elapsed() < FRESH && row.tenant_id == principal.tenant_id {
                    return Ok(row.clone());
                }
            }
        }
        let row = self.write_touch(principal).await?;
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= MAX_REMEMBERED {
                seen.retain(|_, (_, at)| at.elapsed() < FRESH);
                if seen.len() >= MAX_REMEMBERED {
                    seen.clear();
                }
            }
            seen.insert(principal.user_id.clone(), (row.clone(), Instant::now()));
        }
        Ok(row)
    }

    /// Creates or refreshes the row; with events on, in a transaction that also writes
    /// `user.created` when the row is new.
    async fn write_touch(&self, principal: &Principal) -> Result<UserRow, StoreError> {
        let (id, tenant) = (&principal.user_id, principal.tenant_id.as_deref());
        let now = self.clock.now();
        if !self.events.enabled {
            return self.db.touch_user(id, tenant, now).await;
        }
        let mut tx = self.db.begin().await?;
        let (row, created) = tx.touch_user(id, tenant, now).await?;
        if created {
            events::user_created(self.events, &mut tx, id, tenant, now).await?;
        }
        tx.commit().await?;
        Ok(row)
    }
}
