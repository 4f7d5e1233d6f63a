//! Forward auth by entitlement and the Entitled paywall extractor on application routes.

use super::*;

keel_testkit::engine_test!(forward_auth_reports_and_requires_entitlements);
async fn forward_auth_reports_and_requires_entitlements(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).spawn().await;
    let user = "forwarded-1";
    buy(&app, user).await;
    grant(&app, user, "beta", Value::Null).await.ok(200);
    grant(&app, user, "old", json!(at(-chrono::Duration::days(1))))
        .await
        .ok(200);
    let bearer = token(user);

    let r = send(&app, Method::GET, "/v1/auth/check", Some(&bearer), None).await;
    r.ok(200);
    assert_eq!(r.header("x-entitlements"), Some("beta,pro"));
    assert_eq!(r.header("x-user-id"), Some(user));
    let r = send(
        &app,
        Method::GET,
        "/v1/auth/check?entitlement=pro",
        Some(&bearer),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for path in [
        "/v1/auth/check?entitlement=premium",
        "/v1/auth/check?entitlement=old",
    ] {
        let r = send(&app, Method::GET, path, Some(&bearer), None).await;
        let name = path.rsplit('=').next().unwrap();
        let detail = r.problem(403, "entitlement-required")["detail"]
            .as_str()
            .unwrap();
        assert!(detail.contains(name), "{detail}");
    }

    let check = |required: &'static str, bearer: String| {
        let request = app
            .client
            .get(app.url("/v1/auth/check"))
            .bearer_auth(bearer);
        request.header("x-required-entitlement", required).send()
    };
    assert_eq!(check("pro", bearer.clone()).await.unwrap().status(), 200);
    let refused = check("premium", bearer.clone()).await.unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["type"], format!("{PROBLEMS}entitlement-required"));
    assert!(
        body["detail"].as_str().unwrap().contains("premium"),
        "{body}"
    );
    // An empty query value does not hide the header's requirement.
    let request = app
        .client
        .get(app.url("/v1/auth/check?entitlement="))
        .bearer_auth(bearer.clone());
    let refused = request
        .header("x-required-entitlement", "premium")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    let r = send(
        &app,
        Method::GET,
        "/v1/auth/check",
        Some(&token("nothing-bought")),
        None,
    )
    .await;
    assert_eq!(r.ok(200), &Value::Null);
    assert_eq!(r.header("x-entitlements"), Some(""));
    let r = send(
        &app,
        Method::GET,
        "/v1/auth/check?entitlement=pro",
        None,
        None,
    )
    .await;
    r.problem(401, "unauthorized");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = send(&app, Method::GET, "/v1/auth/check", Some("garbage"), None).await;
    r.problem(401, "invalid-token");
}

keel_testkit::engine_test!(the_paywall_extractor_guards_application_routes);
async fn the_paywall_extractor_guards_application_routes(db: TestDb) {
    let (_dir, config) = config_dir();
    let app = app(db, &config).routes(paywalled()).spawn().await;
    let user = "paywalled-1";
    send(&app, Method::GET, "/app/premium", None, None)
        .await
        .problem(401, "unauthorized");
    let r = send(&app, Method::GET, "/app/premium", Some(&token(user)), None).await;
    assert!(r.problem(403, "entitlement-required")["detail"]
        .as_str()
        .unwrap()
        .contains("pro"));
    buy(&app, user).await;
    let r = send(&app, Method::GET, "/app/premium", Some(&token(user)), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text, format!("premium for {user}"));
    // Another user's purchase opens nothing for this one.
    let r = send(
        &app,
        Method::GET,
        "/app/premium",
        Some(&token("paywalled-2")),
        None,
    )
    .await;
    r.problem(403, "entitlement-required");
}
