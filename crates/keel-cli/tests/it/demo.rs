//! The README's quick start as a newcomer runs it, as real processes: `keel dev demo` in an empty
//! directory runs Keel on SQLite and shows the flow (development token, signed purchase,
//! entitlement, forward auth 200); then, by hand against the same instance, `keel dev token` and
//! `keel dev webhook` with no secret set, and an expiration for the same user that ends the
//! entitlement.

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{bin, free_port, keel};
use keel_testkit::eventually;

fn readme_quick_start() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let start = readme
        .find("## Quick start")
        .expect("README: ## Quick start");
    let end = readme[start..]
        .find("\n## ")
        .map_or(readme.len(), |i| start + i + 1);
    readme[start..end].to_string()
}

async fn check(url: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("forward auth")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_shows_a_real_flow() {
    let quick_start = readme_quick_start();
    let commands: Vec<&str> = quick_start
        .split("```sh")
        .nth(1)
        .and_then(|block| block.split("```").next())
        .expect("README: the quick start's commands")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(commands.len(), 2, "two commands: {commands:?}");
    assert!(
        commands[0].starts_with("cargo run -p keel-cli -- dev demo"),
        "{commands:?}"
    );
    assert!(
        commands[1].starts_with("cargo test --workspace"),
        "{commands:?}"
    );

    let dir = tempfile::tempdir().expect("temporary directory");
    let port = free_port().to_string();
    let env = [("PORT", port.as_str())];
    let output = dir.path().join("demo.out");
    let mut demo = Command::new(bin())
        .args(["dev", "demo"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&output).expect("output file"))
        .stderr(std::fs::File::create(dir.path().join("demo.err")).expect("error file"))
        .spawn()
        .expect("start keel dev demo");
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    eventually("the demo's flow finishes", Duration::from_secs(60), || {
        let exited = demo.try_wait().ok().flatten();
        let text = read("demo.out");
        async move {
            assert!(exited.is_none(), "the demo exited: {text}");
            text.contains("Keel keeps running")
        }
    })
    .await;
    let shown = read("demo.out");
    for step in [
        "1. Keel is ready",
        "2. a development token for alice",
        "3. alice buys premium_monthly (a signed RevenueCat webhook): 200",
        "4. her entitlements: 200",
        "5. forward auth for premium: 200",
    ] {
        assert!(shown.contains(step), "{step:?} missing from:\n{shown}");
    }
    assert!(dir.path().join("keel.db").is_file());

    // By hand, against the same instance: a token, forward auth, then an expiration.
    let token = keel(dir.path(), &env, &["dev", "token", "--user", "alice"]);
    token.assert_code(0);
    let token = token.stdout.trim().to_string();
    let url = format!("http://127.0.0.1:{port}/v1/auth/check?entitlement=premium");
    assert_eq!(check(&url, &token).await, 200);
    let expire = keel(
        dir.path(),
        &env,
        &[
            "dev",
            "webhook",
            "revenuecat",
            "--event",
            "EXPIRATION",
            "--user",
            "alice",
            "--product",
            "premium_monthly",
            "--json",
        ],
    );
    expire.assert_code(0);
    assert_eq!(expire.json()["status"], 200, "{}", expire.describe());
    assert_eq!(
        check(&url, &token).await,
        403,
        "the expiration ends the purchase"
    );

    let sent = Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = demo.wait().expect("wait for the demo");
    assert_eq!(
        status.code(),
        Some(0),
        "{}\n{}",
        read("demo.out"),
        read("demo.err")
    );
}
