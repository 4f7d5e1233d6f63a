//! Both signature schemes: what each refuses (nothing stored then), and rotation.

use super::*;

/// Header names and values.
type Headers = Vec<(&'static str, String)>;

/// Signs one body in a scheme: (secret, timestamp, body) → headers.
type Signer = fn(&str, i64, &[u8]) -> Headers;

/// A delivery that must be refused: its name, how it is signed (secret, seconds from now), its body.
type Case<'a> = (&'a str, Option<(&'a str, i64)>, &'a [u8]);

fn standard(secret: &str, ts: i64, body: &[u8]) -> Headers {
    let id: Value = serde_json::from_slice(body).unwrap();
    standard_headers(secret, id["id"].as_str().unwrap(), ts, body)
}

/// Every way a delivery in `scheme` must be refused, then the good one accepted once.
async fn refuses_then_accepts(app: &TestApp, event: &Value, sign: Signer) {
    let body = event.to_string();
    let body = body.as_bytes();
    let tampered = body
        .to_vec()
        .iter()
        .map(|b| if *b == b'9' { b'8' } else { *b })
        .collect::<Vec<u8>>();
    assert_ne!(tampered, body);
    // Each delivery is signed just before it is sent, 10 s beyond or within the 300 s tolerance,
    // so a slow machine moves no case across the edge.
    let cases: [Case; 5] = [
        ("tampered", Some((WHOP_SECRET, 0)), &tampered),
        ("stale", Some((WHOP_SECRET, -310)), body),
        ("from the future", Some((WHOP_SECRET, 310)), body),
        ("wrong secret", Some((OTHER_SECRET, 0)), body),
        ("unsigned", None, body),
    ];
    for (case, signing, sent) in cases {
        let headers = match signing {
            Some((secret, offset)) => sign(secret, now_s() + offset, body),
            None => Vec::new(),
        };
        let reply = post(app, &headers, sent).await;
        assert_eq!(reply.status, 401, "{case}: {}", reply.body);
        assert_eq!(
            reply.body["type"]
                .as_str()
                .map(|t| t.ends_with("/webhook-unauthorized")),
            Some(true),
            "{case}: {}",
            reply.body
        );
    }
    assert_eq!(stored_events(app).await, 0, "a refused delivery was stored");
    let reply = post(app, &sign(WHOP_SECRET, now_s() - 290, body), body).await;
    assert_eq!(reply.body, fresh_reply());
}

keel_testkit::engine_test!(standard_webhooks_refuse_tampered_stale_and_foreign_deliveries);
async fn standard_webhooks_refuse_tampered_stale_and_foreign_deliveries(db: TestDb) {
    let (_dir, builder) = whop_app(db);
    let app = builder.spawn().await;
    let event = v1("membership_activated", 10);
    // Part of the Standard Webhooks headers is not a legacy delivery either.
    let body = event.to_string();
    let mut partial = standard(WHOP_SECRET, now_s(), body.as_bytes());
    partial.remove(0);
    partial.extend(legacy_headers(WHOP_SECRET, now_s(), body.as_bytes()));
    assert_eq!(post(&app, &partial, body.as_bytes()).await.status, 401);
    // The signature of another message id does not carry over.
    let id = event["id"].as_str().unwrap();
    let mut other_id = standard_headers(WHOP_SECRET, id, now_s(), body.as_bytes());
    other_id[0].1 = "msg_other".into();
    assert_eq!(post(&app, &other_id, body.as_bytes()).await.status, 401);
    refuses_then_accepts(&app, &event, standard).await;
    assert!(active(&app, USER, "pro").await);
    app.shutdown().await.unwrap();
}

keel_testkit::engine_test!(legacy_signatures_refuse_tampered_stale_and_foreign_deliveries);
async fn legacy_signatures_refuse_tampered_stale_and_foreign_deliveries(db: TestDb) {
    let (_dir, builder) = whop_app(db);
    let app = builder.spawn().await;
    let event = v5("v5_membership_went_valid", 10);
    let body = event.to_string();
    let malformed = vec![("x-whop-signature", "v1=deadbeef".to_string())];
    assert_eq!(post(&app, &malformed, body.as_bytes()).await.status, 401);
    refuses_then_accepts(&app, &event, legacy_headers).await;
    assert!(active(&app, USER, "pro").await);
    assert_eq!(held_in(&app, USER, COMPANY).await, 1);
    app.shutdown().await.unwrap();
}

keel_testkit::engine_test!(both_secrets_are_accepted_during_a_rotation);
async fn both_secrets_are_accepted_during_a_rotation(db: TestDb) {
    let (_dir, builder) = whop_app(db);
    let app = builder.spawn().await;
    for (scheme, sign) in [("standard", standard as Signer), ("legacy", legacy_headers)] {
        for (secret, expected) in [
            (OLD_WHOP_SECRET, 200),
            (WHOP_SECRET, 200),
            (OTHER_SECRET, 401),
        ] {
            let event = v1("payment_succeeded", 5);
            let event = set(
                event,
                "/id",
                json!(format!("msg_{scheme}_{}", &secret[3..9])),
            );
            let body = event.to_string();
            let reply = post(
                &app,
                &sign(secret, now_s(), body.as_bytes()),
                body.as_bytes(),
            )
            .await;
            assert_eq!(
                reply.status,
                expected,
                "{scheme} under {}: {}",
                &secret[..6],
                reply.body
            );
        }
    }
    // A Standard Webhooks signature list with one good entry among others is accepted.
    let event = v1("membership_activated", 5);
    let body = event.to_string();
    let id = event["id"].as_str().unwrap();
    let mut headers = standard_headers(WHOP_SECRET, id, now_s(), body.as_bytes());
    let foreign = standard_headers(OTHER_SECRET, id, now_s(), body.as_bytes());
    headers[2].1 = format!("v2,abc {} {}", foreign[2].1, headers[2].1);
    assert_eq!(
        post(&app, &headers, body.as_bytes()).await.body,
        fresh_reply()
    );
    app.shutdown().await.unwrap();
}

keel_testkit::engine_test!(production_wants_long_whop_secrets);
async fn production_wants_long_whop_secrets(db: TestDb) {
    let builder = TestApp::builder(db)
        .env("APP_ENV", "production")
        .env("WHOP_WEBHOOK_SECRET", &format!("{WHOP_SECRET},short"));
    let problems = builder.try_settings().unwrap_err();
    assert!(problems.contains("WHOP_WEBHOOK_SECRET"), "{problems}");
    assert!(
        !problems.contains(WHOP_SECRET),
        "a secret in a message: {problems}"
    );
}
