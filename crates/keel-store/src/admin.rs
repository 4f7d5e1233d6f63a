//! Operator actions, flags, audit rows and schedule ticks: one statement text for both engines.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::audit::{AuditEntry, AuditRow};
use super::jobs::{JobAction, JobFilter};
use super::sql::{arg_matches, map_rows, on_db, on_tx, Cols, Ts, Uid};
use super::{postgres, Db, Engine, StoreError, Tx};

pub use keel_domain::flags::FlagRow;

/// A retried job must not make a second live job with its unique key: it is skipped while a live
/// job holds the key, and of several finished jobs sharing a key only the newest comes back.
const RETRY_KEEPS_KEYS_UNIQUE: &str = "AND (unique_key IS NULL OR state = 'retryable' OR (
        NOT EXISTS (SELECT 1 FROM jobs l WHERE l.unique_key = jobs.unique_key
            AND l.state IN ('scheduled', 'available', 'running', 'retryable'))
        AND id = (SELECT max(d.id) FROM jobs d WHERE d.unique_key = jobs.unique_key
            AND d.state IN ('discarded', 'cancelled'))))";

const WAITING: &str = "('scheduled', 'available', 'retryable')";

/// The states `action` touches among those `filter` names, as an SQL list of literals; `None`
/// when it touches none of them.
fn action_states(action: JobAction, filter: &JobFilter) -> Option<String> {
    let states = action.states_within(&filter.states);
    (!states.is_empty()).then(|| {
        let quoted: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
        format!("({})", quoted.join(", "))
    })
}

/// The ids a filter selects among jobs in `states`; binds `$1`–`$4` and `$6`–`$7`.
fn filter_sql(engine: Engine, states: &str) -> String {
    format!(
        "SELECT id FROM jobs WHERE state IN {states} AND (CAST($1 AS BIGINT) IS NULL OR id = $1)
           AND (CAST($2 AS TEXT) IS NULL OR queue = $2) AND (CAST($3 AS TEXT) IS NULL OR kind = $3)
           AND {}
         ORDER BY id LIMIT $4",
        arg_matches(engine, "$6", "$7")
    )
}

fn audit_row(r: &impl Cols) -> Result<AuditRow, sqlx::Error> {
    Ok(AuditRow {
        at: r.at("at")?,
        actor: r.text("actor")?,
        action: r.text("action")?,
        target: r.text_opt("target")?,
        metadata: r.json("metadata").unwrap_or(serde_json::Value::Null),
    })
}

fn flag_row(r: &impl Cols) -> Result<FlagRow, sqlx::Error> {
    Ok(FlagRow {
        name: r.text("name")?,
        enabled: r.flag("enabled")?,
        updated_at: r.at("updated_at")?,
        updated_by: r.text("updated_by")?,
    })
}

impl Db {
    pub async fn flags(&self) -> Result<Vec<FlagRow>, StoreError> {
        let mut tx = self.begin().await?;
        let rows = tx.flags().await?;
        tx.commit().await?;
        Ok(rows)
    }

    pub async fn audit_rows(
        &self,
        target: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let mut tx = self.begin().await?;
        let rows = tx.audit_rows(target, limit).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// The latest recorded firing of each schedule (the part of a tick's name before any `@`).
    pub async fn last_ticks(&self) -> Result<BTreeMap<String, DateTime<Utc>>, StoreError> {
        let mut tx = self.begin().await?;
        let q = "SELECT name, max(fired_at) AS at FROM schedule_ticks GROUP BY name";
        let rows = on_tx!(&mut tx, |c| map_rows(
            &sqlx::query(q).fetch_all(&mut **c).await?,
            |r| Ok((r.text("name")?, r.at("at")?))
        ))?;
        tx.commit().await?;
        let mut latest = BTreeMap::new();
        for (name, at) in rows {
            let schedule = name.split('@').next().unwrap_or_default().to_string();
            let entry = latest.entry(schedule).or_insert(at);
            *entry = (*entry).max(at);
        }
        Ok(latest)
    }
}

/// The latest recorded firing of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    /// The cron time it fired for (the epoch for a trigger with an idempotency key).
    pub fire_at: DateTime<Utc>,
    /// When it fired.
    pub fired_at: DateTime<Utc>,
    /// The job it enqueued.
    pub job_id: Option<i64>,
}

