//! `keel webhooks events|replay`: an operator finds a stored event and applies it again after
//! fixing the configuration.

use crate::common;

use std::time::{Duration, Instant};

use common::{bin, entitlements, keel};
use keel_testkit::KeelProcess;
use serde_json::json;

const STRIPE_SECRET: &str = "whsec_stripe-secret-for-tests-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_event_is_found_and_replayed_under_a_fixed_product_mapping() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let env = [
        ("AUTH_DEV_MODE", "true"),
        ("STRIPE_WEBHOOK_SECRET", STRIPE_SECRET),
    ];
    let mut server = KeelProcess::serve(&bin(), dir.path(), &env, &[]);
    server.wait_ready(Duration::from_secs(30)).await;
    let base = server.url("");
    let url = ["--url", base.as_str()];

    // No product mapping yet: the subscription is stored but grants nothing.
    let sent = keel(
        dir.path(),
        &env,
        &[
            &[
                "dev",
                "webhook",
                "stripe",
                "--event",
                "customer.subscription.created",
                "--user",
                "ada",
                "--json",
            ][..],
            &url,
        ]
        .concat(),
    );
    sent.assert_code(0);
    let event_id = sent.json()["event_id"]
        .as_str()
        .expect("event id")
        .to_string();
    let token = keel(dir.path(), &env, &["dev", "token", "--user", "ada"]);
    let token = token.assert_code(0).stdout.trim().to_string();
    assert_eq!(entitlements(&server, &token).await, json!({}));

    let listed = keel(
        dir.path(),
        &env,
        &[
            "webhooks",
            "events",
            "--provider",
            "stripe",
            "--user",
            "ada",
            "--json",
        ],
    );
    listed.assert_code(0);
    let events = listed.json()["events"].clone();
    assert_eq!(events[0]["event_id"], json!(event_id), "{events}");
    assert_eq!(events[0]["event_type"], "customer.subscription.created");
    assert!(
        events[0].get("payload").is_none(),
        "no payload in the listing"
    );
    let text = keel(
        dir.path(),
        &env,
        &[
            "webhooks",
            "events",
            "--type",
            "customer.subscription.created",
        ],
    );
    assert!(
        text.assert_code(0).stdout.contains(&event_id),
        "{}",
        text.describe()
    );

    // The operator maps the product and replays the event.
    std::fs::write(
        dir.path().join("keel.toml"),
        "[products]\nprod_premium = [\"premium\"]\n",
    )
    .expect("keel.toml");
    let replayed = keel(
        dir.path(),
        &env,
        &["webhooks", "replay", "stripe", &event_id, "--json"],
    );
    replayed.assert_code(0);
    assert_eq!(
        replayed.json()["outcome"],
        "applied",
        "{}",
        replayed.describe()
    );
    assert_eq!(replayed.json()["user_id"], "ada");
    let started = Instant::now();
    loop {
        let granted = entitlements(&server, &token).await;
        if granted["premium"]["active"] == json!(true) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(6), "{granted}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // SPEC §1: the report shows the webhooks received, per provider and outcome, with their lag.
    let report = keel(dir.path(), &env, &["report", "--json"]);
    let webhooks = report.assert_code(0).json()["webhooks"].clone();
    assert_eq!(webhooks[0]["provider"], "stripe", "{webhooks}");
    assert_eq!(webhooks[0]["events"], 1, "{webhooks}");
    assert!(webhooks[0]["avg_lag_ms"].is_number(), "{webhooks}");
    let text = keel(dir.path(), &env, &["report"]);
    assert!(
        text.assert_code(0).stdout.contains("stripe / applied"),
        "{}",
        text.describe()
    );
    // Again: nothing changes, and each replay is audited.
    keel(
        dir.path(),
        &env,
        &["webhooks", "replay", "stripe", &event_id],
    )
    .assert_code(0);

    let unknown = keel(
        dir.path(),
        &env,
        &["webhooks", "replay", "stripe", "evt_nope"],
    );
    unknown.assert_code(1);
    assert!(
        unknown.stderr.contains("no stored event"),
        "{}",
        unknown.describe()
    );
    keel(dir.path(), &env, &["webhooks", "replay", "paddle", "x"]).assert_code(2);
    keel(dir.path(), &env, &["webhooks", "events", "--limit", "0"]).assert_code(2);
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30)).await;
}
