//! Token authentication over real HTTP (SPEC §3 `AUTH_*`, §4 "Users"): the attack matrix on
//! `/v1/me` and `/v1/auth/check`, users created on first sight, tenants, admins, HS256 and
//! development tokens, forward auth, and tenant isolation. Every refusal is checked to be a 401
//! problem with the right `www-authenticate` challenge that quotes neither token nor claims.

use crate::auth_support;

use auth_support::*;
use keel::auth::dev::{self, DevClaims};
use keel_testkit::{FakeIdp, TestApp, TestDb};
use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::{json, Value};

/// The matrix on an app with JWKS, issuer and audience set (no HS256 secret).
#[rustfmt::skip]
fn matrix(idp: &FakeIdp) -> Vec<Case> {
    let t = now();
    let base = idp.claims(SUB);
    let valid = idp.token(&base);
    let rsa = Alg::Rs256(KeyId::Rsa1);
    let sign = |kid: &str, claims: &Value| idp.sign(rsa.clone(), Some(kid), claims);
    let signed = |claims: &Value| sign("rsa-1", claims);
    let bad = |changes: Value| with(base.clone(), changes);
    let old = |exp: i64| bad(json!({"iat": t - 700, "nbf": t - 700, "exp": exp}));
    let headed = |header: Value, alg: Alg| idp.sign_with_header(&header, &base, alg);
    let none = |header: Value| headed(header, Alg::None);
    let der = FakeIdp::rsa_public_key_der(KeyId::Rsa1);
    let jwk_text = FakeIdp::jwk(KeyId::Rsa1).to_string().into_bytes();
    let mut with_sig = none(json!({"alg": "none", "kid": "rsa-1"}));
    with_sig.push_str(valid.rsplit('.').next().unwrap());
    let flipped = bad(json!({"sub": "victim-0001"}));
    let longer = bad(json!({"exp": t + 86_400 * 365}));
    let no_token = || Expect::Refused(Challenge::NoToken);
    let either = || Expect::Refused(Challenge::Either);
    let invalid = || Expect::Refused(Challenge::Invalid);

    let mut cases = vec![
        raw("no header", vec![], no_token()),
        raw("Bearer alone", vec![hv("Bearer")], no_token()),
        raw("Bearer and spaces", vec![hv("Bearer     ")], no_token()),
        raw("Basic abc", vec![hv("Basic abc")], no_token()),
        raw("Basic with a valid token", vec![hv(&format!("Basic {valid}"))], either()),
        raw("garbage without a scheme", vec![hv("garbage")], either()),
        raw("valid token without a scheme", vec![hv(&valid)], either()),
        raw("Bearer garbage", vec![hv("Bearer garbage-garbage")], invalid()),
        raw("Bearer three empty parts", vec![hv("Bearer ..")], invalid()),
        raw("Bearer {}.{}.{}", vec![hv("Bearer e30.e30.e30")], invalid()),
        raw("Bearer two tokens", vec![hv(&format!("Bearer {valid} {valid}"))], invalid()),
        raw("Bearer non-UTF-8", vec![HeaderValue::from_bytes(b"Bearer \xff\xfe.a.b").unwrap()], invalid()),
        raw("two headers, valid first", vec![bearer(&valid), bearer("garbage")], invalid()),
        raw("two headers, valid second", vec![bearer("garbage"), bearer(&valid)], invalid()),
        raw("two valid headers", vec![bearer(&valid), bearer(&valid)], invalid()),
        // RFC 9110 §11.1: the scheme is case-insensitive.
        raw("lowercase bearer", vec![hv(&format!("bearer {valid}"))], Expect::Accepted),
        raw("uppercase BEARER", vec![hv(&format!("BEARER {valid}"))], Expect::Accepted),
        accepted("valid RS256", valid.clone(), &base),
        accepted("valid ES256", idp.sign(Alg::Es256, Some("ec-1"), &base), &base),
        accepted("valid EdDSA", idp.sign(Alg::EdDsa, Some("ed-1"), &base), &base),
        accepted("expired within the leeway", signed(&old(t - 10)), &base),
        accepted("aud list naming us", signed(&bad(json!({"aud": ["x", AUDIENCE]}))), &base),
        refused("truncated", valid[..valid.len() - 10].to_string(), &base),
        refused("signature cut off", valid[..valid.rfind('.').unwrap() + 1].to_string(), &base),
        refused("four parts", format!("{valid}.e30"), &base),
        refused("tampered sub", tampered(&valid, &flipped), &flipped),
        refused("tampered exp", tampered(&valid, &longer), &longer),
        refused("alg none", none(json!({"alg": "none"})), &base),
        refused("alg none, typ and kid", none(json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"})), &base),
        refused("alg None", none(json!({"alg": "None", "kid": "rsa-1"})), &base),
        refused("alg none with a real signature", with_sig, &base),
        refused("HS256 keyed with the RSA DER", idp.sign(Alg::Hs256(der), Some("rsa-1"), &base), &base),
        refused("HS256 keyed with the JWK", idp.sign(Alg::Hs256(jwk_text), Some("rsa-1"), &base), &base),
        refused("unknown kid", sign("rsa-9", &base), &base),
        refused("no kid with several keys", idp.sign(rsa.clone(), None, &base), &base),
        refused("kid not a string", headed(json!({"alg": "RS256", "kid": 7}), rsa.clone()), &base),
        refused("crit header", headed(json!({"alg": "RS256", "kid": "rsa-1", "crit": ["x"], "x": 1}), rsa.clone()), &base),
        refused("RS256 under alg ES256, kid ec-1", headed(json!({"alg": "ES256", "kid": "ec-1"}), rsa.clone()), &base),
        refused("RS256 under alg ES256, kid rsa-1", headed(json!({"alg": "ES256", "kid": "rsa-1"}), rsa.clone()), &base),
        refused("ES256 under alg RS256, kid rsa-1", headed(json!({"alg": "RS256", "kid": "rsa-1"}), Alg::Es256), &base),
        refused("EdDSA under kid ec-1", idp.sign(Alg::EdDsa, Some("ec-1"), &base), &base),
        refused("RS256 with the other RSA key", idp.sign(Alg::Rs256(KeyId::Rsa2), Some("rsa-1"), &base), &base),
    ];
    // Correctly signed by the issuer, but the claims break a rule.
    let claim_refusals = [
        ("expired beyond the leeway", json!({"iat": t - 700, "nbf": t - 700, "exp": t - 120})),
        ("nbf in the future", json!({"nbf": t + 120})),
        ("iat in the future", json!({"iat": t + 120})),
        ("wrong iss", json!({"iss": "https://evil.example.com/"})),
        ("no iss", json!({"iss": null})),
        ("wrong aud", json!({"aud": "other-api"})),
        ("aud list without us", json!({"aud": ["other-api", "more-apis"]})),
        ("no aud", json!({"aud": null})),
        ("missing sub", json!({"sub": null})),
        ("missing exp", json!({"exp": null})),
        ("empty sub", json!({"sub": ""})),
        ("sub a number", json!({"sub": 12345678})),
        ("sub an object", json!({"sub": {"id": "nested-sub"}})),
        ("sub of 256 bytes", json!({"sub": "s".repeat(256)})),
        ("exp a string", json!({"exp": (t + 600).to_string()})),
        ("nbf a string", json!({"nbf": "yesterday-ish"})),
        ("100 KB token", json!({"pad": "x".repeat(100 * 1024)})),
    ];
    for (name, changes) in claim_refusals {
        let claims = bad(changes);
        cases.push(refused(name, signed(&claims), &claims));
    }
    // Far-future expiry: accepting or refusing is defensible, a 5xx is not.
    let far = [json!(10_000_000_000_000_000_000u64), json!(i64::MAX), json!(1.5e300)];
    for exp in far {
        let claims = bad(json!({ "exp": exp }));
        cases.push(tok(&format!("exp {exp}"), signed(&claims), &base, Expect::AcceptedOrRefused));
    }
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_matrix_is_refused_with_401_and_counted() {
    let idp = FakeIdp::start().await;
    let app = idp_app(TestDb::sqlite(), &idp).spawn().await;
    let failed = run_all(&app, &matrix(&idp)).await;

    let counts = failures(&app).await;
    let reasons = [
        "expired",
        "invalid_signature",
        "unknown_key",
        "malformed",
        "missing",
    ];
    for reason in reasons.into_iter().chain(["too_large", "missing_claim"]) {
        let n = counts.get(reason).copied().unwrap_or(0);
        assert!(n > 0, "{reason}: {counts:?}");
    }
    assert_eq!(counts.get("unavailable"), Some(&0), "{counts:?}");
    assert!(
        failed.is_empty(),
        "{} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorized_parties_and_hs256_key_confusion() {
    let idp = FakeIdp::start().await;
    let app = idp_app(TestDb::sqlite(), &idp)
        .env("AUTH_AUTHORIZED_PARTIES", "https://app.example.com")
        .env("AUTH_HS256_SECRET", OTHER_SECRET)
        .spawn()
        .await;
    let party = with(idp.claims(SUB), json!({"azp": "https://app.example.com"}));
    let evil = with(party.clone(), json!({"azp": "https://evil.example.com"}));
    let plain = idp.claims(SUB);
    let der = FakeIdp::rsa_public_key_der(KeyId::Rsa1);
    let hs = |secret: &[u8], claims: &Value| {
        idp.sign(Alg::Hs256(secret.to_vec()), Some("rsa-1"), claims)
    };
    let cases = [
        refused("missing azp", idp.token(&plain), &plain),
        refused("wrong azp", idp.token(&evil), &evil),
        accepted("right azp", idp.token(&party), &party),
        refused("HS256 keyed with the RSA DER", hs(&der, &party), &party),
        refused(
            "HS256 under another secret",
            hs(HS_SECRET.as_bytes(), &party),
            &party,
        ),
        accepted(
            "HS256 under the configured secret",
            hs(OTHER_SECRET.as_bytes(), &party),
            &party,
        ),
    ];
    run(&app, &cases).await;
}

keel_testkit::engine_test!(me_creates_the_user_once);
async fn me_creates_the_user_once(db: TestDb) {
    let idp = FakeIdp::start().await;
    let app = idp_app(db, &idp).spawn().await;
    let first = me(&app, &idp.token(&idp.claims("u-first"))).await;
    let mut keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["created_at", "roles", "tenant_id", "user_id"],
        "{first}"
    );
    assert_eq!(first["user_id"], "u-first");
    assert_eq!(first["tenant_id"], Value::Null);
    assert_eq!(first["roles"], json!(["user"]));
    let created = first["created_at"].as_str().expect("created_at");
    chrono::DateTime::parse_from_rfc3339(created).expect("RFC 3339");
    assert_eq!(
        app.db
            .scalar("SELECT count(*) FROM users WHERE id = 'u-first'")
            .await,
        1
    );

    // 20 first requests at once, each with its own token, make one row and one created_at.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let token = idp.token(&with(
            idp.claims("u-racer"),
            json!({"jti": format!("j{i}")}),
        ));
        let request = app.client.get(app.url("/v1/me")).bearer_auth(token);
        tasks.spawn(async move { send(request).await });
    }
    let mut seen = std::collections::BTreeSet::new();
    while let Some(r) = tasks.join_next().await {
        let r = r.expect("task");
        assert_eq!(r.status, 200, "{}", r.text);
        seen.insert(r.body["created_at"].as_str().unwrap().to_string());
    }
    assert_eq!(seen.len(), 1, "one created_at: {seen:?}");
    assert_eq!(
        app.db
            .scalar("SELECT count(*) FROM users WHERE id = 'u-racer'")
            .await,
        1
    );
    assert_eq!(app.db.scalar("SELECT count(*) FROM users").await, 2);

    // created_at stays put across calls and tokens.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = me(
        &app,
        &idp.token(&with(idp.claims("u-first"), json!({"jti": "later"}))),
    )
    .await;
    assert_eq!(again["created_at"], first["created_at"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_come_from_the_token() {
    let idp = FakeIdp::start().await;
    let app = idp_app(TestDb::sqlite(), &idp).spawn().await;
    let claims = with(
        idp.claims("u-org"),
        json!({"org_id": "org_1", "o": {"id": "org_9"}}),
    );
    let body = me(&app, &idp.token(&claims)).await;
    assert_eq!(body["tenant_id"], "org_1", "{body}");
    let sql = "SELECT count(*) FROM users WHERE id = 'u-org' AND tenant_id = 'org_1'";
    assert_eq!(app.db.scalar(sql).await, 1);

    let nested = idp_app(TestDb::sqlite(), &idp)
        .env("AUTH_TENANT_CLAIM", "o.id")
        .spawn()
        .await;
    let body = me(&nested, &idp.token(&claims)).await;
    assert_eq!(body["tenant_id"], "org_9", "{body}");
    let body = me(&nested, &idp.token(&idp.claims("u-none"))).await;
    assert_eq!(body["tenant_id"], Value::Null, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_user_ids_grant_the_admin_role() {
    let idp = FakeIdp::start().await;
    let app = idp_app(TestDb::sqlite(), &idp)
        .env("ADMIN_USER_IDS", "u-other-admin, u-admin")
        .spawn()
        .await;
    let admin = idp.token(&idp.claims("u-admin"));
    let user = idp.token(&idp.claims("u-plain"));
    assert_eq!(me(&app, &admin).await["roles"], json!(["user", "admin"]));
    assert_eq!(me(&app, &user).await["roles"], json!(["user"]));
    let flags = get_as(&app, "/admin/api/flags", &admin).await;
    assert!(flags.ok(200).is_object(), "{}", flags.text);
    let r = get_as(&app, "/admin/api/flags", &user).await;
    r.problem(403, "admin-required");
    r.quotes_none(&secrets_of(&user, &idp.claims("u-plain")), "non-admin");
    get_with(&app, "/admin/api/flags", &[])
        .await
        .refused(Challenge::NoToken, &[], "no token");
    let r = get_with(&app, "/admin/api/flags", &[bearer("not-a-token")]).await;
    r.refused(Challenge::Invalid, &[], "bad token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_tokens_verify_only_under_their_secret() {
    let claims = json!({"sub": SUB, "exp": now() + 600, "iat": now()});
    let idp = FakeIdp::start().await;
    let token = idp.sign(Alg::Hs256(HS_SECRET.as_bytes().to_vec()), None, &claims);
    let app = TestApp::builder(TestDb::sqlite())
        .env("AUTH_HS256_SECRET", HS_SECRET)
        .spawn()
        .await;
    run(&app, &[accepted("HS256", token.clone(), &claims)]).await;
    let rs = idp.token(&idp.claims(SUB));
    run(&app, &[refused("RS256 without JWKS", rs, &idp.claims(SUB))]).await;

    let other = TestApp::builder(TestDb::sqlite())
        .env("AUTH_HS256_SECRET", OTHER_SECRET)
        .spawn()
        .await;
    run(
        &other,
        &[refused("HS256 under another secret", token, &claims)],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_names_the_caller_and_checks_entitlements() {
    let idp = FakeIdp::start().await;
    let app = idp_app(TestDb::sqlite(), &idp).spawn().await;
    let claims = with(idp.claims("u-fwd"), json!({"org_id": "t-fwd"}));
    let token = idp.token(&claims);
    let r = get_as(&app, "/v1/auth/check", &token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-user-id"), Some("u-fwd"));
    assert_eq!(r.header("x-tenant-id"), Some("t-fwd"));
    assert_eq!(r.header("x-entitlements"), Some(""));

    let by_query = get_as(&app, "/v1/auth/check?entitlement=premium", &token).await;
    let by_header = send(
        app.client
            .get(app.url("/v1/auth/check"))
            .bearer_auth(&token)
            .header("x-required-entitlement", "premium"),
    )
    .await;
    for r in [by_query, by_header] {
        let body = r.problem(403, "entitlement-required");
        assert!(
            body["detail"].as_str().unwrap().contains("premium"),
            "{body}"
        );
        assert!(r.header("x-user-id").is_none(), "{:?}", r.headers);
        r.quotes_none(&secrets_of(&token, &claims), "entitlement-required");
    }
    let none = send(
        app.client
            .get(app.url("/v1/auth/check?entitlement=premium")),
    )
    .await;
    none.refused(Challenge::NoToken, &[], "no token, entitlement asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_never_answers_200_without_naming_the_caller() {
    let idp = FakeIdp::start().await;
    let app = idp_app(TestDb::sqlite(), &idp).spawn().await;
    // `sub` is any string (RFC 7519 §4.1.2); a header value cannot hold every string as is.
    let ids = [
        ("josé-ü", "org-ü"),
        ("u-line\nx-injected: 1", "t-ok"),
        ("u-ok", "t\r\nx-injected: 1"),
        ("u-nul\0", "t-ok"),
    ];
    let mut failed = Vec::new();
    for (sub, org) in ids {
        let claims = with(idp.claims(sub), json!({"org_id": org}));
        let r = get_as(&app, "/v1/auth/check", &idp.token(&claims)).await;
        assert!(r.status < 500, "{sub:?}: {} {}", r.status, r.text);
        assert!(r.header("x-injected").is_none(), "{sub:?}: {:?}", r.headers);
        let named = |h: &str| r.headers.get(h).is_some_and(|v| !v.is_empty());
        if r.status == 200 && !(named("x-user-id") && named("x-tenant-id")) {
            failed.push(format!(
                "sub {sub:?}, org {org:?}: 200 without the caller: {:?}",
                r.headers
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated() {
    let idp = FakeIdp::start().await;
    let app = idp_app(TestDb::sqlite(), &idp).spawn().await;
    let a = idp.token(&with(idp.claims("u-a"), json!({"org_id": "t-a"})));
    let b = idp.token(&with(idp.claims("u-b"), json!({"org_id": "t-b"})));
    let callers = [
        (&a, "u-a", "t-a", "u-b", "t-b"),
        (&b, "u-b", "t-b", "u-a", "t-a"),
    ];
    for (token, user, tenant, other, other_tenant) in callers {
        let body = json!({"user_id": other, "tenant_id": other_tenant, "sub": other, "org_id": other_tenant});
        let q =
            format!("user_id={other}&tenant_id={other_tenant}&sub={other}&org_id={other_tenant}");
        for path in ROUTES {
            let requests = [
                app.client.get(app.url(path)),
                app.client.get(app.url(&format!("{path}?{q}"))),
                app.client.get(app.url(&format!("{path}?entitlement=&{q}"))),
                app.client.get(app.url(path)).json(&body),
                app.client
                    .get(app.url(path))
                    .header("x-user-id", other)
                    .header("x-tenant-id", other_tenant),
            ];
            for request in requests {
                let r = send(request.bearer_auth(token)).await;
                assert_eq!(r.status, 200, "{path}: {}", r.text);
                let seen = if path == "/v1/me" {
                    (r.body["user_id"].as_str(), r.body["tenant_id"].as_str())
                } else {
                    (r.header("x-user-id"), r.header("x-tenant-id"))
                };
                assert_eq!(seen, (Some(user), Some(tenant)), "{path}: {}", r.text);
            }
        }
    }
    for (user, tenant) in [("u-a", "t-a"), ("u-b", "t-b")] {
        let sql =
            format!("SELECT count(*) FROM users WHERE id = '{user}' AND tenant_id = '{tenant}'");
        assert_eq!(app.db.scalar(&sql).await, 1, "{user}");
    }
    assert_eq!(app.db.scalar("SELECT count(*) FROM users").await, 2);

    // A non-admin reaches no admin route, whatever it names; nothing changes.
    let admin_routes: [(Method, &str, Option<Value>); 13] = [
        (Method::GET, "/admin/api/queues", None),
        (Method::POST, "/admin/api/queues/default/pause", None),
        (Method::POST, "/admin/api/queues/default/resume", None),
        (Method::POST, "/admin/api/queues/default/drain", None),
        (Method::GET, "/admin/api/jobs?state=available", None),
        (
            Method::POST,
            "/admin/api/jobs",
            Some(json!({"kind": "diag.noop"})),
        ),
        (Method::POST, "/admin/api/jobs/1/retry", None),
        (Method::POST, "/admin/api/jobs/1/discard", None),
        (Method::GET, "/admin/api/flags", None),
        (
            Method::PUT,
            "/admin/api/flags/workers",
            Some(json!({"enabled": false})),
        ),
        (Method::GET, "/admin/api/schedules", None),
        (
            Method::POST,
            "/admin/api/schedules/jobs.prune/trigger",
            None,
        ),
        (Method::GET, "/admin/api/audit?target=u-b", None),
    ];
    let before = counts(&app).await;
    for (method, path, body) in admin_routes {
        let mut request = app.client.request(method.clone(), app.url(path));
        if let Some(body) = &body {
            request = request.json(body);
        }
        let r = send(request.try_clone().unwrap().bearer_auth(&a)).await;
        r.problem(403, "admin-required");
        let r = send(request).await;
        r.refused(
            Challenge::NoToken,
            &[],
            &format!("{method} {path} without a token"),
        );
    }
    let after = counts(&app).await;
    assert_eq!(after, before, "no admin action took effect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_tokens_only_in_dev_mode() {
    let idp = FakeIdp::start().await;
    let builder = idp_app(TestDb::sqlite(), &idp)
        .env("APP_ENV", "development")
        .env("AUTH_DEV_MODE", "true");
    let dir = builder.settings().data_dir;
    let key = dev::load_or_create(&dir).expect("development key");
    let app = builder.spawn().await;
    let claims = |user: &'static str, admin: bool| DevClaims {
        user,
        tenant: Some("t-dev"),
        tenant_claim: "org_id",
        admin,
        ttl_s: 600,
    };
    let token = dev::mint(&key, &claims("u-dev", false), now());
    let body = me(&app, &token).await;
    assert_eq!(body["user_id"], "u-dev", "{body}");
    assert_eq!(body["tenant_id"], "t-dev", "{body}");
    assert_eq!(body["roles"], json!(["user"]));
    get_as(&app, "/admin/api/flags", &token)
        .await
        .problem(403, "admin-required");
    let admin = dev::mint(&key, &claims("u-dev-admin", true), now());
    assert_eq!(me(&app, &admin).await["roles"], json!(["user", "admin"]));
    get_as(&app, "/admin/api/flags", &admin).await.ok(200);
    // The JWKS verifier keeps working beside it.
    me(&app, &idp.token(&idp.claims("u-jwks"))).await;
    // A development token under another key is refused.
    let forged = dev::mint(&[7u8; 32], &claims("u-dev", true), now());
    let secrets = vec![forged.clone()];
    get_as(&app, "/v1/me", &forged)
        .await
        .refused(Challenge::Invalid, &secrets, "forged dev token");

    // Without AUTH_DEV_MODE (off by default once a verifier is configured) the same key on disk
    // accepts nothing, and the refusal says why.
    let plain = idp_app(TestDb::sqlite(), &idp).env("APP_ENV", "development");
    let other_dir = plain.settings().data_dir;
    std::fs::create_dir_all(&other_dir).unwrap();
    std::fs::copy(dev::key_path(&dir), dev::key_path(&other_dir)).unwrap();
    let plain = plain.env("AUTH_HS256_SECRET", HS_SECRET).spawn().await;
    let refusal = get_as(&plain, "/v1/me", &token).await;
    assert!(
        refusal.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("development token")),
        "{}",
        refusal.text
    );
    for t in [&token, &admin] {
        let secrets = vec![t.to_string(), "u-dev".into(), "t-dev".into()];
        for path in ROUTES {
            get_as(&plain, path, t).await.refused(
                Challenge::Invalid,
                &secrets,
                "dev token, dev mode off",
            );
        }
        get_as(&plain, "/admin/api/flags", t).await.refused(
            Challenge::Invalid,
            &secrets,
            "dev admin, dev mode off",
        );
    }
}

/// Rows that an admin action would add: audit rows, flags, and jobs of the kind enqueued above.
async fn counts(app: &TestApp) -> [i64; 3] {
    [
        app.db.scalar("SELECT count(*) FROM audit_log").await,
        app.db.scalar("SELECT count(*) FROM flags").await,
        app.db
            .scalar("SELECT count(*) FROM jobs WHERE kind = 'diag.noop'")
            .await,
    ]
}
