//! Jobs on Postgres: claims with `FOR UPDATE SKIP LOCKED`, outcomes and the next claim fused in
//! one statement, `pg_notify` on insert so idle workers wake at once.

use chrono::{DateTime, Utc};
use sqlx::{Executor, PgConnection, Row};

use super::PgDb;

use keel_domain::jobs::{
    BreakerPolicy, ClaimSpec, Claimed, Enqueued, JobState, NewJob, Outcome, Report,
};

use crate::breakers::record_breakers_postgres;
use crate::job_insert::{insert_one_postgres, start_of, timeout_ms};

pub const CHANNEL: &str = "keel_jobs";

pub(crate) async fn insert_jobs(
    pool: &PgDb,
    now: DateTime<Utc>,
    jobs: &[NewJob],
) -> Result<Vec<Enqueued>, sqlx::Error> {
    if jobs.iter().all(|j| j.unique_key.is_none()) {
        // One statement, one round trip: insert and notify commit together.
        let mut conn = pool.work().await?;
        let ids = insert_plain(&mut conn, now, jobs.iter(), true).await?;
        conn.finish().await?;
        return Ok(ids
            .into_iter()
            .map(|id| Enqueued {
                id,
                deduplicated: false,
            })
            .collect());
    }
    let mut tx = pool.begin().await?;
    let out = insert_jobs_in(&mut tx, now, jobs).await?;
    tx.commit().await?;
    Ok(out)
}

/// Inserts on the caller's connection or transaction.
pub async fn insert_jobs_in(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    jobs: &[NewJob],
) -> Result<Vec<Enqueued>, sqlx::Error> {
    let mut out = vec![
        Enqueued {
            id: 0,
            deduplicated: false
        };
        jobs.len()
    ];
    let (plain, unique): (Vec<usize>, Vec<usize>) =
        (0..jobs.len()).partition(|&i| jobs[i].unique_key.is_none());
    if !plain.is_empty() {
        let ids = insert_plain(conn, now, plain.iter().map(|&i| &jobs[i]), false).await?;
        for (slot, id) in plain.iter().zip(ids) {
            out[*slot] = Enqueued {
                id,
                deduplicated: false,
            };
        }
    }
    for i in unique {
        out[i] = insert_one_postgres(conn, now, &jobs[i]).await?;
    }
    let mut queues: Vec<&str> = jobs
        .iter()
        .filter(|j| j.run_at.is_none_or(|at| at <= now))
        .map(|j| j.queue.as_str())
        .collect();
    queues.sort_unstable();
    queues.dedup();
    if !queues.is_empty() {
        conn.execute(
            sqlx::query("SELECT pg_notify($1, q) FROM UNNEST($2::text[]) AS q")
                .bind(CHANNEL)
                .bind(&queues),
        )
        .await?;
    }
    Ok(out)
}

const INSERT: &str = "WITH ins AS (
        INSERT INTO jobs (queue, kind, args, state, priority, run_at, max_attempts, timeout_ms, breaker_key, created_at)
        SELECT q, k, a, s, p, r, m, t, b, $10
        FROM UNNEST($1::text[], $2::text[], $3::jsonb[], $4::text[], $5::smallint[], $6::timestamptz[], $7::int[], $8::bigint[], $9::text[])
          AS u(q, k, a, s, p, r, m, t, b)
        RETURNING id, queue, state)
    SELECT id FROM ins ORDER BY id";

const INSERT_AND_NOTIFY: &str = "WITH ins AS (
        INSERT INTO jobs (queue, kind, args, state, priority, run_at, max_attempts, timeout_ms, breaker_key, created_at)
        SELECT q, k, a, s, p, r, m, t, b, $11
        FROM UNNEST($2::text[], $3::text[], $4::jsonb[], $5::text[], $6::smallint[], $7::timestamptz[], $8::int[], $9::bigint[], $10::text[])
          AS u(q, k, a, s, p, r, m, t, b)
        RETURNING id, queue, state),
    notified AS (
        SELECT count(pg_notify($1, q)) AS n FROM (SELECT DISTINCT queue AS q FROM ins WHERE state = 'available') s)
    SELECT id FROM ins, notified ORDER BY id";

/// Binds the channel first: it is `$1` of the notifying statement (whose other parameters follow).
fn bind_channel(
    query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    notify: bool,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    if notify {
        query.bind(CHANNEL)
    } else {
        query
    }
}

/// A job is running exactly while `locked_by` names a worker (claims set it; outcomes, releases
/// and rescues clear it), so statements on a worker's own jobs match `id` and `locked_by` only:
/// the primary key serves them, never a scan of the running jobs' index.
///
/// Writes outcomes and claims the next jobs in one statement. `{AFTER}` is empty, or the cursor
/// condition, which the index `(queue, priority, run_at, id)` serves as a seek. Each reported
/// job and each claimed one is found by primary key, driven by the reports' ids and by the
/// claimed ids as an array, so a plan made once (the claims pool's) holds at any table size.
const CLAIM_TEMPLATE: &str = "WITH reported AS (
                    UPDATE jobs j SET
                        state = r.state,
                        run_at = COALESCE(r.run_at, j.run_at),
                        last_error = COALESCE(r.error, j.last_error),
                        finished_at = CASE WHEN r.state IN ('completed', 'discarded') THEN $5 ELSE NULL END,
                        locked_by = NULL,
                        lease_expires_at = NULL
                    FROM UNNEST($1::bigint[], $2::text[], $3::timestamptz[], $4::text[]) AS r(id, state, run_at, error)
                    WHERE j.id = r.id AND j.locked_by = $6
                    RETURNING j.id
                ),
                next AS (
                    SELECT id FROM jobs
                    WHERE state IN ('available', 'scheduled', 'retryable') AND queue = $7 AND run_at <= $5
                      {AFTER}
                      AND (breaker_key IS NULL OR NOT EXISTS (
                          SELECT 1 FROM job_breakers b WHERE b.key = jobs.breaker_key AND b.open_until > $5))
                    ORDER BY priority, run_at, id
                    LIMIT $8
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE jobs j SET state = 'running', attempt = j.attempt + 1, attempted_at = $5,
                    lease_expires_at = $9, locked_by = $6
                WHERE j.id = ANY(ARRAY(SELECT id FROM next))
                RETURNING j.id, j.queue, j.kind, j.args, j.attempt, j.max_attempts, j.timeout_ms,
                    j.breaker_key, j.run_at, j.priority, j.created_at";

static CLAIM: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    CLAIM_TEMPLATE.replace(
        "{AFTER}",
        "AND $10::smallint IS NULL AND $11::timestamptz IS NULL AND $12::bigint IS NULL",
    )
});

