//! `keel config check` and the configuration side of `keel serve`: every problem is listed and
//! named, production refuses unsafe settings (SPEC §3.1), no secret value is ever printed, and the
//! exit codes are 0 ok / 1 check failed / 2 bad usage or configuration (SPEC §1).

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::{keel, keel_within, Run};
use serde_json::Value;

/// 40 characters.
const HS256_SECRET: &str = "hs256-secret-0123456789abcdefghijklmnopq";
/// 40 characters.
const METRICS_TOKEN: &str = "metrics-token-0123456789abcdefghijklmnop";
/// Base64 of 32 bytes.
const DATA_KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// An environment production accepts.
fn valid_production() -> Vec<(&'static str, &'static str)> {
    vec![
        ("APP_ENV", "production"),
        ("DATABASE_URL", "sqlite://x.db"),
        ("AUTH_HS256_SECRET", HS256_SECRET),
        ("METRICS_TOKEN", METRICS_TOKEN),
        ("DATA_ENCRYPTION_KEYS", DATA_KEY),
    ]
}

/// `base` with `changes` applied (a later value replaces an earlier one).
fn with(
    base: Vec<(&'static str, &'static str)>,
    changes: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    let mut env: Vec<_> = base
        .into_iter()
        .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
        .collect();
    env.extend_from_slice(changes);
    env
}

fn check(dir: &Path, env: &[(&str, &str)]) -> Run {
    keel(dir, env, &["config", "check"])
}

fn check_json(dir: &Path, env: &[(&str, &str)]) -> (Run, Value) {
    let run = keel(dir, env, &["config", "check", "--json"]);
    let json = run.json();
    (run, json)
}

/// The variables named by the problems of a `--json` report, checking the report's shape.
fn problem_variables(report: &Value) -> BTreeSet<String> {
    let problems = report["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("problems must be an array: {report}"));
    problems
        .iter()
        .map(|p| {
            let variable = p["variable"].as_str();
            let message = p["message"].as_str();
            assert!(
                variable.is_some_and(|v| !v.is_empty()) && message.is_some_and(|m| !m.is_empty()),
                "each problem is {{variable, message}}: {p}"
            );
            variable.unwrap_or_default().to_string()
        })
        .collect()
}

/// The indented `VARIABLE: message` lines of a text problem list.
fn problem_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("  ") && l.contains(": "))
        .map(|l| l.trim().to_string())
        .collect()
}

fn assert_no_crash(run: &Run) {
    let all = run.output();
    assert!(!all.contains("panicked"), "{}", run.describe());
    assert!(
        !all.to_ascii_lowercase().contains("backtrace"),
        "{}",
        run.describe()
    );
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

const NOTHING_SET_VIOLATIONS: [&str; 4] = [
    "DATABASE_URL",
    "METRICS_TOKEN",
    "DATA_ENCRYPTION_KEYS",
    "AUTH_JWKS_URL",
];

#[test]
fn production_with_nothing_set_names_every_violation() {
    let dir = tempdir();
    let env = [("APP_ENV", "production")];

    let text = check(dir.path(), &env);
    text.assert_code(1);
    assert_no_crash(&text);
    let lines = problem_lines(&text.stdout);
    for variable in NOTHING_SET_VIOLATIONS {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("{variable}:"))),
            "{variable} must be named:\n{}",
            text.describe()
        );
    }
    assert!(
        text.stdout.contains("AUTH_HS256_SECRET"),
        "the verifier problem should say how to fix it:\n{}",
        text.describe()
    );

    let (run, report) = check_json(dir.path(), &env);
    run.assert_code(1);
    assert_eq!(report["ok"], false, "{report}");
    let variables = problem_variables(&report);
    for variable in NOTHING_SET_VIOLATIONS {
        assert!(variables.contains(variable), "{variable} missing: {report}");
    }
    assert_eq!(
        report["problems"].as_array().map(Vec::len),
        Some(lines.len()),
        "text and JSON list the same problems"
    );
}

