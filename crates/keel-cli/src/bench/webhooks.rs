//! `keel bench webhooks`: signed RevenueCat webhooks through the HTTP API into the configured
//! database, beside single-job inserts measured in the same run.
//!
//! 1. an in-process API on a local port receives N distinct INITIAL_PURCHASE events from C
//!    concurrent connections, each authenticated, parsed, sealed and applied in its own
//!    transaction (webhooks/s, p50, p99);
//! 2. C concurrent tasks enqueue N jobs one at a time, each its own transaction (jobs/s);
//! 3. C concurrent tasks commit N one-row transactions (`BEGIN`, an audit row, `COMMIT`): the
//!    rate of durable commits, the limit a webhook's one commit is held to (commits/s).
//!
//! Users, events and jobs carry a prefix of their own and are deleted afterwards.

use std::sync::Arc;
use std::time::Instant;

use secrecy::SecretString;
use serde::Serialize;
use tokio::sync::{watch, Mutex};

use keel::billing::WebhookProvider;
use keel::config::Settings;
use keel::http::{self, AppState};
use keel::jobs::JobSpec;
use keel::ops::dev_webhook;
use keel::store::{Db, Engine};

use super::cpu::{CpuPerUnit, CpuSample};

#[derive(Debug, Clone, Copy)]
pub struct WebhookBench {
    pub events: usize,
    pub concurrency: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct WebhookBenchResult {
    pub engine: Engine,
    pub events: usize,
    pub concurrency: usize,
    pub webhooks_per_s: f64,
    pub webhook_p50_ms: f64,
    pub webhook_p99_ms: f64,
    pub errors: usize,
    pub job_inserts_per_s: f64,
    pub webhooks_over_job_inserts: f64,
    pub row_commits_per_s: f64,
    pub webhooks_over_row_commits: f64,
    /// CPU per webhook, this process against the local Postgres (absent where it cannot be read).
    pub webhook_cpu: Option<CpuPerUnit>,
    /// CPU per one-row transaction, the same way.
    pub row_commit_cpu: Option<CpuPerUnit>,
}

const SECRET: &str = "bench-revenuecat-webhook-secret-0123456789";

/// Runs both phases against `settings`' database (migrated).
pub async fn run(settings: &Settings, opts: WebhookBench) -> Result<WebhookBenchResult, String> {
    let mut settings = settings.clone();
    settings.billing.providers = vec![WebhookProvider::RevenueCat];
    settings.billing.revenuecat_webhook_secret = Some(SecretString::from(SECRET));
    settings.billing.revenuecat_api_key = None;
    let settings = Arc::new(settings);
    let db = Db::connect_lazy(&settings.database).map_err(|e| e.to_string())?;
    let state = AppState::new(settings.clone(), db.clone(), keel::clock::Clock::system())
        .map_err(|e| e.to_string())?;
    let prefix = format!(
        "bench-{}-",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    );
    let result = measure(&state, &prefix, opts).await;
    if let Err(e) = db.delete_billing_users(&prefix).await {
        tracing::warn!(error = %e, "cannot delete the benchmark's billing rows");
    }
    if let Err(e) = db.delete_queue(&prefix).await {
        tracing::warn!(error = %e, "cannot delete the benchmark's jobs");
    }
    result
}

async fn measure(
    state: &AppState,
    prefix: &str,
    opts: WebhookBench,
) -> Result<WebhookBenchResult, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(http::serve::serve(
        listener,
        http::router(state.clone(), None),
        stop_rx,
    ));
    let url = format!("http://{addr}/webhooks/revenuecat");
    let now = chrono::Utc::now();
    let bodies = (0..opts.events)
        .map(|i| purchase(&state.settings, &format!("{prefix}{i}"), now))
        .collect::<Result<Vec<String>, String>>()?;
    let work = Arc::new(Mutex::new(bodies));
    let client = reqwest::Client::new();
    let cpu_before = CpuSample::now();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..opts.concurrency {
        let (work, client, url) = (work.clone(), client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0usize);
            loop {
                let Some(body) = work.lock().await.pop() else {
                    break;
                };
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .header("authorization", SECRET)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().is_success() => {
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0)
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (l, e) = task.await.map_err(|e| e.to_string())?;
        latencies.extend(l);
        errors += e;
    }
    let webhook_s = started.elapsed().as_secs_f64();
    let webhook_cpu = cpu_between(cpu_before, latencies.len());
    let _ = stop_tx.send(true);
    let _ = server.await;

    let remaining = Arc::new(std::sync::atomic::AtomicUsize::new(opts.events));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..opts.concurrency {
        let (queue, remaining) = (state.queue.clone(), remaining.clone());
        let name = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            use std::sync::atomic::Ordering;
            while remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                let spec = JobSpec::new("bench.noop", serde_json::json!({})).queue(&name);
                queue.enqueue(spec).await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let insert_s = started.elapsed().as_secs_f64();

    let remaining = Arc::new(std::sync::atomic::AtomicUsize::new(opts.events));
    let cpu_before = CpuSample::now();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..opts.concurrency {
        let (db, remaining) = (state.db.clone(), remaining.clone());
        let target = format!("{prefix}commit");
        tasks.push(tokio::spawn(async move {
            use std::sync::atomic::Ordering;
            let entry = keel::store::audit::AuditEntry::new(
                "bench",
                "bench.commit",
                Some(target),
                serde_json::json!({}),
            );
            while remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                let mut tx = db.begin().await.map_err(|e| e.to_string())?;
                tx.audit(&entry, chrono::Utc::now())
                    .await
                    .map_err(|e| e.to_string())?;
                tx.commit().await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let commit_s = started.elapsed().as_secs_f64();
    let row_commit_cpu = cpu_between(cpu_before, opts.events);

    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    let webhooks_per_s = latencies.len() as f64 / webhook_s;
    let job_inserts_per_s = opts.events as f64 / insert_s;
    let row_commits_per_s = opts.events as f64 / commit_s;
    Ok(WebhookBenchResult {
        engine: state.db.engine(),
        events: opts.events,
        concurrency: opts.concurrency,
        webhooks_per_s,
        webhook_p50_ms: pick(0.5),
        webhook_p99_ms: pick(0.99),
        errors,
        job_inserts_per_s,
        webhooks_over_job_inserts: webhooks_per_s / job_inserts_per_s,
        row_commits_per_s,
        webhooks_over_row_commits: webhooks_per_s / row_commits_per_s,
        webhook_cpu,
        row_commit_cpu,
    })
}

/// CPU per unit from `before` to now.
fn cpu_between(before: Option<CpuSample>, units: usize) -> Option<CpuPerUnit> {
    Some(before?.per_unit(CpuSample::now()?, units))
}

/// A signed RevenueCat INITIAL_PURCHASE of `user` that grants the `premium` entitlement.
fn purchase(
    settings: &Settings,
    user: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, String> {
    let sample =
        dev_webhook::signed_sample(settings, "revenuecat", "INITIAL_PURCHASE", user, None, now)
            .map_err(|e| e.to_string())?;
    let mut event: serde_json::Value =
        serde_json::from_str(&sample.body).map_err(|e| e.to_string())?;
    if let Some(ids) = event.pointer_mut("/event/entitlement_ids") {
        *ids = serde_json::json!(["premium"]);
    }
    Ok(event.to_string())
}
