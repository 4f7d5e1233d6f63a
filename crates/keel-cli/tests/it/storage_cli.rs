//! `keel storage migrate | ls | du` as processes against a real S3 server (s3s-fs in the test
//! process, checking every signature): 1,000 files move from the filesystem to the bucket, a run
//! cut short (`--limit`) is finished by the next, each copy verified by size and SHA-256, and an
//! object changed in the target is copied again.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{keel_within, Run};
use keel_testkit::{S3Server, TestDb};
use serde_json::Value;

const FILES: usize = 1_000;

/// Runs `keel ARGS` off the runtime's threads (the S3 server answers on them meanwhile).
async fn keel(dir: &Path, env: Vec<(String, String)>, args: &[&str]) -> Run {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        keel_within(&dir, &env, &args, Duration::from_secs(300))
    })
    .await
    .expect("keel runs")
}

fn content(i: usize) -> Vec<u8> {
    format!("legacy file {i}\n").repeat(1 + i % 17).into_bytes()
}

fn write_files(root: &Path) {
    for i in 0..FILES {
        let path = root.join(format!("legacy/{:02}/{i:04}.txt", i % 10));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content(i)).unwrap();
    }
}

fn bucket_file(s3: &S3Server, i: usize) -> PathBuf {
    s3.bucket_dir()
        .join(format!("legacy/{:02}/{i:04}.txt", i % 10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_moves_a_thousand_files_and_a_rerun_finishes_an_interrupted_run() {
    let s3 = S3Server::start().await;
    let db = TestDb::sqlite();
    let work = tempfile::tempdir().unwrap();
    let source = tempfile::tempdir().unwrap();
    write_files(source.path());
    let mut env: Vec<(String, String)> = s3
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.push(("DATABASE_URL".into(), db.url().to_string()));
    keel(work.path(), env.clone(), &["migrate", "up"])
        .await
        .assert_code(0);

    let from = format!("file://{}", source.path().display());
    let migrate = |limit: Option<&'static str>| {
        let (dir, env, from) = (work.path().to_path_buf(), env.clone(), from.clone());
        async move {
            let mut args = vec![
                "storage",
                "migrate",
                "--from",
                &from,
                "--to",
                "s3://keel-test",
            ];
            if let Some(limit) = limit {
                args.extend(["--limit", limit]);
            }
            args.push("--json");
            let run = keel(&dir, env, &args).await;
            run.assert_code(0);
            run.json()
        }
    };
    let field = |report: &Value, name: &str| report[name].as_u64().unwrap();

    // The first run stops after 400 copies, as a run cut short would.
    let first = migrate(Some("400")).await;
    assert_eq!(
        (
            field(&first, "copied"),
            field(&first, "skipped"),
            field(&first, "remaining")
        ),
        (400, 0, 600),
        "{first}"
    );
    let in_bucket = (0..FILES)
        .filter(|i| bucket_file(&s3, *i).is_file())
        .count();
    assert_eq!(in_bucket, 400);

    // The rerun skips what is there and finishes the rest.
    let second = migrate(None).await;
    assert_eq!(
        (
            field(&second, "copied"),
            field(&second, "skipped"),
            field(&second, "remaining")
        ),
        (600, 400, 0),
        "{second}"
    );
    assert_eq!(second["failed"], serde_json::json!([]));
    for i in 0..FILES {
        assert_eq!(
            std::fs::read(bucket_file(&s3, i)).unwrap(),
            content(i),
            "file {i}"
        );
    }

    // An object changed in the target (same size, other bytes) is copied again.
    let changed = bucket_file(&s3, 7);
    let mut bytes = std::fs::read(&changed).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&changed, &bytes).unwrap();
    let third = migrate(None).await;
    assert_eq!(
        (field(&third, "copied"), field(&third, "skipped")),
        (1, 999),
        "{third}"
    );
    assert_eq!(std::fs::read(&changed).unwrap(), content(7));

    // The bucket as the configured storage: listed and measured.
    let ls = keel(
        work.path(),
        env.clone(),
        &["storage", "ls", "--prefix", "legacy/03", "--json"],
    )
    .await;
    ls.assert_code(0);
    assert_eq!(ls.json()["objects"].as_array().unwrap().len(), 100);
    let du = keel(work.path(), env.clone(), &["storage", "du", "--json"]).await;
    du.assert_code(0);
    let total: usize = (0..FILES).map(|i| content(i).len()).sum();
    assert_eq!(
        du.json()["backend"]["bytes"].as_u64().unwrap() as usize,
        total
    );
    assert_eq!(du.json()["backend"]["objects"], 1000);

    // Bad targets are usage errors.
    let bad = keel(
        work.path(),
        env.clone(),
        &[
            "storage",
            "migrate",
            "--from",
            &from,
            "--to",
            "gs://elsewhere",
        ],
    )
    .await;
    bad.assert_code(2);
    assert!(bad.stderr.contains("gs://elsewhere"), "{}", bad.describe());
    let same = keel(
        work.path(),
        env,
        &["storage", "migrate", "--from", &from, "--to", &from],
    )
    .await;
    same.assert_code(2);
}

/// `keel bench storage` measures presigned-URL issuance beside `GET /v1/me` on both backends
/// (short runs: the shape of the report, not its figures).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_storage_reports_issuance_against_me() {
    let s3 = S3Server::start().await;
    let work = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = s3
        .env()
        .into_iter()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let short = [
        "bench",
        "storage",
        "--seconds",
        "0.3",
        "--rounds",
        "1",
        "--connections",
        "2",
        "--json",
    ];
    let mut with_s3: Vec<&str> = short.to_vec();
    with_s3.extend(["--s3", "s3://keel-test"]);
    for (args, backend) in [(short.to_vec(), "file://"), (with_s3, "s3://keel-test")] {
        let run = keel(work.path(), env.clone(), &args).await;
        run.assert_code(0);
        let report = run.json();
        assert!(
            report["backend"].as_str().unwrap().starts_with(backend),
            "{report}"
        );
        let scenarios = report["scenarios"].as_array().unwrap();
        assert_eq!(scenarios.len(), 2, "{report}");
        for s in scenarios {
            assert_eq!(s["errors"], 0, "{report}");
            assert!(s["requests_per_s"].as_f64().unwrap() > 0.0, "{report}");
        }
        assert!(
            report["uploads_over_me"].as_f64().unwrap() > 0.0,
            "{report}"
        );
    }
    let bad = keel(work.path(), env, &["bench", "storage", "--s3", "gs://x"]).await;
    bad.assert_code(2);
}
