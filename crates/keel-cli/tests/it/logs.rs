//! JSON logs name their request or job, read from a real `keel serve`'s output: a line written
//! while a handler runs carries the request's span (its id, route and method), and one written
//! inside a job carries the job's span (its id, kind, attempt and queue).

use std::time::{Duration, Instant};

use keel_testkit::KeelProcess;
use serde_json::{json, Value};

use crate::common::bin;

const ADMIN_TOKEN: &str = "logs-test-admin-token-0123456789abcdef";

/// Every JSON line of the log whose message is `message`.
fn lines(server: &KeelProcess, message: &str) -> Vec<Value> {
    server
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == message)
        .collect()
}

/// Waits for a line with `message` that `pick` accepts, or panics with the log.
async fn line(server: &KeelProcess, message: &str, pick: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        if let Some(found) = lines(server, message).into_iter().find(&pick) {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no {message:?} line:\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_in_a_handler_and_a_job_carry_the_request_and_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("LOG_FORMAT", "json"),
        ("LOG_LEVEL", "info"),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
    ];
    let mut server = KeelProcess::serve(&bin(), dir.path(), &env, &[]);
    server.wait_ready(Duration::from_secs(30)).await;
    let client = reqwest::Client::new();

    // An id the client sent is kept: the refusal logged by the token check names it.
    let r = client
        .get(server.url("/v1/me"))
        .bearer_auth("not-a-token")
        .header("x-request-id", "client-chosen-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let refused = line(&server, "authentication refused", |l| {
        l["span"]["request_id"] == "client-chosen-1"
    })
    .await;
    let span = &refused["span"];
    assert_eq!(span["name"], "request", "{refused}");
    assert_eq!(span["route"], "/v1/me", "{refused}");
    assert_eq!(span["method"], "GET", "{refused}");

    // A generated id is the one the response names, and differs from request to request.
    let mut generated = Vec::new();
    for _ in 0..2 {
        let r = client
            .get(server.url("/v1/me"))
            .bearer_auth("not-a-token")
            .send()
            .await
            .unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        line(&server, "authentication refused", |l| {
            l["span"]["request_id"] == id.as_str()
        })
        .await;
        generated.push(id);
    }
    assert_ne!(generated[0], generated[1]);
    assert_eq!(generated[0].len(), 32, "{generated:?}");

    let r = client
        .post(server.url("/admin/api/jobs"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"kind": "diag.fail", "args": {"times": 1}, "queue": "default"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let job: Value = r.json().await.unwrap();
    let id = job["id"].as_i64().unwrap();
    let failing = line(&server, "diag.fail: failing as planned", |l| {
        l["span"]["job_id"] == id
    })
    .await;
    let span = &failing["span"];
    assert_eq!(span["name"], "job", "{failing}");
    assert_eq!(span["kind"], "diag.fail", "{failing}");
    assert_eq!(span["attempt"], 1, "{failing}");
    assert_eq!(span["queue"], "default", "{failing}");
    assert!(
        failing["spans"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != "request"),
        "a job runs outside any request: {failing}"
    );
}
