//! `keel bench storage`: presigned upload URLs issued per second (`POST /v1/me/uploads`: the
//! limits checked, a link signed, the pending file recorded) against `GET /v1/me` in the same
//! run, alternating for several rounds, with RS256 tokens, on SQLite and the filesystem backend
//! in a temporary directory. With `--s3` the links are SigV4 presigned URLs of that bucket
//! (signing needs no request to the service; the `AWS_*` variables of the process configure it).

use axum::Router;
use serde::Serialize;

use super::instance::Instance;
use super::issuer::{self, Issuer};
use super::{load, median, percentile, HttpBench, Scenario, ME};

const UPLOADS: &str = "/v1/me/uploads";
const UPLOAD: &str = r#"{"content_type":"audio/mpeg","size":1048576}"#;

#[derive(Debug, Clone, Serialize)]
pub struct StorageBenchResult {
    pub connections: usize,
    pub seconds_per_round: f64,
    pub rounds: usize,
    /// `file://…` or the `s3://` URL the links were presigned for.
    pub backend: String,
    pub scenarios: Vec<Scenario>,
    /// Upload URLs issued per second as a share of `GET /v1/me`'s requests per second.
    pub uploads_over_me: f64,
}

/// The `AWS_*` variables passed on to the instance with `--s3`.
const AWS: [&str; 5] = [
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

pub async fn run(opts: HttpBench, s3: Option<String>) -> Result<StorageBenchResult, String> {
    let issuer = Issuer::start().await?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = dir.path().join("keel.toml");
    let toml = format!(
        "[[rate_limits]]\nname = \"bench\"\nlimit = 1000000\nperiod = \"1s\"\nkey = \"user\"\n\
         routes = [\"GET {ME}\", \"POST {UPLOADS}\"]\n\
         [storage.uploads.\"audio/mpeg\"]\nmax_size = \"50MB\"\n"
    );
    std::fs::write(&config, toml).map_err(|e| e.to_string())?;
    let backend = match s3 {
        Some(url) => url,
        None => format!("file://{}", dir.path().join("objects").display()),
    };
    let mut env = vec![
        ("AUTH_JWKS_URL", issuer.jwks_url()),
        ("AUTH_ISSUER", issuer.issuer()),
        ("AUTH_AUDIENCE", issuer::AUDIENCE.to_string()),
        ("KEEL_CONFIG", config.display().to_string()),
        ("STORAGE_URL", backend.clone()),
    ];
    for name in AWS {
        if let Some(value) = std::env::var(name).ok().filter(|v| !v.is_empty()) {
            env.push((name, value));
        }
    }
    let app = Instance::start(&env, Router::new()).await?;
    let token = issuer.token("bench-user")?;
    let warm = reqwest::Client::new()
        .post(app.url(UPLOADS))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(UPLOAD)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if warm.status() != 201 {
        return Err(format!("POST {UPLOADS} answered {}", warm.status()));
    }
    let targets = [(ME, None), (UPLOADS, Some(UPLOAD))];
    let mut results: Vec<(Vec<f64>, Vec<u32>, u64)> = vec![(vec![], vec![], 0); 2];
    for _ in 0..opts.rounds {
        for (i, (path, body)) in targets.iter().enumerate() {
            let (rps, latencies, errors) = load(&app.url(path), Some(&token), *body, opts).await;
            results[i].0.push(rps);
            results[i].1.extend(latencies);
            results[i].2 += errors;
        }
    }
    let _ = app.shutdown().await;
    let scenarios: Vec<Scenario> = results
        .into_iter()
        .zip([("GET /v1/me (RS256)", ME), ("POST /v1/me/uploads", UPLOADS)])
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
    let uploads_over_me = scenarios[1].requests_per_s / scenarios[0].requests_per_s.max(1.0);
    Ok(StorageBenchResult {
        connections: opts.connections,
        seconds_per_round: opts.seconds,
        rounds: opts.rounds,
        backend,
        scenarios,
        uploads_over_me,
    })
}
