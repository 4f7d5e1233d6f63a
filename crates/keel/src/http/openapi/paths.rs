//! The paths outside the admin API: health, metrics, the caller's own routes, the external
//! scheduler trigger and this documentation (`http::health`, `http::metrics`, `http::me`,
//! `http::scheduler`, `http::openapi`).

use serde_json::{json, Map, Value};

use super::op::{header_param, json_answer, path_param, query_param, schema_ref, Op};

pub(super) fn add(paths: &mut Map<String, Value>) {
    paths.insert("/health".into(), json!({ "get": health() }));
    paths.insert("/health/live".into(), json!({ "get": live() }));
    paths.insert("/health/ready".into(), json!({ "get": ready() }));
    paths.insert("/health/deep".into(), json!({ "get": deep() }));
    paths.insert("/metrics".into(), json!({ "get": metrics() }));
    paths.insert(
        "/v1/me".into(),
        json!({ "get": me(), "delete": delete_me() }),
    );
    paths.insert("/v1/me/export".into(), json!({ "get": export() }));
    paths.insert("/v1/auth/check".into(), json!({ "get": auth_check() }));
    paths.insert(
        "/v1/scheduler/{name}/trigger".into(),
        json!({ "post": scheduler_trigger() }),
    );
    paths.insert("/openapi.json".into(), json!({ "get": document() }));
    paths.insert("/docs".into(), json!({ "get": page() }));
}

const USER_UNAVAILABLE: &str = "`auth-unavailable`: the issuer's keys have never been fetched, so \
    no token can be verified yet; `database-unavailable`; or `timeout`.";

fn health() -> Value {
    Op::new("Health", "health", "Health report")
        .text(
            "The database (2 s timeout), Redis when configured (1 s) and, in roles that serve \
             the API, the issuer's keys. Served by every role.",
        )
        .answer(
            200,
            json_answer(
                "`ok`, or `degraded` when an optional dependency does not answer.",
                schema_ref("HealthReport"),
            ),
        )
        .answer(
            503,
            json_answer(
                "`fail`: the database does not answer. The body is the report, not a problem.",
                schema_ref("HealthReport"),
            ),
        )
        .build()
}

fn live() -> Value {
    Op::new("Health", "healthLive", "Liveness")
        .text("200 while the process serves.")
        .answer(
            200,
            json_answer("The process serves.", schema_ref("Liveness")),
        )
        .build()
}

fn ready() -> Value {
    Op::new("Health", "healthReady", "Readiness")
        .text(
            "200 once migrations are applied and every required dependency answers (the \
             database, Redis when configured, the issuer's keys when they come from a JWKS URL). \
             503 while starting or migrating, and from the first moment of shutdown.",
        )
        .answer(200, json_answer("Ready.", schema_ref("Readiness")))
        .answer(
            503,
            json_answer(
                "Not ready: the body says the phase and, once started, which check fails. It is \
                 the report, not a problem.",
                schema_ref("Readiness"),
            ),
        )
        .build()
}

fn deep() -> Value {
    Op::new("Health", "healthDeep", "Deep health report")
        .text(
            "`/health` plus the token verifier's keys and the job system against the thresholds \
             of `[health]` in `keel.toml`. Bearer `METRICS_TOKEN` whenever it is set. API roles \
             only.",
        )
        .security(json!([{}, { "metricsToken": [] }]))
        .answer(
            200,
            json_answer(
                "`ok`, or `degraded` when a dependency does not answer, the keys are stale or a \
                 threshold is exceeded (named in `queue.exceeded`).",
                schema_ref("DeepHealthReport"),
            ),
        )
        .answer(
            503,
            json_answer(
                "`fail`: the database does not answer. It is the report, not a problem.",
                schema_ref("DeepHealthReport"),
            ),
        )
        .problem(
            401,
            "`METRICS_TOKEN` is set and the request does not carry it.",
        )
        .build()
}

fn metrics() -> Value {
    Op::new("Health", "metrics", "Prometheus metrics")
        .text(
            "Prometheus text format: build info, uptime, readiness and token verification \
             counters. Bearer `METRICS_TOKEN` whenever it is set; open otherwise.",
        )
        .security(json!([{}, { "metricsToken": [] }]))
        .answer(
            200,
            json!({
                "description": "The metrics.",
                "content": {
                    "text/plain; version=0.0.4; charset=utf-8": { "schema": { "type": "string" } }
                }
            }),
        )
        .problem(
            401,
            "`METRICS_TOKEN` is set and the request does not carry it.",
        )
        .build()
}

fn me() -> Value {
    Op::new("Users", "getMe", "The caller")
        .text(
            "The verified caller. The user row is created on first sight (safe under concurrent \
             first requests).",
        )
        .security(json!([{ "bearer": [] }]))
        .answer(200, json_answer("The caller.", schema_ref("Me")))
        .problem(401, "No bearer token, or one that does not verify.")
        .problem(503, USER_UNAVAILABLE)
        .build()
}

