//! The gateway's connections to the app across real processes: concurrent requests share a few
//! kept-alive connections, a connection the app closed while idle is not used for the next
//! request (with or without a body), and one whose answer the client dropped half-way is closed,
//! never reused half-read.

use crate::gateway::{fresh_connections, keel_in_front, token, LIMIT};
use crate::gateway_support::{ClosingApp, Upstream};

use keel_testkit::eventually;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_a_few_connections_to_the_app() {
    const CONCURRENT: usize = 16;
    const ROUNDS: usize = 4;
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let keel = keel_in_front(dir.path(), &upstream.url(), "", &[]).await;
    let client = fresh_connections();
    let ada = token("ada");

    for round in 0..ROUNDS {
        let mut requests = tokio::task::JoinSet::new();
        for i in 0..CONCURRENT {
            let target = format!("/api/whoami?round={round}&i={i}");
            let request = client.get(keel.url(&target)).bearer_auth(&ada);
            requests.spawn(async move {
                let response = request.send().await.expect("keel answers");
                assert_eq!(response.status(), 200, "{target}");
                let heard: Value = response.json().await.expect("the app's answer");
                assert_eq!(heard[":target"], target.as_str(), "{heard}");
            });
        }
        while let Some(done) = requests.join_next().await {
            done.expect("a request");
        }
    }
    // Each round's requests find the connections the one before left idle.
    let accepted = upstream.connections.accepted();
    assert!(
        accepted <= CONCURRENT,
        "{accepted} connections to the app for {} requests",
        CONCURRENT * ROUNDS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_app_closed_is_not_used_again() {
    let app = ClosingApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let keel = keel_in_front(dir.path(), &app.url(), "", &[]).await;
    let client = fresh_connections();
    let ada = token("ada");
    let send = |method: &str, path: &str, body: &str| {
        let mut request = client
            .request(method.parse().unwrap(), keel.url(path))
            .bearer_auth(&ada);
        if !body.is_empty() {
            request = request.body(body.to_string());
        }
        async move {
            let response = request.send().await.expect("keel answers");
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };

    assert_eq!(send("GET", "/one", "").await, (200, "GET /one 0".into()));
    assert_eq!(app.accepted(), 1);
    // The app closes the connection Keel keeps idle; the next request goes on a new one.
    app.close_idle();
    eventually("the app closes its idle connection", LIMIT, || async {
        app.closed() == 1
    })
    .await;
    assert_eq!(send("GET", "/two", "").await, (200, "GET /two 0".into()));
    assert_eq!(app.accepted(), 2);
    // A request with a body, which could not be sent again, as well.
    app.close_idle();
    eventually("the app closes its idle connection", LIMIT, || async {
        app.closed() == 2
    })
    .await;
    assert_eq!(
        send("POST", "/three", "hello").await,
        (200, "POST /three 5".into())
    );
    assert_eq!(app.accepted(), 3);
    // While the app keeps a connection open, it is reused; after an answer with
    // `connection: close`, it is not.
    assert_eq!(
        send("GET", "/close", "").await,
        (200, "GET /close 0".into())
    );
    assert_eq!(app.accepted(), 3);
    assert_eq!(send("GET", "/four", "").await, (200, "GET /four 0".into()));
    assert_eq!(app.accepted(), 4);
    assert_eq!(send("GET", "/five", "").await, (200, "GET /five 0".into()));
    assert_eq!(app.accepted(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_dropped_half_way_closes_its_connection() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let keel = keel_in_front(dir.path(), &upstream.url(), "", &[]).await;
    let client = fresh_connections();
    let ada = token("ada");
    let whoami = |target: &'static str| {
        let request = client.get(keel.url(target)).bearer_auth(&ada);
        async move {
            let response = request.send().await.expect("keel answers");
            assert_eq!(response.status(), 200, "{target}");
            let heard: Value = response.json().await.expect("the app's answer");
            assert_eq!(heard[":target"], target, "{heard}");
        }
    };

    whoami("/api/whoami?before").await;
    assert_eq!(upstream.connections.accepted(), 1);
    // A download the client stops reading and drops, on the connection kept idle.
    let mut download = client
        .get(keel.url("/api/download?bytes=104857600"))
        .bearer_auth(&ada)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    let first = download.chunk().await.unwrap().expect("a first chunk");
    assert!(!first.is_empty());
    drop(download);
    assert_eq!(upstream.connections.accepted(), 1);
    // Keel closes that connection rather than keep it with the rest of the answer unread.
    eventually("the app sees its connection closed", LIMIT, || async {
        upstream.connections.open() == 0
    })
    .await;
    whoami("/api/whoami?after").await;
    assert_eq!(upstream.connections.accepted(), 2);
}
