//! The signature of an HTTP job's delivery, checked by Keel's verifier and by the Python
//! `standardwebhooks` package (a library Keel did not write): the delivery passes, a tampered
//! body or a stale timestamp does not.

use crate::http_jobs_support::{self, setup, DEADLINE, SECRET};

use std::io::Write;
use std::process::{Command, Stdio};

use keel::crypto::standard_webhooks::{self, VerifyError, WebhookSecret};
use keel::jobs::{JobSpec, JobState};
use keel_testkit::{Delivery, TestDb};
use serde_json::json;

/// Verifies each case of stdin (one JSON object a line: headers and body) with
/// `standardwebhooks`, printing `ok` or `refused: <reason>` for each.
const PYTHON: &str = r#"
import json, sys
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
hook = Webhook(sys.argv[1])
for line in sys.stdin:
    case = json.loads(line)
    try:
        hook.verify(case["body"], case["headers"])
        print("ok")
    except WebhookVerificationError as e:
        print("refused: " + str(e))
"#;

fn python_has_standardwebhooks() -> bool {
    Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn case(id: &str, timestamp: &str, signature: &str, body: &str) -> String {
    json!({
        "headers": {
            "webhook-id": id,
            "webhook-timestamp": timestamp,
            "webhook-signature": signature,
        },
        "body": body,
    })
    .to_string()
}

fn python_verdicts(cases: &[String]) -> Vec<String> {
    let mut child = Command::new("python3")
        .args(["-c", PYTHON, SECRET])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let mut stdin = child.stdin.take().expect("stdin");
    for c in cases {
        writeln!(stdin, "{c}").expect("write a case");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("python3 finishes");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

async fn one_delivery(db: TestDb) -> (Delivery, i64) {
    let env = setup(db, 5, "").await;
    let id = env
        .enqueue(JobSpec::new("app.work", json!({ "n": 1 })))
        .await;
    env.wait_state(id, JobState::Completed).await;
    let delivery = env.receiver.wait_for(1, DEADLINE).await.remove(0);
    (delivery, env.app.clock().now().timestamp())
}

keel_testkit::engine_test!(keels_verifier_accepts_the_delivery_and_nothing_altered);
async fn keels_verifier_accepts_the_delivery_and_nothing_altered(db: TestDb) {
    let (delivery, now) = one_delivery(db).await;
    http_jobs_support::verify(&delivery, now).expect("the delivery verifies");
    let mut tampered = delivery.clone();
    tampered.body = delivery
        .body
        .slice(..)
        .to_vec()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .into();
    assert_eq!(
        http_jobs_support::verify(&tampered, now),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        http_jobs_support::verify(&delivery, now + 600),
        Err(VerifyError::Stale)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pythons_standardwebhooks_accepts_the_delivery_and_refuses_tampering() {
    if !python_has_standardwebhooks() {
        assert!(
            std::env::var("KEEL_TEST_REQUIRE_PYTHON_WEBHOOKS").is_err(),
            "python3 with standardwebhooks is required (pip install standardwebhooks)"
        );
        eprintln!("note: standardwebhooks (Python) is not installed; this test checked nothing");
        return;
    }
    let (delivery, _) = one_delivery(TestDb::sqlite()).await;
    let body = String::from_utf8(delivery.body.to_vec()).expect("UTF-8 body");
    let id = delivery.header("webhook-id");
    let ts = delivery.header("webhook-timestamp");
    let signature = delivery.header("webhook-signature");
    let tampered_body = body.replace("\"n\":1", "\"n\":2");
    assert_ne!(tampered_body, body);
    let stale = ts.parse::<i64>().expect("a unix time") - 600;
    let secrets = [WebhookSecret::parse(SECRET).expect("secret")];
    let stale_signed = standard_webhooks::sign(&secrets, id, stale, body.as_bytes());
    let stale_signature = stale_signed
        .pairs()
        .into_iter()
        .find(|(name, _)| *name == standard_webhooks::SIGNATURE_HEADER)
        .map(|(_, v)| v.to_string())
        .expect("a signature");
    let verdicts = python_verdicts(&[
        case(id, ts, signature, &body),
        case(id, ts, signature, &tampered_body),
        case(id, &stale.to_string(), &stale_signature, &body),
    ]);
    assert_eq!(verdicts[0], "ok", "{verdicts:?}");
    assert!(
        verdicts[1].starts_with("refused: No matching signature"),
        "{verdicts:?}"
    );
    assert!(
        verdicts[2].starts_with("refused: Message timestamp too old"),
        "{verdicts:?}"
    );
}