#[test]
fn a_valid_production_environment_passes() {
    let dir = tempdir();
    let env = valid_production();
    let text = check(dir.path(), &env);
    text.assert_code(0);
    assert!(text.stdout.contains("production"), "{}", text.describe());

    let (run, report) = check_json(dir.path(), &env);
    run.assert_code(0);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    assert_eq!(report["app_env"], "production", "{report}");
}

#[test]
fn development_with_no_environment_passes() {
    let dir = tempdir();
    let text = check(dir.path(), &[]);
    text.assert_code(0);
    assert!(text.stdout.contains("ok"), "{}", text.describe());
    let (run, report) = check_json(dir.path(), &[]);
    run.assert_code(0);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["app_env"], "development", "{report}");
    assert_eq!(report["role"], "all", "{report}");
    // `config check` only reads: it creates no database.
    assert!(!dir.path().join("keel.db").exists());
}

/// Each unsafe production setting, added to an otherwise valid environment, is named.
#[test]
fn each_production_rule_is_named() {
    // (variable set, its value, variable the problem is reported under)
    let cases = [
        ("AUTH_DEV_MODE", "true", "AUTH_DEV_MODE"),
        ("CORS_ALLOWED_ORIGINS", "*", "CORS_ALLOWED_ORIGINS"),
        (
            "CORS_ALLOWED_ORIGINS",
            "https://a.example,*",
            "CORS_ALLOWED_ORIGINS",
        ),
        ("BILLING_PROVIDERS", "stripe", "STRIPE_WEBHOOK_SECRET"),
        (
            "BILLING_PROVIDERS",
            "revenuecat",
            "REVENUECAT_WEBHOOK_SECRET",
        ),
        ("METRICS_TOKEN", "short-metrics-token", "METRICS_TOKEN"),
        ("AUTH_HS256_SECRET", "short-hs256", "AUTH_HS256_SECRET"),
        ("ADMIN_TOKEN", "short-admin-token", "ADMIN_TOKEN"),
        ("SCHEDULER_SECRET_KEY", "short", "SCHEDULER_SECRET_KEY"),
        (
            "STRIPE_WEBHOOK_SECRET",
            "whsec_short",
            "STRIPE_WEBHOOK_SECRET",
        ),
        (
            "REVENUECAT_WEBHOOK_SECRET",
            "short",
            "REVENUECAT_WEBHOOK_SECRET",
        ),
        ("DATABASE_URL", "", "DATABASE_URL"),
        ("METRICS_TOKEN", "", "METRICS_TOKEN"),
        ("DATA_ENCRYPTION_KEYS", "", "DATA_ENCRYPTION_KEYS"),
        ("AUTH_HS256_SECRET", "", "AUTH_JWKS_URL"),
    ];
    let dir = tempdir();
    for (name, value, variable) in cases {
        let changes = [(name, value)];
        let env = with(valid_production(), &changes);
        let text = check(dir.path(), &env);
        assert_eq!(text.code, Some(1), "{changes:?}:\n{}", text.describe());
        assert!(
            problem_lines(&text.stdout)
                .iter()
                .any(|l| l.starts_with(&format!("{variable}:"))),
            "{changes:?} must be reported under {variable}:\n{}",
            text.describe()
        );
        let (_, report) = check_json(dir.path(), &env);
        let variables = problem_variables(&report);
        assert_eq!(
            variables,
            BTreeSet::from([variable.to_string()]),
            "{changes:?} must cause exactly the {variable} problem: {report}"
        );
    }
}

/// One violation, one line: a setting that breaks a rule is not reported twice.
#[test]
fn each_violation_is_listed_once() {
    let dir = tempdir();
    for changes in [
        &[("AUTH_DEV_MODE", "true")][..],
        &[("CORS_ALLOWED_ORIGINS", "*")],
        &[("METRICS_TOKEN", "short")],
        &[("BILLING_PROVIDERS", "stripe")],
    ] {
        let env = with(valid_production(), changes);
        let (run, report) = check_json(dir.path(), &env);
        run.assert_code(1);
        assert_eq!(
            report["problems"].as_array().map(Vec::len),
            Some(1),
            "{changes:?} is one violation and must be listed once: {report}"
        );
    }
}

