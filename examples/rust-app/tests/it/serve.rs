//! `recipes serve` as a real process: the application's migration is applied on start, its
//! routes answer beside Keel's and are documented, the paywall opens after a signed purchase,
//! the typed job runs with the application's context, and the other `keel` subcommands work.

use std::time::Duration;

use crate::common::{bin, recipes};
use keel_testkit::{eventually, KeelProcess, TestDb};
use serde_json::{json, Value};

const RC_SECRET: &str = "revenuecat-webhook-secret-0123456789abcdef";
const SENDER: &str = "pastry@recipes.example";
const WAIT: Duration = Duration::from_secs(30);

keel_testkit::engine_test!(the_app_serves_its_routes_jobs_and_paywall);
async fn the_app_serves_its_routes_jobs_and_paywall(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("keel.toml"),
        "[products]\npremium_monthly = [\"premium\"]\n",
    )
    .unwrap();
    let env = [
        ("DATABASE_URL", db.url()),
        ("AUTH_DEV_MODE", "true"),
        ("REVENUECAT_WEBHOOK_SECRET", RC_SECRET),
        ("RECIPES_CARD_SENDER", SENDER),
    ];
    let mut server = KeelProcess::serve(&bin(), dir.path(), &env, &[]);
    server.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM keel_app_migrations").await,
        1,
        "MIGRATE_ON_START applies the application's migration"
    );

    let token = recipes(dir.path(), &env, &["dev", "token", "--user", "ada"]);
    let token = token.assert_code(0).stdout.trim().to_string();
    let http = reqwest::Client::new();
    let create = |body: Value, token: Option<&str>| {
        let mut request = http.post(server.url("/v1/recipes")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    let created = create(json!({"title": "Sourdough"}), Some(&token))
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["card_from"], SENDER, "{created}");
    assert_eq!(created["recipe"]["title"], "Sourdough", "{created}");

    let anonymous = create(json!({"title": "Rye"}), None).await.unwrap();
    assert_problem(anonymous, 401, "unauthorized").await;
    let empty = create(json!({"title": " "}), Some(&token)).await.unwrap();
    assert_problem(empty, 422, "validation-failed").await;

    let export = || {
        http.get(server.url("/v1/recipes/export"))
            .bearer_auth(&token)
            .send()
    };
    assert_problem(export().await.unwrap(), 403, "entitlement-required").await;

    let url = server.url("");
    let purchase = recipes(
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
            "--url",
            &url,
        ],
    );
    purchase.assert_code(0);
    // The purchase opens the paywall, and the card job has run with the application's sender.
    let recipes_of_ada = eventually("the export opens with the card sent", WAIT, || async {
        let response = export().await.ok()?;
        if response.status() != 200 {
            return None;
        }
        let body: Value = response.json().await.ok()?;
        (body["recipes"][0]["card_sent_by"] == SENDER).then_some(body)
    })
    .await;
    assert_eq!(recipes_of_ada["recipes"][0]["id"], created["recipe"]["id"]);

    let document: Value = http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (path, method, operation) in [
        ("/v1/recipes", "post", "createRecipe"),
        ("/v1/recipes/export", "get", "exportRecipes"),
        ("/v1/me/entitlements", "get", "getEntitlements"),
    ] {
        assert_eq!(
            document["paths"][path][method]["operationId"], operation,
            "{path} in /openapi.json"
        );
    }
    assert!(document["components"]["schemas"]["Recipe"].is_object());

    // Keel's subcommands in the application's binary: queue, smoke.
    let enqueued = recipes(
        dir.path(),
        &env,
        &[
            "queue",
            "enqueue",
            "recipes.send_card",
            "--args",
            r#"{"recipe_id": "none"}"#,
        ],
    );
    enqueued.assert_code(0);
    eventually(
        "the job for a missing recipe is discarded",
        WAIT,
        || async {
            let listed = recipes(dir.path(), &env, &["queue", "list", "--json"]);
            listed.json().as_array().into_iter().flatten().any(|job| {
                job["kind"] == "recipes.send_card"
                    && job["state"] == "discarded"
                    && job["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("no recipe none"))
            })
        },
    )
    .await;
    recipes(dir.path(), &env, &["smoke", &url]).assert_code(0);

    server.signal("TERM");
    assert!(server.wait_exit(WAIT).await.success());
}

async fn assert_problem(response: reqwest::Response, status: u16, slug: &str) {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert!(
        body["type"].as_str().is_some_and(|t| t.ends_with(slug)),
        "{status} {slug}: {body}"
    );
}
