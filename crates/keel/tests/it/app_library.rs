//! Keel as a library, in-process: the application's state beside Keel's (`AppData`), a typed job
//! with the application's context (`AppJob`), and the application's migrations applied on start.

use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::Router;
use keel::http::{AppData, AppState};
use keel::jobs::{AppJob, JobContext, JobFailure, JobFilter, JobSpec, JobState};
use keel::store::migrate::{AppMigrations, Migration};
use keel_testkit::{TestApp, TestDb};
use serde_json::{json, Value};

#[derive(Clone)]
struct Greeting(&'static str);

#[derive(Clone)]
struct Unregistered;

/// What the job's context records: each run's argument and attempt.
#[derive(Clone, Default)]
struct Ledger(Arc<Mutex<Vec<(String, i32)>>>);

#[derive(serde::Serialize, serde::Deserialize)]
struct Note {
    text: String,
}

impl AppJob for Note {
    const KIND: &'static str = "app.note";
    type Context = Ledger;

    async fn run(self, job: JobContext, ledger: Ledger) -> Result<(), JobFailure> {
        ledger.0.lock().unwrap().push((self.text, job.attempt));
        Ok(())
    }
}

const MIGRATIONS: AppMigrations = AppMigrations::portable(&[Migration {
    version: 1,
    name: "0001_notes",
    up: "CREATE TABLE notes (id TEXT PRIMARY KEY);",
    down: "DROP TABLE notes;",
}]);

async fn greet(AppData(greeting): AppData<Greeting>) -> &'static str {
    greeting.0
}

async fn unregistered(_: AppData<Unregistered>) -> &'static str {
    "unreachable"
}

keel_testkit::engine_test!(state_jobs_and_migrations_of_the_application);
async fn state_jobs_and_migrations_of_the_application(db: TestDb) {
    let ledger = Ledger::default();
    let context = ledger.clone();
    let app = TestApp::builder(db)
        .server(move |server| {
            server
                .app_data(Greeting("bonjour"))
                .migrations(MIGRATIONS)
                .routes(
                    Router::<AppState>::new()
                        .route("/v1/greeting", get(greet))
                        .route("/v1/unregistered", get(unregistered)),
                )
                .jobs(move |registry| {
                    registry.register_with::<Note>(context);
                })
        })
        .spawn()
        .await;

    assert_eq!(
        app.db
            .scalar("SELECT count(*) FROM keel_app_migrations")
            .await,
        1,
        "the application's migration is applied on start"
    );
    assert_eq!(app.db.scalar("SELECT count(*) FROM notes").await, 0);

    let greeting = app.get("/v1/greeting").await;
    assert_eq!(greeting.status(), 200);
    assert_eq!(greeting.text().await.unwrap(), "bonjour");

    let missing = app.get("/v1/unregistered").await;
    assert_eq!(missing.status(), 500);
    let problem: Value = missing.json().await.unwrap();
    assert!(
        problem["type"].as_str().unwrap().ends_with("/internal"),
        "{problem}"
    );

    let queue = &app.services().queue;
    queue
        .enqueue(JobSpec::new(Note::KIND, json!({"text": "first"})))
        .await
        .unwrap();
    let bad = queue
        .enqueue(JobSpec::new(Note::KIND, json!({"words": 3})))
        .await
        .unwrap();
    app.run_pending_jobs().await;
    assert_eq!(*ledger.0.lock().unwrap(), vec![("first".to_string(), 1)]);
    let discarded = app
        .services()
        .db
        .list_jobs(&JobFilter {
            id: Some(bad.id),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(discarded[0].state, JobState::Discarded);
    assert!(discarded[0]
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("arguments do not fit app.note")));
}
