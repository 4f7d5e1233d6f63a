//! `keel bench http`: requests per second on one machine, three scenarios alternating for several
//! rounds (the machine's noise hits all alike; the report gives medians):
//!
//! - `bare route`: the same trivial handler with no edge stack at all (same accept loop);
//! - `trivial route`: that handler behind Keel's full edge stack (request id, security headers,
//!   access log and metrics, problem bodies, limits, panic capture, rate limiting);
//! - `GET /v1/me (RS256)`: with a valid RS256 token from an [`Issuer`] whose RSA key is
//!   generated for the run, on SQLite.
//!
//! Rate limiting is measured, never refused: the routes are under a policy far above what one
//! machine can send. With `KEEL_BENCH_REDIS_URL` set, two more scenarios alternate in rounds of
//! their own: the trivial route with the in-memory rate limiter and with the Redis one.

mod instance;
mod issuer;
pub mod serve;
pub mod storage;

use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use serde::Serialize;

use instance::Instance;
use issuer::Issuer;

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
    /// The full edge stack's throughput as a share of the bare route's.
    pub edge_over_bare: f64,
}

const TRIVIAL: &str = "/bench/trivial";
const BARE: &str = "/bench/bare";
const ME: &str = "/v1/me";

pub async fn run(opts: HttpBench) -> Result<HttpBenchResult, String> {
    let issuer = Issuer::start().await?;
    let limits = tempfile::tempdir().map_err(|e| e.to_string())?;
    let routes = Router::new().route(TRIVIAL, get(|| async { "ok" }));
    let env = [
        ("AUTH_JWKS_URL", issuer.jwks_url()),
        ("AUTH_ISSUER", issuer.issuer()),
        ("AUTH_AUDIENCE", issuer::AUDIENCE.to_string()),
        ("KEEL_CONFIG", limits_config(limits.path(), "bench")?),
    ];
    let app = Instance::start(&env, routes).await?;
    let token = issuer.token("bench-user")?;
    let client = reqwest::Client::new();
    let warm = client
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
    let bare = bare_server().await?;
    let targets = [
        (format!("http://{bare}{BARE}"), None),
        (app.url(TRIVIAL), None),
        (app.url(ME), Some(token.as_str())),
    ];
    let mut results: Vec<(Vec<f64>, Vec<u32>, u64)> = vec![(vec![], vec![], 0); 3];
    for _ in 0..opts.rounds {
        for (i, (url, auth)) in targets.iter().enumerate() {
            let (rps, latencies, errors) = load(url, *auth, None, opts).await;
            results[i].0.push(rps);
            results[i].1.extend(latencies);
            results[i].2 += errors;
        }
    }
    let _ = app.shutdown().await;
    let scenarios: Vec<Scenario> = results
        .into_iter()
        .zip([
            ("bare route", BARE),
            ("trivial route", TRIVIAL),
            ("GET /v1/me (RS256)", ME),
        ])
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
    let mut scenarios = scenarios;
    scenarios.extend(limiter_scenarios(opts).await?);
    let edge_over_bare = scenarios[1].requests_per_s / scenarios[0].requests_per_s.max(1.0);
    let me_over_trivial = scenarios[2].requests_per_s / scenarios[1].requests_per_s.max(1.0);
    Ok(HttpBenchResult {
        connections: opts.connections,
        seconds_per_round: opts.seconds,
        rounds: opts.rounds,
        scenarios,
        me_over_trivial,
        edge_over_bare,
    })
}

/// Set to a Redis URL, `keel bench http` also compares the in-memory and Redis rate limiters.
pub const REDIS_ENV: &str = "KEEL_BENCH_REDIS_URL";

/// A `keel.toml` putting the bench routes under one policy far above what one machine can send:
/// every request is checked, none refused. Returns its path.
fn limits_config(dir: &std::path::Path, name: &str) -> Result<String, String> {
    let path = dir.join(format!("{name}.toml"));
    let toml = format!(
        "[[rate_limits]]\nname = \"{name}\"\nlimit = 1000000\nperiod = \"1s\"\nkey = \"user\"\nroutes = [\"GET {TRIVIAL}\", \"GET {ME}\"]\n"
    );
    std::fs::write(&path, toml).map_err(|e| e.to_string())?;
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| "temporary path is not UTF-8".into())
}

