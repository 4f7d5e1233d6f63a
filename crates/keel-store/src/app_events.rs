//! The outbox of events for the app (`app_events`) and, per user, the last sequence number and
//! the entitlements the app was last told of (`app_event_users`). Rows are written in the
//! transaction of the change they describe; a dispatcher claims them under a lease, at most the
//! oldest undelivered event of each user at a time. One statement text serves both engines; only
//! the row lock differs (`FOR UPDATE [SKIP LOCKED]` on Postgres, where SQLite's single writer
//! already serialises).

use chrono::{DateTime, Utc};

use super::sql::{in_list, map_rows, on_db, on_tx, Cols, List, Ts};
use super::{Db, Engine, StoreError, Tx};

/// What the app was last told about one user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventUser {
    /// The sequence number of the user's last event; 0 before the first.
    pub sequence: i64,
    /// The active entitlements the app was last told of.
    pub entitlements: Vec<String>,
}

/// One event to write.
#[derive(Debug, Clone)]
pub struct NewAppEvent<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub sequence: i64,
    pub event_type: &'a str,
    /// The `data` object, as JSON text.
    pub data: &'a str,
    pub created_at: DateTime<Utc>,
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppEventRow {
    pub id: String,
    pub user_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub data: String,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Attempts made, the one just claimed included.
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

const COLUMNS: &str = "id, user_id, sequence, event_type, data, created_at, delivered_at,
    attempts, next_attempt_at, last_error";

fn event_row(r: &impl Cols) -> Result<AppEventRow, sqlx::Error> {
    Ok(AppEventRow {
        id: r.text("id")?,
        user_id: r.text("user_id")?,
        sequence: r.int("sequence")?,
        event_type: r.text("event_type")?,
        data: r.text("data")?,
        created_at: r.at("created_at")?,
        delivered_at: r.at_opt("delivered_at")?,
        attempts: r.int4("attempts")?,
        next_attempt_at: r.at("next_attempt_at")?,
        last_error: r.text_opt("last_error")?,
    })
}

/// The row lock of a read that a later write in the same transaction depends on.
fn for_update(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => "",
        Engine::Postgres => " FOR UPDATE",
    }
}

/// Claims may pass over rows another process holds.
fn skip_locked(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => "",
        Engine::Postgres => " FOR UPDATE SKIP LOCKED",
    }
}

impl Tx {
    /// The user's event state, locked until the transaction ends: a second transaction about the
    /// same user waits here, then reads what the first committed, so no two get one sequence.
    pub async fn lock_event_user(&mut self, user_id: &str) -> Result<EventUser, StoreError> {
        // A user forgotten by erasure whose last events are still kept continues after them.
        let insert = "INSERT INTO app_event_users (user_id, sequence, entitlements)
                      SELECT $1, COALESCE(MAX(sequence), 0), '[]' FROM app_events
                      WHERE user_id = $1
                      ON CONFLICT (user_id) DO NOTHING";
        let select = format!(
            "SELECT sequence, entitlements FROM app_event_users WHERE user_id = $1{}",
            for_update(self.engine())
        );
        let (sequence, entitlements) = on_tx!(self, |c| {
            sqlx::query(insert).bind(user_id).execute(&mut **c).await?;
            let r = sqlx::query(&select)
                .bind(user_id)
                .fetch_one(&mut **c)
                .await?;
            (r.int("sequence")?, r.text("entitlements")?)
        });
        Ok(EventUser {
            sequence,
            entitlements: serde_json::from_str(&entitlements).unwrap_or_default(),
        })
    }

    /// Records what the app is now told of the user, and when time alone may change it.
    pub async fn save_event_user(
        &mut self,
        user_id: &str,
        state: &EventUser,
        check_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let q = "UPDATE app_event_users SET sequence = $2, entitlements = $3, check_at = $4
                 WHERE user_id = $1";
        let names = serde_json::to_string(&state.entitlements).unwrap_or_else(|_| "[]".into());
        on_tx!(self, |c| {
            sqlx::query(q)
                .bind(user_id)
                .bind(state.sequence)
                .bind(&names)
                .bind(check_at.map(Ts))
                .execute(&mut **c)
                .await?;
        });
        Ok(())
    }

    /// Forgets the user's event state (after erasure). A later event of the same id continues
    /// after the user's events still kept, or starts at 1 once none is.
    pub async fn forget_event_user(&mut self, user_id: &str) -> Result<(), StoreError> {
        let q = "DELETE FROM app_event_users WHERE user_id = $1";
        on_tx!(self, |c| {
            sqlx::query(q).bind(user_id).execute(&mut **c).await?;
        });
        Ok(())
    }

    /// Writes one event, due at once.
    pub async fn insert_app_event(&mut self, e: &NewAppEvent<'_>) -> Result<(), StoreError> {
        let q = "INSERT INTO app_events (id, user_id, sequence, event_type, data, created_at,
                    next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $6)";
        on_tx!(self, |c| {
            sqlx::query(q)
                .bind(e.id)
                .bind(e.user_id)
                .bind(e.sequence)
                .bind(e.event_type)
                .bind(e.data)
                .bind(Ts(e.created_at))
                .execute(&mut **c)
                .await?;
        });
        Ok(())
    }

    /// Erasure: the user's undelivered events keep their place in the sequence with an empty
    /// `data`; delivered ones are deleted. Returns the rows changed.
    pub async fn redact_app_events(&mut self, user_id: &str) -> Result<u64, StoreError> {
        let redact =
            "UPDATE app_events SET data = '{}' WHERE user_id = $1 AND delivered_at IS NULL";
        let delete = "DELETE FROM app_events WHERE user_id = $1 AND delivered_at IS NOT NULL";
        Ok(on_tx!(self, |c| {
            let a = sqlx::query(redact)
                .bind(user_id)
                .execute(&mut **c)
                .await?
                .rows_affected();
            let b = sqlx::query(delete)
                .bind(user_id)
                .execute(&mut **c)
                .await?
                .rows_affected();
            a + b
        }))
    }
}

