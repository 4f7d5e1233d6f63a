//! Keel behind PgBouncer in transaction pool mode (`DATABASE_POOLER=transaction`): migrations from
//! processes started together, webhooks, enqueues, job processing and flag reads and writes under
//! concurrency, with fewer servers than client connections, and not one 5xx or panic.

use crate::common;
use crate::pooler_support::{pgbouncer_binary, Bouncer};

use std::time::{Duration, Instant};

use chrono::Utc;
use keel::config::{Settings, Source};
use keel_testkit::KeelProcess;
use serde_json::{json, Value};

use common::{bin, keel};

const RC_SECRET: &str = "revenuecat-webhook-secret-0123456789abcdef";
const ADMIN_TOKEN: &str = "admin-token-for-the-pooler-test-0123456789";
const WEBHOOKS: usize = 100;
const ENQUEUES: usize = 200;
const FLAG_WRITES: usize = 20;

fn env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", url.to_string()),
        ("DATABASE_POOLER", "transaction".into()),
        ("DATABASE_POOL_SIZE", "12".into()),
        ("WORKER_CONCURRENCY", "8".into()),
        ("REVENUECAT_WEBHOOK_SECRET", RC_SECRET.into()),
        ("ADMIN_TOKEN", ADMIN_TOKEN.into()),
        ("LOG_LEVEL", "warn".into()),
    ]
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Signed RevenueCat purchases, one per user, as `keel dev webhook` would send them.
fn webhooks(dir: &std::path::Path) -> Vec<keel::ops::dev_webhook::SignedSample> {
    let settings = Settings::load(&Source::from_pairs(
        [("REVENUECAT_WEBHOOK_SECRET", RC_SECRET)],
        dir,
    ))
    .expect("settings");
    (0..WEBHOOKS)
        .map(|i| {
            keel::ops::dev_webhook::signed_sample(
                &settings,
                "revenuecat",
                "INITIAL_PURCHASE",
                &format!("pooled-{i}"),
                None,
                Utc::now(),
            )
            .expect("sample event")
        })
        .collect()
}

/// Sends every request at once and returns each status.
async fn all_at_once(requests: Vec<reqwest::RequestBuilder>) -> Vec<(u16, String)> {
    let sent = requests.into_iter().map(|r| async move {
        match r.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.text().await.unwrap_or_default())
            }
            Err(e) => (0, e.to_string()),
        }
    });
    futures_join_all(sent).await
}

async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.expect("request task"));
    }
    out
}

async fn completed_noops(client: &reqwest::Client, server: &KeelProcess) -> usize {
    let listed: Value = client
        .get(server.url("/admin/api/jobs?kind=diag.noop&state=completed&limit=1000"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("list jobs")
        .json()
        .await
        .expect("jobs JSON");
    listed.as_array().map(Vec::len).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keel_works_behind_pgbouncer_in_transaction_mode() {
    let Some(server_url) = keel_testkit::postgres_url() else {
        return;
    };
    let Some(pgbouncer) = pgbouncer_binary() else {
        return;
    };
    // Four servers for two migration runners, then for a pool of twelve connections.
    let bouncer = Bouncer::start(&pgbouncer, &server_url, 4).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let env = env(&bouncer.url());

    // Two runners started together through the pooler: each migration applied once.
    let runners: Vec<_> = (0..2)
        .map(|_| {
            let (dir, env) = (dir.path().to_path_buf(), env.clone());
            std::thread::spawn(move || keel(&dir, &pairs(&env), &["migrate", "up"]))
        })
        .collect();
    for runner in runners {
        let run = runner.join().expect("migration runner");
        run.assert_code(0);
    }
    let verify = keel(dir.path(), &pairs(&env), &["migrate", "verify"]);
    verify.assert_code(0);
    let status = keel(dir.path(), &pairs(&env), &["migrate", "status", "--json"]);
    let report = status.assert_code(0).json();
    let states: Vec<&str> = report["migrations"]
        .as_array()
        .expect("migrations")
        .iter()
        .map(|m| m["state"].as_str().unwrap_or_default())
        .collect();
    assert!(
        !states.is_empty() && states.iter().all(|s| *s == "applied"),
        "{report}"
    );

    // `keel bench webhooks` goes through the pooler too (its migration check included).
    let bench = keel(
        dir.path(),
        &pairs(&env),
        &[
            "bench",
            "webhooks",
            "--events",
            "40",
            "--concurrency",
            "4",
            "--json",
        ],
    );
    let line = bench
        .assert_code(0)
        .stdout
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let measured: Value = serde_json::from_str(&line).expect("bench JSON");
    assert_eq!(measured["errors"], 0, "{}", bench.describe());

    // With DATABASE_DIRECT_URL, migrations bypass the pooler.
    let mut direct = env.clone();
    direct.push(("DATABASE_DIRECT_URL", bouncer.direct_url()));
    keel(dir.path(), &pairs(&direct), &["migrate", "verify"]).assert_code(0);
    // keel backup runs pg_dump, which needs a session: it takes DATABASE_DIRECT_URL.
    keel(dir.path(), &pairs(&direct), &["backup", "pooled.backup"]).assert_code(0);

    let mut server = KeelProcess::serve(&bin(), dir.path(), &pairs(&env), &[]);
    server.wait_ready(Duration::from_secs(60)).await;
    let client = reqwest::Client::new();

    let mut requests = Vec::new();
    for sample in webhooks(dir.path()) {
        let mut request = client
            .post(server.url(sample.path))
            .header("content-type", "application/json");
        for (name, value) in &sample.headers {
            request = request.header(*name, value);
        }
        requests.push(request.body(sample.body));
    }
    for i in 0..ENQUEUES {
        requests.push(
            client
                .post(server.url("/admin/api/jobs"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({"kind": "diag.noop", "args": {"n": i}})),
        );
    }
    for i in 0..FLAG_WRITES {
        requests.push(
            client
                .put(server.url("/admin/api/flags/queue:pooler-probe"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({"enabled": i % 2 == 0})),
        );
        requests.push(
            client
                .get(server.url("/admin/api/flags"))
                .bearer_auth(ADMIN_TOKEN),
        );
    }
    let answers = all_at_once(requests).await;
    let failed: Vec<&(u16, String)> = answers
        .iter()
        .filter(|(status, _)| !(200..300).contains(status))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed, e.g. {:?}\n--- keel\n{}\n--- pgbouncer\n{}",
        failed.len(),
        answers.len(),
        failed.iter().take(5).collect::<Vec<_>>(),
        server.logs(),
        bouncer.logs()
    );

    // Every enqueued job runs (workers poll: LISTEN needs a session).
    let started = Instant::now();
    loop {
        let done = completed_noops(&client, &server).await;
        if done == ENQUEUES {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{done} of {ENQUEUES} jobs completed within a minute\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let health: Value = client
        .get(server.url("/health"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("health JSON");
    assert_eq!(health["checks"]["database"]["status"], "ok", "{health}");

    server.signal("TERM");
    let exit = server.wait_exit(Duration::from_secs(30)).await;
    let logs = server.logs();
    assert_eq!(exit.code(), Some(0), "{logs}");
    for bad in ["panicked", "ERROR", "prepared statement"] {
        assert!(!logs.contains(bad), "{bad:?} in the log:\n{logs}");
    }
}
