//! `keel dev webhook`: a running instance accepts the signed sample events, and they grant what
//! they describe (SPEC §1).

use crate::common;

use std::time::Duration;

use common::{bin, entitlements, keel};
use keel_testkit::KeelProcess;
use serde_json::json;

const RC_SECRET: &str = "revenuecat-webhook-secret-0123456789abcdef";
const STRIPE_SECRET: &str = "whsec_stripe-secret-for-tests-0123456789";
const WHOP_SECRET: &str = "ws_whop-dashboard-secret-for-tests-0123456789abcdef";
const SERVER_ENV: [(&str, &str); 4] = [
    ("AUTH_DEV_MODE", "true"),
    ("REVENUECAT_WEBHOOK_SECRET", RC_SECRET),
    ("STRIPE_WEBHOOK_SECRET", STRIPE_SECRET),
    ("WHOP_WEBHOOK_SECRET", WHOP_SECRET),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_events_of_every_provider_are_accepted_and_grant() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(
        dir.path().join("keel.toml"),
        "[products]\npremium_monthly = [\"premium\"]\nprod_premium = [\"premium\"]\nprod_pro = [\"pro\"]\n",
    )
    .expect("keel.toml");
    let mut server = KeelProcess::serve(&bin(), dir.path(), &SERVER_ENV, &[]);
    server.wait_ready(Duration::from_secs(30)).await;
    // Without --url the command sends to HOST:PORT of its own configuration.
    let port = server
        .url("")
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let env = [
        ("PORT", port.as_str()),
        ("AUTH_DEV_MODE", "true"),
        ("REVENUECAT_WEBHOOK_SECRET", RC_SECRET),
        ("STRIPE_WEBHOOK_SECRET", STRIPE_SECRET),
        ("WHOP_WEBHOOK_SECRET", WHOP_SECRET),
    ];

    let sent = keel(
        dir.path(),
        &env,
        &[
            "dev",
            "webhook",
            "revenuecat",
            "--event",
            "INITIAL_PURCHASE",
            "--user",
            "ada",
            "--json",
        ],
    );
    sent.assert_code(0);
    assert_eq!(
        sent.json()["body"],
        json!({"received": true, "duplicate": false})
    );
    let token = keel(dir.path(), &env, &["dev", "token", "--user", "ada"]);
    let token = token.assert_code(0).stdout.trim().to_string();
    let granted = entitlements(&server, &token).await;
    assert_eq!(granted["premium"]["active"], json!(true), "{granted}");
    assert_eq!(granted["premium"]["source"], json!("revenuecat"));

    for event in [
        "checkout.session.completed",
        "customer.subscription.created",
    ] {
        let sent = keel(
            dir.path(),
            &env,
            &[
                "dev", "webhook", "stripe", "--event", event, "--user", "grace",
            ],
        );
        sent.assert_code(0);
    }
    let token = keel(dir.path(), &env, &["dev", "token", "--user", "grace"]);
    let token = token.assert_code(0).stdout.trim().to_string();
    let granted = entitlements(&server, &token).await;
    assert_eq!(granted["premium"]["source"], json!("stripe"), "{granted}");
    assert_eq!(granted["premium"]["active"], json!(true));

    let sent = keel(
        dir.path(),
        &env,
        &[
            "dev",
            "webhook",
            "whop",
            "--event",
            "membership.activated",
            "--user",
            "user_hedy",
        ],
    );
    sent.assert_code(0);
    let token = keel(dir.path(), &env, &["dev", "token", "--user", "user_hedy"]);
    let token = token.assert_code(0).stdout.trim().to_string();
    let granted = entitlements(&server, &token).await;
    assert_eq!(granted["pro"]["source"], json!("whop"), "{granted}");
    assert_eq!(granted["pro"]["active"], json!(true));

    // Bad usage is exit 2 and names what is wrong.
    let unknown = keel(
        dir.path(),
        &env,
        &[
            "dev",
            "webhook",
            "revenuecat",
            "--event",
            "NOPE",
            "--user",
            "ada",
        ],
    );
    unknown.assert_code(2);
    assert!(
        unknown.stderr.contains("INITIAL_PURCHASE"),
        "{}",
        unknown.describe()
    );
    let provider = keel(
        dir.path(),
        &env,
        &["dev", "webhook", "paddle", "--event", "X", "--user", "ada"],
    );
    provider.assert_code(2);
    // Outside development there is no development secret to fall back on.
    let unsigned = keel(
        dir.path(),
        &[("PORT", port.as_str()), ("APP_ENV", "staging")],
        &[
            "dev",
            "webhook",
            "stripe",
            "--event",
            "invoice.paid",
            "--user",
            "ada",
        ],
    );
    unsigned.assert_code(2);
    assert!(
        unsigned.stderr.contains("STRIPE_WEBHOOK_SECRET"),
        "{}",
        unsigned.describe()
    );
    // The deploy smoke test: forged webhooks and tokens are refused, the routes exist.
    let base = server.url("");
    let smoke = keel(
        dir.path(),
        &[],
        &[
            "smoke",
            "--json",
            "--webhooks",
            "revenuecat,stripe,whop",
            &base,
        ],
    );
    smoke.assert_code(0);
    let names: Vec<String> = smoke.json()["checks"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    for name in [
        "forged token is refused",
        "revenuecat webhook refuses a forgery",
        "stripe webhook refuses a forgery",
        "whop webhook refuses a forgery",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
    }
    let live = keel(dir.path(), &[], &["smoke", "--json", "--live", &base]);
    live.assert_code(0);
    assert_eq!(live.json()["checks"].as_array().map(Vec::len), Some(1));
    keel(dir.path(), &[], &["smoke", "--webhooks", "paddle", &base]).assert_code(2);
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30)).await;
}