impl Db {
    /// Leases up to `limit` due events until `lease_until`, counting an attempt for each: only
    /// the oldest undelivered event of each user, so a user's events go out one at a time, in
    /// sequence order. Safe for any number of processes at once.
    pub async fn claim_app_events(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<AppEventRow>, StoreError> {
        let q = format!(
            "UPDATE app_events SET leased_until = $2, attempts = attempts + 1
             WHERE id IN (
                SELECT e.id FROM app_events e
                WHERE e.delivered_at IS NULL AND e.next_attempt_at <= $1
                  AND (e.leased_until IS NULL OR e.leased_until <= $1)
                  AND NOT EXISTS (SELECT 1 FROM app_events p WHERE p.user_id = e.user_id
                      AND p.delivered_at IS NULL AND p.sequence < e.sequence)
                ORDER BY e.next_attempt_at, e.created_at LIMIT $3{})
             RETURNING {COLUMNS}",
            skip_locked(self.engine())
        );
        let mut rows = on_db!(self, |p| map_rows(
            &sqlx::query(&q)
                .bind(Ts(now))
                .bind(Ts(lease_until))
                .bind(limit)
                .fetch_all(p)
                .await?,
            event_row
        ))?;
        rows.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
        Ok(rows)
    }

    /// The app acknowledged these events.
    pub async fn app_events_delivered(
        &self,
        ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let q = format!(
            "UPDATE app_events SET delivered_at = $2, leased_until = NULL, last_error = NULL
             WHERE id {}",
            in_list(self.engine(), "$1")
        );
        on_db!(self, |p| {
            sqlx::query(&q)
                .bind(List(ids))
                .bind(Ts(now))
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// The attempt failed: the event is due again at `next_at`.
    pub async fn app_event_failed(
        &self,
        id: &str,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let q = "UPDATE app_events SET leased_until = NULL, next_attempt_at = $2, last_error = $3
                 WHERE id = $1 AND delivered_at IS NULL";
        on_db!(self, |p| {
            sqlx::query(q)
                .bind(id)
                .bind(Ts(next_at))
                .bind(error)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Events not yet delivered.
    pub async fn app_events_backlog(&self) -> Result<i64, StoreError> {
        let q = "SELECT count(*) AS n FROM app_events WHERE delivered_at IS NULL";
        Ok(on_db!(self, |p| sqlx::query(q)
            .fetch_one(p)
            .await?
            .int("n"))?)
    }

    /// Deletes events delivered before `before`; returns how many.
    pub async fn prune_app_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let q = "DELETE FROM app_events WHERE delivered_at IS NOT NULL AND delivered_at < $1";
        Ok(on_db!(self, |p| sqlx::query(q)
            .bind(Ts(before))
            .execute(p)
            .await?
            .rows_affected()))
    }

    /// Users whose entitlements may have changed by time alone by `now` (an end passed).
    pub async fn event_users_due(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let q = "SELECT user_id FROM app_event_users WHERE check_at <= $1
                 ORDER BY check_at, user_id LIMIT $2";
        Ok(on_db!(self, |p| map_rows(
            &sqlx::query(q)
                .bind(Ts(now))
                .bind(limit)
                .fetch_all(p)
                .await?,
            |r| r.text("user_id")
        ))?)
    }

    /// The user's stored events in sequence order (operators and tests).
    pub async fn app_events_of(&self, user_id: &str) -> Result<Vec<AppEventRow>, StoreError> {
        let q = format!("SELECT {COLUMNS} FROM app_events WHERE user_id = $1 ORDER BY sequence");
        Ok(on_db!(self, |p| map_rows(
            &sqlx::query(&q).bind(user_id).fetch_all(p).await?,
            event_row
        ))?)
    }

    /// Stored events for operators: undelivered ones first (the oldest first), then delivered
    /// ones, newest first; only `user_id`'s when given, only undelivered when `pending`.
    pub async fn app_event_list(
        &self,
        user_id: Option<&str>,
        pending: bool,
        limit: i64,
    ) -> Result<Vec<AppEventRow>, StoreError> {
        let q = format!(
            "SELECT {COLUMNS} FROM app_events
             WHERE (CAST($1 AS TEXT) IS NULL OR user_id = $1)
               AND (delivered_at IS NULL OR NOT $2)
             ORDER BY CASE WHEN delivered_at IS NULL THEN 0 ELSE 1 END,
                CASE WHEN delivered_at IS NULL THEN created_at END, delivered_at DESC,
                user_id, sequence
             LIMIT $3"
        );
        Ok(on_db!(self, |p| map_rows(
            &sqlx::query(&q)
                .bind(user_id)
                .bind(pending)
                .bind(limit)
                .fetch_all(p)
                .await?,
            event_row
        ))?)
    }

    /// Every stored event, oldest first (operators and tests).
    pub async fn app_events(&self, limit: i64) -> Result<Vec<AppEventRow>, StoreError> {
        let q = format!(
            "SELECT {COLUMNS} FROM app_events ORDER BY created_at, user_id, sequence LIMIT $1"
        );
        Ok(on_db!(self, |p| map_rows(
            &sqlx::query(&q).bind(limit).fetch_all(p).await?,
            event_row
        ))?)
    }
}
