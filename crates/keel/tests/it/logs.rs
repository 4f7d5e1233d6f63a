//! JSON logs name their request or job: a line written inside a handler carries the request's
//! span (its id, route and method), and one written inside a job carries the job's span (its id,
//! kind, attempt and queue). Captured with Keel's own JSON subscriber on this test's thread (the
//! app, its worker and the client all run on it).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use keel::http::AppState;
use keel::jobs::JobSpec;
use keel_testkit::{eventually, TestApp, TestDb};
use serde_json::{json, Value};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Every line whose message is `message`.
    fn lines(&self, message: &str) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .filter(|v| v["message"] == message)
            .collect()
    }
}

fn routes() -> Router<AppState> {
    Router::new().route(
        "/t/log/{item}",
        get(|| async {
            tracing::info!("inside the handler");
            "logged"
        }),
    )
}

#[tokio::test]
async fn lines_in_a_handler_and_a_job_carry_the_request_and_the_job() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = keel::telemetry::json(keel::telemetry::filter("info"), move || writer.clone());
    let _default = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    let app = TestApp::builder(TestDb::sqlite())
        .routes(routes())
        .spawn()
        .await;

    // An id the client sent is kept.
    let r = app
        .client
        .get(app.url("/t/log/7"))
        .header("x-request-id", "client-chosen-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let lines = captured.lines("inside the handler");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let span = &lines[0]["span"];
    assert_eq!(span["name"], "request", "{}", lines[0]);
    assert_eq!(span["request_id"], "client-chosen-1", "{}", lines[0]);
    assert_eq!(span["route"], "/t/log/{item}", "{}", lines[0]);
    assert_eq!(span["method"], "GET", "{}", lines[0]);

    // A generated id is the one the response names.
    let r = app.client.get(app.url("/t/log/8")).send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let lines = captured.lines("inside the handler");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1]["span"]["request_id"], id.as_str(), "{}", lines[1]);
    assert_ne!(
        lines[0]["span"]["request_id"],
        lines[1]["span"]["request_id"]
    );

    // Other tests' threads, which have no subscriber, may have registered the job span's
    // callsite as disabled while this thread's subscriber was being set: have every callsite's
    // interest asked again, now that it is in place.
    tracing::callsite::rebuild_interest_cache();
    let job = app
        .services()
        .queue
        .enqueue(JobSpec::new("diag.fail", json!({ "times": 1 })).queue("default"))
        .await
        .unwrap();
    let line = eventually(
        "the job logs its planned failure",
        Duration::from_secs(20),
        || async {
            // Other tests of this binary run diag.fail too: this job's line is the one that
            // names its attempt of this job.
            captured
                .lines("diag.fail: failing as planned")
                .into_iter()
                .find(|l| l["span"]["job_id"] == job.id)
        },
    )
    .await;
    let span = &line["span"];
    assert_eq!(span["name"], "job", "{line}");
    assert_eq!(span["job_id"], job.id, "{line}");
    assert_eq!(span["kind"], "diag.fail", "{line}");
    assert_eq!(span["attempt"], 1, "{line}");
    assert_eq!(span["queue"], "default", "{line}");
    assert!(
        line["spans"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != "request"),
        "a job runs outside any request: {line}"
    );
    app.shutdown().await.unwrap();
}