impl Db {
    /// The latest firing of each schedule (triggers with an idempotency key, recorded as
    /// `NAME@KEY`, count as firings of `NAME`).
    pub async fn latest_firings(&self) -> Result<BTreeMap<String, Firing>, StoreError> {
        let q = "SELECT name, fire_at, fired_at, job_id FROM schedule_ticks t
                 WHERE fired_at = (SELECT max(u.fired_at) FROM schedule_ticks u WHERE u.name = t.name)";
        let rows = on_db!(self, |p| map_rows(
            &sqlx::query(q).fetch_all(p).await?,
            |r| Ok((
                r.text("name")?,
                Firing {
                    fire_at: r.at("fire_at")?,
                    fired_at: r.at("fired_at")?,
                    job_id: r.int_opt("job_id")?,
                }
            ))
        ))?;
        let mut latest: BTreeMap<String, Firing> = BTreeMap::new();
        for (name, firing) in rows {
            let schedule = name.split('@').next().unwrap_or_default().to_string();
            match latest.get(&schedule) {
                Some(known)
                    if (known.fired_at, known.fire_at) >= (firing.fired_at, firing.fire_at) => {}
                _ => {
                    latest.insert(schedule, firing);
                }
            }
        }
        Ok(latest)
    }
}

impl Tx {
    pub async fn audit(
        &mut self,
        entry: &AuditEntry,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let q = "INSERT INTO audit_log (id, at, actor, action, target, metadata)
                 VALUES ($1, $2, $3, $4, $5, $6)";
        on_tx!(self, |c| {
            sqlx::query(q)
                .bind(Uid(uuid::Uuid::now_v7()))
                .bind(Ts(now))
                .bind(&entry.actor)
                .bind(&entry.action)
                .bind(&entry.target)
                .bind(Json(&entry.metadata))
                .execute(&mut **c)
                .await?;
        });
        Ok(())
    }

    pub async fn audit_rows(
        &mut self,
        target: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let q = "SELECT at, actor, action, target, metadata FROM audit_log
                 WHERE (CAST($1 AS TEXT) IS NULL OR target = $1) ORDER BY at DESC, id DESC LIMIT $2";
        Ok(on_tx!(self, |c| map_rows(
            &sqlx::query(q)
                .bind(target)
                .bind(limit)
                .fetch_all(&mut **c)
                .await?,
            audit_row
        ))?)
    }

    /// Jobs matching `filter` in the states it names that a retry applies to (retryable,
    /// discarded, cancelled; all three when it names none) become available now. Returns ids.
    pub async fn retry_jobs(
        &mut self,
        filter: &JobFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let Some(states) = action_states(JobAction::Retry, filter) else {
            return Ok(Vec::new());
        };
        let q = format!(
            "UPDATE jobs SET state = 'available', run_at = $5, finished_at = NULL,
                max_attempts = CASE WHEN max_attempts > attempt THEN max_attempts ELSE attempt + 1 END
             WHERE id IN ({}) {RETRY_KEEPS_KEYS_UNIQUE} RETURNING id",
            filter_sql(self.engine(), &states)
        );
        let ids = on_tx!(&mut *self, |c| map_rows(
            &sqlx::query(&q)
                .bind(filter.id)
                .bind(&filter.queue)
                .bind(&filter.kind)
                .bind(filter.limit)
                .bind(Ts(now))
                .bind(filter.arg.as_ref().map(|a| a.key.as_str()))
                .bind(filter.arg.as_ref().map(|a| a.value.as_str()))
                .fetch_all(&mut **c)
                .await?,
            |r| r.int_at(0)
        ))?;
        if let Tx::Postgres(c) = self {
            postgres::jobs::notify_queues_of(c, &ids).await?;
        }
        Ok(ids)
    }