/// With [`REDIS_ENV`] set: the trivial route on a server with the in-memory rate limiter against
/// one with the Redis limiter (the same policy, a name of its own so no key meets another run's),
/// alternating in rounds. Nothing without it.
async fn limiter_scenarios(opts: HttpBench) -> Result<Vec<Scenario>, String> {
    let Some(url) = std::env::var(REDIS_ENV).ok().filter(|v| !v.is_empty()) else {
        return Ok(Vec::new());
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let spawn = |config: String, mut env: Vec<(&'static str, String)>| async move {
        env.push(("KEEL_CONFIG", config));
        let routes = Router::new().route(TRIVIAL, get(|| async { "ok" }));
        Instance::start(&env, routes).await
    };
    let memory = spawn(limits_config(dir.path(), "bench")?, vec![]).await?;
    let name = format!("bench-{}", uuid::Uuid::now_v7().simple());
    let redis_env = vec![("RATE_LIMIT_BACKEND", "redis".into()), ("REDIS_URL", url)];
    let redis = spawn(limits_config(dir.path(), &name)?, redis_env).await?;
    let plan = [
        ("trivial (memory limit)", &memory),
        ("trivial (Redis limit)", &redis),
    ];
    for (name, app) in plan {
        let r = reqwest::get(app.url(TRIVIAL))
            .await
            .map_err(|e| e.to_string())?;
        if r.status() != 200 || r.headers().get("ratelimit").is_none() {
            return Err(format!(
                "{name}: answered {} without a working rate limiter (is {REDIS_ENV} reachable?)",
                r.status()
            ));
        }
    }
    let mut results: Vec<(Vec<f64>, Vec<u32>, u64)> = vec![(vec![], vec![], 0); plan.len()];
    for _ in 0..opts.rounds {
        for (i, (_, app)) in plan.iter().enumerate() {
            let (rps, latencies, errors) = load(&app.url(TRIVIAL), None, None, opts).await;
            results[i].0.push(rps);
            results[i].1.extend(latencies);
            results[i].2 += errors;
        }
    }
    let names = plan.map(|(name, _)| name);
    let _ = memory.shutdown().await;
    let _ = redis.shutdown().await;
    Ok(results
        .into_iter()
        .zip(names)
        .map(|((rounds, mut latencies, errors), name)| {
            latencies.sort_unstable();
            Scenario {
                name,
                path: TRIVIAL,
                requests_per_s: median(&rounds),
                rounds_requests_per_s: rounds,
                p50_ms: percentile(&latencies, 0.50),
                p99_ms: percentile(&latencies, 0.99),
                errors,
            }
        })
        .collect())
}

/// The trivial handler with no middleware, served by Keel's own accept loop (so the comparison
/// isolates the edge stack), on a port of its own. It runs until the process ends.
async fn bare_server() -> Result<std::net::SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let router = Router::new().route(BARE, get(|| async { "ok" }));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        keel::http::serve::serve(listener, router, stopped).await;
        drop(stop);
    });
    Ok(addr)
}

/// `connections` keep-alive clients request `url` in a loop for `opts.seconds`: a GET, or a POST
/// of the JSON `body`; any 2xx counts.
async fn load(
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
    opts: HttpBench,
) -> (f64, Vec<u32>, u64) {
    let deadline = Instant::now() + Duration::from_secs_f64(opts.seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..opts.connections)
        .map(|_| {
            let url = url.to_string();
            let token = token.map(str::to_string);
            let body = body.map(str::to_string);
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap_or_default();
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let mut request = match &body {
                        Some(body) => client
                            .post(&url)
                            .header("content-type", "application/json")
                            .body(body.clone()),
                        None => client.get(&url),
                    };
                    if let Some(token) = &token {
                        request = request.bearer_auth(token);
                    }
                    let sent = Instant::now();
                    match request.send().await {
                        Ok(r) if r.status().is_success() => {
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
