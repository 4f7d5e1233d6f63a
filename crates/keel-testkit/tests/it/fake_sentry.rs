//! The fake Sentry over real HTTP with reqwest: envelopes in Sentry's format, plain and gzip,
//! authenticated by key; 429 answers with either rate-limit header; held answers.

use std::time::Duration;

use keel_testkit::sentry::{gzip, PROJECT, PUBLIC_KEY};
use keel_testkit::{eventually, FakeSentry, Refusal};
use serde_json::json;

const AUTH: &str = "Sentry sentry_version=7, sentry_client=test/1, sentry_key=fakesentrypublickey";

/// An envelope: a header, an event item with its length (its payload holds a newline), and an
/// attachment without one (its payload ends at the newline).
fn envelope() -> Vec<u8> {
    let event =
        json!({"event_id": "9ec79c33ec9942ab8353589fcb2e04dc", "message": "line one\nline two"})
            .to_string();
    format!(
        "{}\n{}\n{event}\n{}\nhello\n",
        json!({"event_id": "9ec79c33ec9942ab8353589fcb2e04dc"}),
        json!({"type": "event", "length": event.len()}),
        json!({"type": "attachment"}),
    )
    .into_bytes()
}

async fn post(
    sentry: &FakeSentry,
    project: &str,
    auth: &str,
    body: Vec<u8>,
    encoding: Option<&str>,
) -> reqwest::Response {
    let addr = sentry
        .dsn()
        .rsplit_once('@')
        .unwrap()
        .1
        .rsplit_once('/')
        .unwrap()
        .0
        .to_string();
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/api/{project}/envelope/"))
        .header("x-sentry-auth", auth)
        .body(body);
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    request.send().await.expect("request")
}

#[tokio::test]
async fn envelopes_are_read_plain_or_gzip_and_recorded() {
    let sentry = FakeSentry::start().await;
    let dsn = sentry.dsn();
    assert!(
        dsn.starts_with(&format!("http://{PUBLIC_KEY}@127.0.0.1:"))
            && dsn.ends_with(&format!("/{PROJECT}")),
        "{dsn}"
    );

    let plain = post(&sentry, PROJECT, AUTH, envelope(), None).await;
    assert_eq!(plain.status(), 200);
    let answer: serde_json::Value = plain.json().await.unwrap();
    assert_eq!(answer["id"], "9ec79c33ec9942ab8353589fcb2e04dc");
    let zipped = post(&sentry, PROJECT, AUTH, gzip(&envelope()), Some("gzip")).await;
    assert_eq!(zipped.status(), 200);

    let envelopes = sentry.envelopes();
    assert_eq!(envelopes.len(), 2);
    assert!(!envelopes[0].gzip && envelopes[1].gzip);
    for envelope in &envelopes {
        assert_eq!(envelope.auth, AUTH);
        assert_eq!(
            envelope.header["event_id"],
            "9ec79c33ec9942ab8353589fcb2e04dc"
        );
        assert_eq!(envelope.items.len(), 2);
        assert_eq!(envelope.items[0].kind(), "event");
        assert_eq!(envelope.items[0].json()["message"], "line one\nline two");
        assert_eq!(envelope.items[1].kind(), "attachment");
        assert_eq!(envelope.items[1].payload, b"hello");
    }
    assert_eq!(sentry.events().len(), 2);
    assert_eq!(sentry.requests().len(), 2);
}

#[tokio::test]
async fn wrong_keys_projects_and_bodies_are_refused_and_not_recorded() {
    let sentry = FakeSentry::start().await;
    let wrong_key = AUTH.replace(PUBLIC_KEY, "another");
    assert_eq!(
        post(&sentry, PROJECT, &wrong_key, envelope(), None)
            .await
            .status(),
        401
    );
    assert_eq!(
        post(&sentry, "7", AUTH, envelope(), None).await.status(),
        404
    );
    assert_eq!(
        post(&sentry, PROJECT, AUTH, b"not json\n".to_vec(), None)
            .await
            .status(),
        400
    );
    assert_eq!(
        post(&sentry, PROJECT, AUTH, envelope(), Some("gzip"))
            .await
            .status(),
        400
    );
    assert_eq!(
        post(&sentry, PROJECT, AUTH, envelope(), Some("br"))
            .await
            .status(),
        415
    );
    let mut short = envelope();
    short.truncate(short.len() - 30);
    assert_eq!(
        post(&sentry, PROJECT, AUTH, short, None).await.status(),
        400
    );
    assert!(sentry.envelopes().is_empty());
}

#[tokio::test]
async fn refusals_carry_their_header_until_accepted() {
    let sentry = FakeSentry::start().await;
    sentry.refuse(Refusal::RetryAfter(7));
    let refused = post(&sentry, PROJECT, AUTH, envelope(), None).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "7");
    sentry.refuse(Refusal::RateLimits("60:error:organization".into()));
    let refused = post(&sentry, PROJECT, AUTH, envelope(), None).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused.headers()["x-sentry-rate-limits"],
        "60:error:organization"
    );
    assert!(sentry.envelopes().is_empty());
    sentry.accept();
    assert_eq!(
        post(&sentry, PROJECT, AUTH, envelope(), None)
            .await
            .status(),
        200
    );
    let statuses: Vec<u16> = sentry.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 200]);
}

#[tokio::test]
async fn held_answers_wait_for_release() {
    let sentry = FakeSentry::start().await;
    sentry.hold();
    let pending = tokio::spawn({
        let sentry = sentry.clone();
        async move {
            post(&sentry, PROJECT, AUTH, envelope(), None)
                .await
                .status()
        }
    });
    eventually("the request is held", Duration::from_secs(10), || async {
        sentry.held_requests() == 1
    })
    .await;
    assert!(sentry.envelopes().is_empty() && !pending.is_finished());
    sentry.release();
    assert_eq!(pending.await.unwrap(), 200);
    assert_eq!(sentry.envelopes().len(), 1);
    assert_eq!(sentry.held_requests(), 0);
}