    /// Jobs matching `filter` in the states it names that a discard applies to (scheduled,
    /// available, retryable; all three when it names none) are discarded. Returns ids.
    pub async fn discard_jobs(
        &mut self,
        filter: &JobFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let Some(states) = action_states(JobAction::Discard, filter) else {
            return Ok(Vec::new());
        };
        let q = format!(
            "UPDATE jobs SET state = 'discarded', finished_at = $5,
                last_error = COALESCE(last_error, 'discarded by an operator')
             WHERE id IN ({}) RETURNING id",
            filter_sql(self.engine(), &states)
        );
        Ok(on_tx!(self, |c| map_rows(
            &sqlx::query(&q)
                .bind(filter.id)
                .bind(&filter.queue)
                .bind(&filter.kind)
                .bind(filter.limit)
                .bind(Ts(now))
                .bind(filter.arg.as_ref().map(|a| a.key.as_str()))
                .bind(filter.arg.as_ref().map(|a| a.value.as_str()))
                .fetch_all(&mut **c)
                .await?,
            |r| r.int_at(0)
        ))?)
    }

    /// Every waiting job of `queue` is cancelled. Returns how many.
    pub async fn drain_queue(
        &mut self,
        queue: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let q = format!(
            "UPDATE jobs SET state = 'cancelled', finished_at = $2
             WHERE queue = $1 AND state IN {WAITING}"
        );
        Ok(on_tx!(self, |c| sqlx::query(&q)
            .bind(queue)
            .bind(Ts(now))
            .execute(&mut **c)
            .await?
            .rows_affected()))
    }

    pub async fn flags(&mut self) -> Result<Vec<FlagRow>, StoreError> {
        let q = "SELECT name, enabled, updated_at, updated_by FROM flags ORDER BY name";
        Ok(on_tx!(self, |c| map_rows(
            &sqlx::query(q).fetch_all(&mut **c).await?,
            flag_row
        ))?)
    }

    pub async fn set_flag(
        &mut self,
        name: &str,
        enabled: bool,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let q = "INSERT INTO flags (name, enabled, updated_at, updated_by) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET enabled = $2, updated_at = $3, updated_by = $4";
        on_tx!(self, |c| {
            sqlx::query(q)
                .bind(name)
                .bind(enabled)
                .bind(Ts(now))
                .bind(actor)
                .execute(&mut **c)
                .await?;
        });
        Ok(())
    }

    /// Records the firing of schedule `name` for `fire_at`; false when it was already recorded.
    pub async fn record_tick(
        &mut self,
        name: &str,
        fire_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let q = "INSERT INTO schedule_ticks (name, fire_at, fired_at) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING";
        Ok(on_tx!(self, |c| sqlx::query(q)
            .bind(name)
            .bind(Ts(fire_at))
            .bind(Ts(now))
            .execute(&mut **c)
            .await?
            .rows_affected()
            == 1))
    }

    /// Attaches the job a tick enqueued, or reads it back for a tick fired before.
    pub async fn tick_job(
        &mut self,
        name: &str,
        fire_at: DateTime<Utc>,
        job_id: Option<i64>,
    ) -> Result<Option<i64>, StoreError> {
        if let Some(id) = job_id {
            let q = "UPDATE schedule_ticks SET job_id = $3 WHERE name = $1 AND fire_at = $2";
            on_tx!(self, |c| {
                sqlx::query(q)
                    .bind(name)
                    .bind(Ts(fire_at))
                    .bind(id)
                    .execute(&mut **c)
                    .await?;
            });
            return Ok(Some(id));
        }
        let q = "SELECT job_id FROM schedule_ticks WHERE name = $1 AND fire_at = $2";
        Ok(on_tx!(self, |c| sqlx::query(q)
            .bind(name)
            .bind(Ts(fire_at))
            .fetch_optional(&mut **c)
            .await?
            .and_then(|r| r.int_opt("job_id").ok().flatten())))
    }
}
