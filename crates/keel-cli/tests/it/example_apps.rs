//! The example apps in examples/node (Express) and examples/python (FastAPI), each run as a real
//! process beside the built `keel` binary by `examples/demo.py`, the one command the README gives
//! for them: forward auth, the jobs API with an idempotency key, an HTTP job kind and an app event,
//! each delivery verified by the `standardwebhooks` package of npm or PyPI.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::bin;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Whether the app's packages are installed. They must be in CI (`KEEL_TEST_REQUIRE_EXAMPLE_APPS=1`,
/// set by .ci/run, which installs them); elsewhere a missing package skips the test, saying so.
fn installed(which: &str, probe: &mut Command) -> bool {
    let ok = probe.output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("KEEL_TEST_REQUIRE_EXAMPLE_APPS").is_err(),
            "the {which} example app's packages are not installed (KEEL_TEST_REQUIRE_EXAMPLE_APPS is set)"
        );
        eprintln!("skipped: the {which} example app's packages are not installed");
    }
    ok
}

fn walk_through(which: &str) {
    let out = Command::new("python3")
        .arg(examples().join("demo.py"))
        .arg(which)
        .env("KEEL_BIN", bin())
        .output()
        .unwrap_or_else(|e| panic!("cannot run examples/demo.py: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "examples/demo.py {which} failed:\n{stdout}\n{stderr}"
    );
    for step in [
        "GET /premium before a purchase (Keel's forward auth): 403",
        "POST /signup enqueues app.send_welcome_email through POST /v1/jobs: 201",
        "Keel's worker POSTed the job to the app",
        "the app received entitlement.activated (premium)",
        "GET /premium after the purchase: 200",
        "every step held",
    ] {
        assert!(
            stdout.contains(step),
            "missing step {step:?}:\n{stdout}\n{stderr}"
        );
    }
}

#[test]
fn the_node_app_runs_on_keel() {
    let mut probe = Command::new("node");
    probe
        .args(["-e", "require('express'); require('standardwebhooks')"])
        .current_dir(examples().join("node"));
    if installed("node", &mut probe) {
        walk_through("node");
    }
}

#[test]
fn the_python_app_runs_on_keel() {
    let mut probe = Command::new("python3");
    probe.args(["-c", "import fastapi, uvicorn, standardwebhooks"]);
    if installed("python", &mut probe) {
        walk_through("python");
    }
}
