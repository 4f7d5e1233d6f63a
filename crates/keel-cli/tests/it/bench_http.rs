//! `keel bench http` serves an in-process instance and measures every scenario.

use crate::common;

#[test]
fn bench_http_measures_every_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let run = common::keel(
        dir.path(),
        &[],
        &[
            "--json",
            "bench",
            "http",
            "--connections",
            "2",
            "--seconds",
            "0.3",
            "--rounds",
            "1",
        ],
    );
    run.assert_code(0);
    let result = run.json();
    let scenarios = result["scenarios"].as_array().expect("scenarios");
    assert_eq!(scenarios.len(), 3, "bare route, trivial route, GET /v1/me");
    for s in scenarios {
        assert!(s["requests_per_s"].as_f64().unwrap() > 0.0, "{s}");
        assert_eq!(s["errors"], 0, "{s}");
    }
    assert!(result["me_over_trivial"].as_f64().unwrap() > 0.0);
    assert!(result["edge_over_bare"].as_f64().unwrap() > 0.0);
    let bad = common::keel(dir.path(), &[], &["bench", "http", "--connections", "0"]);
    bad.assert_code(2);
}

/// The test harness (and its fixed keys) is no part of the `keel` binary: keel-cli names
/// keel-testkit only among its dev-dependencies.
#[test]
fn keel_testkit_is_a_dev_dependency_only() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .args(["--manifest-path", manifest])
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let cli = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "keel-cli")
        .expect("keel-cli in the workspace");
    let testkit: Vec<&serde_json::Value> = cli["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .filter(|d| d["name"] == "keel-testkit")
        .collect();
    assert!(!testkit.is_empty(), "the tests use keel-testkit");
    for dependency in testkit {
        assert_eq!(dependency["kind"], "dev", "{dependency}");
    }
}

/// No PEM private key is compiled into the binary `keel bench http` runs from.
#[test]
fn the_keel_binary_holds_no_private_key() {
    let binary = std::fs::read(env!("CARGO_BIN_EXE_keel")).expect("the keel binary");
    for armor in [
        "-----BEGIN PRIVATE KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----BEGIN EC PRIVATE KEY-----",
    ] {
        let found = binary
            .windows(armor.len())
            .any(|window| window == armor.as_bytes());
        assert!(!found, "the keel binary contains {armor}");
    }
}

/// `keel bench http-serve` prints where it serves, a token and the public key, answers GET /v1/me
/// with that token (and refuses a forged one), and ends with exit 0 on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_http_serve_serves_me_for_an_external_client_until_sigterm() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("serving.json");
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_keel"))
            .args(["bench", "http-serve"])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start keel bench http-serve"),
    );
    let started = Instant::now();
    let line = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.ends_with('\n') {
            break text;
        }
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "http-serve ended early"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no line: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let serving: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    let (url, token) = (
        serving["url"].as_str().unwrap(),
        serving["token"].as_str().unwrap(),
    );
    assert!(url.ends_with("/v1/me"), "{serving}");
    let pem = serving["public_key_pem"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    assert!(!pem.contains("PRIVATE"), "{pem}");
    let client = reqwest::Client::new();
    let me = client.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["user_id"], serving["subject"], "{me}");
    let i = token.len() - 20;
    let swapped = if &token[i..=i] == "A" { "B" } else { "A" };
    let forged = format!("{}{swapped}{}", &token[..i], &token[i + 1..]);
    let refused = client.get(url).bearer_auth(forged).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    // The bare route answers without the edge stack: no request id, no security headers.
    let bare = client
        .get(serving["bare_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 200);
    assert!(bare.headers().get("x-request-id").is_none(), "{bare:?}");
    assert_eq!(bare.text().await.unwrap(), "ok");
    let trivial = url.replace("/v1/me", "/bench/trivial");
    let trivial = client.get(trivial).send().await.unwrap();
    assert_eq!(trivial.status(), 200);
    assert!(
        trivial.headers().get("x-request-id").is_some(),
        "{trivial:?}"
    );
    // More than the default policy's 300 a minute: a load generator is never refused.
    for _ in 0..400 {
        let again = client.get(url).bearer_auth(token).send().await.unwrap();
        assert_eq!(again.status(), 200);
    }

    let sent = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
}