fn export() -> Value {
    Op::new("Users", "exportMe", "Everything stored about the caller")
        .text(
            "The user row, entitlements, subscriptions, manual grants and revocations, billing \
             events with their raw payloads opened (while retained), provider links, audit rows \
             and jobs that name the caller.",
        )
        .security(json!([{ "bearer": [] }]))
        .answer(200, json_answer("The export.", json!({ "type": "object" })))
        .problem(401, "No bearer token, or one that does not verify.")
        .problem(503, USER_UNAVAILABLE)
        .build()
}

fn delete_me() -> Value {
    Op::new("Users", "deleteMe", "Erase the caller's data")
        .text(
            "Marks the caller for erasure and enqueues the `privacy.erase` job, which deletes \
             every row about them; audit rows stay under a keyed pseudonym (`h1:…`), not the id.",
        )
        .security(json!([{ "bearer": [] }]))
        .answer(
            202,
            json_answer(
                "Scheduled.",
                json!({
                    "type": "object",
                    "required": ["status", "job_id"],
                    "properties": {
                        "status": { "type": "string", "const": "scheduled" },
                        "job_id": { "type": "integer" }
                    }
                }),
            ),
        )
        .problem(401, "No bearer token, or one that does not verify.")
        .problem(
            503,
            "`enqueue-disabled`: the `enqueue` kill switch is off; or the database is unavailable.",
        )
        .build()
}

fn auth_check() -> Value {
    let header =
        |description: &str| json!({ "description": description, "schema": { "type": "string" } });
    Op::new("Users", "authCheck", "Forward authentication")
        .text(
            "For reverse proxies: nginx `auth_request`, Traefik ForwardAuth, Caddy \
             `forward_auth`. Answers 200 with the caller in headers, 401 for a bad or missing \
             token, 403 when the required entitlement is not active.",
        )
        .security(json!([{ "bearer": [] }]))
        .param(query_param(
            "entitlement",
            "An entitlement that must be active (takes precedence over the header).",
            json!({ "type": "string" }),
        ))
        .param(header_param(
            "x-required-entitlement",
            "An entitlement that must be active, when the query does not name one.",
            json!({ "type": "string" }),
        ))
        .answer(
            200,
            json!({
                "description": "The caller may pass. No body.",
                "headers": {
                    "x-user-id": header("The user id (the token's `sub`)."),
                    "x-tenant-id": header("The tenant id; empty when the token names none."),
                    "x-entitlements": header("The active entitlements, comma-separated.")
                }
            }),
        )
        .problem(400, "The query string cannot be read.")
        .problem(401, "No bearer token, or one that does not verify.")
        .problem(
            403,
            "`entitlement-required`: the required entitlement is not active; the detail names it.",
        )
        .problem(503, USER_UNAVAILABLE)
        .build()
}

fn scheduler_trigger() -> Value {
    Op::new(
        "Scheduler",
        "triggerSchedule",
        "Fire a schedule (external cron)",
    )
    .text(
        "For a platform scheduler or a CI job. Fires at most once per period of the \
             schedule's cron expression; with an `Idempotency-Key`, once per key instead. This \
             route exists only when `SCHEDULER_SECRET_KEY` is set (404 otherwise).",
    )
    .security(json!([{ "schedulerSecret": [] }]))
    .param(path_param(
        "name",
        "The schedule's name (from keel.toml, or built in: `jobs.prune`, `retention.events`, `privacy.maintenance`).",
        json!({ "type": "string" }),
    ))
    .param(header_param(
        "Idempotency-Key",
        "Fire once per key rather than once per period.",
        json!({ "type": "string", "minLength": 1, "maxLength": 200 }),
    ))
    .answer(
        202,
        json_answer(
            "Fired, or already fired in this period or for this key.",
            schema_ref("Fired"),
        ),
    )
    .problem(
        400,
        "`Idempotency-Key` is not 1 to 200 visible ASCII characters.",
    )
    .problem(401, "The request does not carry `SCHEDULER_SECRET_KEY`.")
    .problem(
        404,
        "No schedule of this name (or `SCHEDULER_SECRET_KEY` is unset).",
    )
    .problem(
        503,
        "`enqueue-disabled`: the `enqueue` kill switch is off; or the database is unavailable.",
    )
    .build()
}

fn document() -> Value {
    Op::new("Documentation", "openapi", "This document")
        .text("OpenAPI 3.1 of the whole HTTP surface.")
        .answer(
            200,
            json_answer("The OpenAPI document.", json!({ "type": "object" })),
        )
        .build()
}

fn page() -> Value {
    Op::new("Documentation", "docs", "This documentation as a page")
        .text(
            "A self-contained page rendering `/openapi.json`: nothing is fetched from the \
             internet.",
        )
        .answer(
            200,
            json!({
                "description": "The page.",
                "content": { "text/html; charset=utf-8": { "schema": { "type": "string" } } }
            }),
        )
        .build()
}