#[test]
fn every_production_violation_is_listed_together() {
    let dir = tempdir();
    let env = [
        ("APP_ENV", "production"),
        ("AUTH_DEV_MODE", "true"),
        ("CORS_ALLOWED_ORIGINS", "*"),
        ("BILLING_PROVIDERS", "stripe"),
        ("METRICS_TOKEN", "short"),
    ];
    let (run, report) = check_json(dir.path(), &env);
    run.assert_code(1);
    let variables = problem_variables(&report);
    for variable in [
        "DATABASE_URL",
        "AUTH_JWKS_URL",
        "AUTH_DEV_MODE",
        "CORS_ALLOWED_ORIGINS",
        "STRIPE_WEBHOOK_SECRET",
        "METRICS_TOKEN",
        "DATA_ENCRYPTION_KEYS",
    ] {
        assert!(variables.contains(variable), "{variable} missing: {report}");
    }
}

#[test]
fn serve_refuses_production_with_the_same_problems() {
    let dir = tempdir();
    let env = [("APP_ENV", "production")];
    let checked = check(dir.path(), &env);
    let served = keel_within(dir.path(), &env, &["serve"], Duration::from_secs(30));
    served.assert_code(2);
    assert_no_crash(&served);
    assert_eq!(
        problem_lines(&served.output()),
        problem_lines(&checked.stdout),
        "serve and config check must report the same problems:\n{}\n{}",
        served.describe(),
        checked.describe()
    );
    for variable in NOTHING_SET_VIOLATIONS {
        assert!(served.stderr.contains(variable), "{}", served.describe());
    }
    // A refused start touches nothing.
    assert!(!dir.path().join("keel.db").exists());
    assert!(!dir.path().join("data").exists());
}

