//! The Standard Webhooks reference library (the `standardwebhooks` PyPI package) signs a
//! Whop-style delivery the way Whop's SDK keys it (`btoa(secret)`); Keel accepts it, and refuses
//! one the library signed with another key. CI requires the library
//! (`KEEL_TEST_REQUIRE_PYTHON_WEBHOOKS=1`, set by .ci/run, which installs it); elsewhere, when it
//! is missing, the test says so and checks nothing.

use std::process::{Command, Stdio};

use super::*;

const SIGN: &str = r#"
import base64, datetime, json, sys
from standardwebhooks import Webhook
secret, msg_id, ts, body = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.stdin.read()
signer = Webhook(base64.b64encode(secret.encode()).decode())
when = datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)
print(signer.sign(msg_id, when, body))
"#;

fn library_available() -> bool {
    Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The `webhook-signature` the reference library makes.
fn reference_signature(secret: &str, id: &str, ts: i64, body: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args(["-c", SIGN, secret, id, &ts.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the reference library failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

keel_testkit::engine_test!(the_reference_library_signs_what_keel_accepts);
async fn the_reference_library_signs_what_keel_accepts(db: TestDb) {
    if !library_available() {
        assert!(
            std::env::var("KEEL_TEST_REQUIRE_PYTHON_WEBHOOKS").is_err(),
            "python3 with standardwebhooks is required (pip install standardwebhooks)"
        );
        eprintln!("note: standardwebhooks (Python) is not installed; skipping the cross-check");
        return;
    }
    let (_dir, builder) = whop_app(db);
    let app = builder.spawn().await;
    let event = v1("membership_activated", 5);
    let body = event.to_string();
    let id = event["id"].as_str().unwrap();
    let ts = now_s();
    let headers = |signature: String| {
        vec![
            ("webhook-id", id.to_string()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", signature),
        ]
    };
    let foreign = reference_signature(OTHER_SECRET, id, ts, &body);
    let reply = post(&app, &headers(foreign), body.as_bytes()).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    let genuine = reference_signature(WHOP_SECRET, id, ts, &body);
    let reply = post(&app, &headers(genuine), body.as_bytes()).await;
    assert_eq!(reply.body, fresh_reply());
    assert!(active(&app, USER, "pro").await);
    app.shutdown().await.unwrap();
}