static CLAIM_AFTER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    CLAIM_TEMPLATE.replace(
        "{AFTER}",
        "AND (priority, run_at, id) > ($10::smallint, $11::timestamptz, $12::bigint)",
    )
});

/// Inserts jobs without unique keys in one statement; with `notify`, the same statement also
/// announces the queues that received available jobs.
async fn insert_plain<'a>(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    jobs: impl Iterator<Item = &'a NewJob>,
    notify: bool,
) -> Result<Vec<i64>, sqlx::Error> {
    let (mut queue, mut kind, mut args, mut state, mut priority) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut run_at, mut max_attempts, mut timeout, mut breaker) = (vec![], vec![], vec![], vec![]);
    for job in jobs {
        let (s, at) = start_of(job, now);
        queue.push(job.queue.as_str());
        kind.push(job.kind.as_str());
        args.push(&job.args);
        state.push(s.as_str());
        priority.push(job.priority);
        run_at.push(at);
        max_attempts.push(job.max_attempts);
        timeout.push(timeout_ms(job));
        breaker.push(job.breaker_key.as_deref());
    }
    let rows = conn
        .fetch_all(
            bind_channel(
                sqlx::query(if notify { INSERT_AND_NOTIFY } else { INSERT }),
                notify,
            )
            .bind(&queue)
            .bind(&kind)
            .bind(&args)
            .bind(&state)
            .bind(&priority)
            .bind(&run_at)
            .bind(&max_attempts)
            .bind(&timeout)
            .bind(&breaker)
            .bind(now),
        )
        .await?;
    rows.iter().map(|r| r.try_get::<i64, _>(0)).collect()
}

pub(crate) async fn report_and_claim(
    pool: &PgDb,
    reports: &[Report],
    spec: &ClaimSpec<'_>,
    breakers: BreakerPolicy,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let mut conn = pool.work().await?;
    if reports.iter().any(|r| r.breaker_key.is_some()) {
        record_breakers_postgres(&mut conn, reports, spec.now, breakers).await?;
    }
    let (mut ids, mut states, mut run_ats, mut errors) = (vec![], vec![], vec![], vec![]);
    for report in reports {
        let (state, run_at, error) = match &report.outcome {
            Outcome::Completed => (JobState::Completed, None, None),
            Outcome::Retry { run_at, error } => {
                (JobState::Retryable, Some(*run_at), Some(error.as_str()))
            }
            Outcome::Discard { error } => (JobState::Discarded, None, Some(error.as_str())),
        };
        ids.push(report.id);
        states.push(state.as_str());
        run_ats.push(run_at);
        errors.push(error);
    }
    let sql = if spec.after.is_some() {
        &*CLAIM_AFTER
    } else {
        &*CLAIM
    };
    let cursor = spec.after;
    let rows = conn
        .fetch_all(
            sqlx::query(sql)
                .bind(&ids)
                .bind(&states)
                .bind(&run_ats)
                .bind(&errors)
                .bind(spec.now)
                .bind(spec.worker)
                .bind(spec.queue)
                .bind(spec.limit)
                .bind(spec.lease_until)
                .bind(cursor.map(|c| c.priority))
                .bind(cursor.map(|c| c.run_at))
                .bind(cursor.map(|c| c.id)),
        )
        .await?;
    conn.finish().await?;
    let mut claimed: Vec<(i16, Claimed)> = rows
        .iter()
        .map(|row| {
            Ok((
                row.try_get("priority")?,
                Claimed {
                    id: row.try_get("id")?,
                    priority: row.try_get("priority")?,
                    queue: row.try_get("queue")?,
                    kind: row.try_get("kind")?,
                    args: row.try_get("args")?,
                    attempt: row.try_get("attempt")?,
                    max_attempts: row.try_get("max_attempts")?,
                    timeout: std::time::Duration::from_millis(
                        row.try_get::<i64, _>("timeout_ms")?.max(0) as u64,
                    ),
                    breaker_key: row.try_get("breaker_key")?,
                    run_at: row.try_get("run_at")?,
                    created_at: row.try_get("created_at")?,
                },
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    claimed.sort_by_key(|(priority, c)| (*priority, c.run_at, c.id));
    Ok(claimed.into_iter().map(|(_, c)| c).collect())
}

/// What a rescued job becomes: available again, or discarded when that was its last attempt.
/// Announces the queues of `ids` (jobs made available again) to listening workers.
pub(crate) async fn notify_queues_of(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    conn.execute(
        sqlx::query(
            "SELECT pg_notify($1, q) FROM (SELECT DISTINCT queue AS q FROM jobs WHERE id = ANY($2)) s",
        )
        .bind(CHANNEL)
        .bind(ids),
    )
    .await
    .map(|_| ())
}