#[test]
fn secret_values_never_appear_in_the_output() {
    let dir = tempdir();
    let secrets = [
        ("ADMIN_TOKEN", "short-secret-value"),
        ("AUTH_HS256_SECRET", "hs256-too-short-value"),
        ("METRICS_TOKEN", "metrics-too-short-value"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_stripe-too-short"),
        ("REVENUECAT_WEBHOOK_SECRET", "revenuecat-too-short"),
        ("SCHEDULER_SECRET_KEY", "scheduler-too-short"),
        (
            "DATABASE_URL",
            "mysql://keel:db-password-value@db.internal/keel",
        ),
        (
            "DATA_ENCRYPTION_KEYS",
            "k1:bm90LTMyLWJ5dGVzLW9mLWtleS1tYXRlcmlhbA==",
        ),
        (
            "REDIS_URL",
            "redis://:redis-password-value@cache.internal:6379",
        ),
        (
            "SENTRY_DSN",
            "https://sentry-key-value@o1.ingest.sentry.io/1",
        ),
    ];
    let mut env: Vec<(&str, &str)> = vec![("APP_ENV", "production")];
    env.extend_from_slice(&secrets);

    let runs = [
        keel(dir.path(), &env, &["config", "check"]),
        keel(dir.path(), &env, &["config", "check", "--json"]),
        keel_within(dir.path(), &env, &["serve"], Duration::from_secs(30)),
        keel(dir.path(), &env, &["migrate", "status"]),
    ];
    for run in &runs {
        assert_ne!(run.code, Some(0), "{}", run.describe());
        let all = run.output();
        for (name, value) in secrets {
            assert!(
                !all.contains(value),
                "the value of {name} was printed:\n{}",
                run.describe()
            );
        }
        for fragment in [
            "db-password-value",
            "redis-password-value",
            "sentry-key-value",
        ] {
            assert!(!all.contains(fragment), "{}", run.describe());
        }
    }
    // The short secrets are still named (SPEC §3.1: any secret shorter than 32 characters).
    for name in [
        "ADMIN_TOKEN",
        "AUTH_HS256_SECRET",
        "METRICS_TOKEN",
        "STRIPE_WEBHOOK_SECRET",
        "REVENUECAT_WEBHOOK_SECRET",
        "SCHEDULER_SECRET_KEY",
        "DATABASE_URL",
        "DATA_ENCRYPTION_KEYS",
    ] {
        assert!(
            runs[0].stdout.contains(name),
            "{name}:\n{}",
            runs[0].describe()
        );
    }
}

#[test]
fn bad_values_are_named() {
    let cases = [
        ("PORT", "abc"),
        ("PROCESS_ROLE", "boss"),
        ("LOG_LEVEL", "[[["),
        ("APP_ENV", "prod"),
        ("HOST", "not-an-address"),
        ("LOG_FORMAT", "xml"),
        ("RATE_LIMIT_BACKEND", "memcached"),
        ("WORKER_CONCURRENCY", "0"),
        ("MIGRATE_ON_START", "maybe"),
        ("DATABASE_URL", "mysql://localhost/keel"),
        ("BILLING_PROVIDERS", "paypal"),
        ("DATA_ENCRYPTION_KEYS", "k1:c2hvcnQ="),
        ("AUTH_JWKS_URL", "ftp://issuer.example.com/jwks"),
        ("SENTRY_DSN", "not-a-dsn"),
    ];
    let dir = tempdir();
    for (variable, value) in cases {
        let env = [(variable, value)];
        let text = check(dir.path(), &env);
        assert_eq!(
            text.code,
            Some(1),
            "{variable}={value}:\n{}",
            text.describe()
        );
        assert_no_crash(&text);
        assert!(
            problem_lines(&text.stdout)
                .iter()
                .any(|l| l.starts_with(&format!("{variable}:"))),
            "{variable}={value} must be named:\n{}",
            text.describe()
        );
        let (_, report) = check_json(dir.path(), &env);
        assert_eq!(report["ok"], false, "{report}");
        assert!(
            problem_variables(&report).contains(variable),
            "{variable}={value}: {report}"
        );
    }

    // Several at once: every one is listed.
    let env = [
        ("PORT", "abc"),
        ("PROCESS_ROLE", "boss"),
        ("LOG_LEVEL", "[[["),
    ];
    let (run, report) = check_json(dir.path(), &env);
    run.assert_code(1);
    assert_eq!(
        problem_variables(&report),
        BTreeSet::from(["PORT".into(), "PROCESS_ROLE".into(), "LOG_LEVEL".into()]),
        "{report}"
    );
    // serve refuses them as bad configuration.
    let served = keel_within(dir.path(), &env, &["serve"], Duration::from_secs(30));
    served.assert_code(2);
    assert_no_crash(&served);
    assert!(served.stderr.contains("PORT"), "{}", served.describe());
}

#[test]
fn unknown_key_in_keel_toml_is_named_with_its_line() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("keel.toml"),
        "[products]\npremium_monthly = [\"premium\"]\n\n[queus.default]\nconcurrency = 4\n",
    )
    .expect("write keel.toml");
    let text = check(dir.path(), &[]);
    text.assert_code(1);
    assert!(text.stdout.contains("queus"), "{}", text.describe());
    assert!(text.stdout.contains("line 4"), "{}", text.describe());
    assert!(text.stdout.contains("keel.toml"), "{}", text.describe());

    let (_, report) = check_json(dir.path(), &[]);
    assert_eq!(report["ok"], false, "{report}");
    let problems = report["problems"].as_array().cloned().unwrap_or_default();
    assert!(
        problems.iter().any(|p| p["message"]
            .as_str()
            .is_some_and(|m| m.contains("queus") && m.contains("line 4"))),
        "{report}"
    );

    let served = keel_within(dir.path(), &[], &["serve"], Duration::from_secs(30));
    served.assert_code(2);
    assert!(served.stderr.contains("queus"), "{}", served.describe());
}

