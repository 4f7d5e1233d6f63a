//! `keel bench http`: requests per second through the full edge stack, a trivial route against
//! `GET /v1/me` with a valid RS256 token, on one in-process server (SQLite in a temporary
//! directory, keys from a [`FakeIdp`]). Scenarios alternate for several rounds; the machine's
//! noise hits both alike, and the report gives medians.

use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use serde::Serialize;

use crate::{FakeIdp, TestApp, TestDb};

#[derive(Debug, Clone, Copy)]
pub struct HttpBench {
    pub connections: usize,
    pub seconds: f64,
    pub rounds: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub name: &'static str,
    pub path: &'static str,
    pub requests_per_s: f64,
    pub rounds_requests_per_s: Vec<f64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HttpBenchResult {
    pub connections: usize,
    pub seconds_per_round: f64,
    pub rounds: usize,
    pub scenarios: Vec<Scenario>,
    /// `GET /v1/me` throughput as a share of the trivial route's.
    pub me_over_trivial: f64,
}

const TRIVIAL: &str = "/bench/trivial";
const ME: &str = "/v1/me";

pub async fn run(opts: HttpBench) -> Result<HttpBenchResult, String> {
    let idp = FakeIdp::start().await;
    let routes = Router::new().route(TRIVIAL, get(|| async { "ok" }));
    let app = TestApp::builder(TestDb::sqlite())
        .env("AUTH_JWKS_URL", &idp.jwks_url())
        .env("AUTH_ISSUER", &idp.issuer())
        .env("AUTH_AUDIENCE", "keel-test")
        .env("LOG_LEVEL", "error")
        .routes(routes)
        .spawn()
        .await;
    let mut claims = idp.claims("bench-user");
    claims["exp"] = serde_json::json!(chrono_now() + 3600);
    let token = idp.token(&claims);
    let warm = app
        .client
        .get(app.url(ME))
        .bearer_auth(&token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if warm.status() != 200 {
        return Err(format!(
            "GET /v1/me answered {} with the bench token",
            warm.status()
        ));
    }
    let mut results: Vec<(Vec<f64>, Vec<u32>, u64)> =
        vec![(vec![], vec![], 0), (vec![], vec![], 0)];
    for _ in 0..opts.rounds {
        for (i, (path, auth)) in [(TRIVIAL, None), (ME, Some(token.as_str()))]
            .into_iter()
            .enumerate()
        {
            let (rps, latencies, errors) = load(&app.url(path), auth, opts).await;
            results[i].0.push(rps);
            results[i].1.extend(latencies);
            results[i].2 += errors;
        }
    }
    let _ = app.shutdown().await;
    let scenarios: Vec<Scenario> = results
        .into_iter()
        .zip([("trivial route", TRIVIAL), ("GET /v1/me (RS256)", ME)])
        .map(|((rounds, mut latencies, errors), (name, path))| {
            latencies.sort_unstable();
            Scenario {
                name,
                path,
                requests_per_s: median(&rounds),
                rounds_requests_per_s: rounds,
                p50_ms: percentile(&latencies, 0.50),
                p99_ms: percentile(&latencies, 0.99),
                errors,
            }
        })
        .collect();
    let me_over_trivial = scenarios[1].requests_per_s / scenarios[0].requests_per_s.max(1.0);
    Ok(HttpBenchResult {
        connections: opts.connections,
        seconds_per_round: opts.seconds,
        rounds: opts.rounds,
        scenarios,
        me_over_trivial,
    })
}

/// `connections` keep-alive clients request `url` in a loop for `opts.seconds`.
async fn load(url: &str, token: Option<&str>, opts: HttpBench) -> (f64, Vec<u32>, u64) {
    let deadline = Instant::now() + Duration::from_secs_f64(opts.seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..opts.connections)
        .map(|_| {
            let url = url.to_string();
            let token = token.map(str::to_string);
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap_or_default();
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let mut request = client.get(&url);
                    if let Some(token) = &token {
                        request = request.bearer_auth(token);
                    }
                    let sent = Instant::now();
                    match request.send().await {
                        Ok(r) if r.status() == 200 => {
                            let _ = r.bytes().await;
                            latencies.push(sent.elapsed().as_micros() as u32);
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut all, mut errors) = (Vec::new(), 0);
    for task in tasks {
        if let Ok((latencies, e)) = task.await {
            all.extend(latencies);
            errors += e;
        }
    }
    let rps = all.len() as f64 / started.elapsed().as_secs_f64();
    (rps, all, errors)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

fn percentile(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((sorted_us.len() as f64 * q).ceil() as usize).clamp(1, sorted_us.len());
    f64::from(sorted_us[rank - 1]) / 1000.0
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
