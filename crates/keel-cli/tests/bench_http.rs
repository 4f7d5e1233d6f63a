//! `keel bench http` serves an in-process instance and measures every scenario.

mod common;

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