#[test]
fn other_keel_toml_cases() {
    let cases = [
        (
            "[queues.default]\nconcurency = 4\n",
            Some(&["concurency", "line 2"][..]),
        ),
        (
            "[products]\npremium = [\"premium\"]\n[queues.default]\nconcurrency = 4\n",
            None,
        ),
    ];
    for (contents, named) in cases {
        let dir = tempdir();
        std::fs::write(dir.path().join("keel.toml"), contents).expect("write keel.toml");
        let text = check(dir.path(), &[]);
        text.assert_code(if named.is_some() { 1 } else { 0 });
        for part in named.unwrap_or(&["keel.toml"]) {
            assert!(text.stdout.contains(part), "{}", text.describe());
        }
    }
    let dir = tempdir();
    let text = check(dir.path(), &[("KEEL_CONFIG", "nowhere.toml")]);
    text.assert_code(1);
    assert!(text.stdout.contains("KEEL_CONFIG"), "{}", text.describe());
}

#[test]
fn a_schedule_of_an_undeclared_kind_is_refused() {
    let dir = tempdir();
    let schedule = |kind: &str| {
        format!("[[schedules]]\nname = \"s-{kind}\"\ncron = \"0 * * * *\"\nkind = \"{kind}\"\n")
    };
    let toml = format!(
        "[jobs.http.\"app.declared\"]\nurl = \"http://127.0.0.1:9/run\"\n{}{}{}",
        schedule("app.declared"),
        schedule("diag.noop"),
        schedule("app.nobody")
    );
    std::fs::write(dir.path().join("keel.toml"), toml).expect("write keel.toml");
    let env = [(
        "APP_WEBHOOK_SECRET",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )];
    let text = check(dir.path(), &env);
    text.assert_code(1);
    let lines = problem_lines(&text.stdout);
    assert_eq!(lines.len(), 1, "{}", text.describe());
    assert!(
        lines[0].contains("schedule s-app.nobody: kind app.nobody is not declared"),
        "{}",
        text.describe()
    );
    let (_, report) = check_json(dir.path(), &env);
    assert_eq!(report["problems"][0]["variable"], "KEEL_CONFIG", "{report}");
}

#[test]
fn bad_usage_exits_2() {
    let dir = tempdir();
    for args in [
        &["frobnicate"][..],
        &["config", "frobnicate"],
        &["config"],
        &["migrate", "sideways"],
        &["migrate", "down"],
        &["migrate", "down", "--to", "one"],
        &["serve", "--role", "boss"],
        &["smoke"],
        &[],
    ] {
        let run = keel(dir.path(), &[], args);
        assert_eq!(run.code, Some(2), "keel {args:?}:\n{}", run.describe());
        assert_no_crash(&run);
    }
}

/// `config check` validates exactly as `serve` would: a database URL that `serve` cannot use is
/// a problem that `config check` names, and `serve` refuses it as bad configuration (exit 2).
#[test]
fn an_unusable_database_url_is_caught_by_config_check() {
    let dir = tempdir();
    for url in [
        "postgres://keel:url-password-value@localhost:notaport/keel",
        "postgres://keel:url-password-value@localhost:5432/keel?sslmode=bogus",
        "sqlite://keel.db?mode=bogus",
    ] {
        let env = [("DATABASE_URL", url)];
        let (run, report) = check_json(dir.path(), &env);
        assert_eq!(
            run.code,
            Some(1),
            "config check accepted DATABASE_URL={url}:\n{}",
            run.describe()
        );
        assert!(
            problem_variables(&report).contains("DATABASE_URL"),
            "{report}"
        );

        let served = keel_within(dir.path(), &env, &["serve"], Duration::from_secs(30));
        assert_eq!(
            served.code,
            Some(2),
            "serve with DATABASE_URL={url} is bad configuration:\n{}",
            served.describe()
        );
        for run in [&run, &served] {
            assert!(
                !run.output().contains("url-password-value"),
                "{}",
                run.describe()
            );
        }
    }
}
