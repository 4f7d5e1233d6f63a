//! `.env` in the working directory (SPEC §3): read when present, under the process environment,
//! and never echoed back, not even when it cannot be parsed.

use crate::common;

use std::time::Duration;

use common::{keel, keel_within, Run};
use serde_json::Value;

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

fn check_json(dir: &std::path::Path, env: &[(&str, &str)]) -> (Run, Value) {
    let run = keel(dir, env, &["config", "check", "--json"]);
    let json = run.json();
    (run, json)
}

fn problem_variables(report: &Value) -> Vec<String> {
    report["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("problems must be an array: {report}"))
        .iter()
        .filter_map(|p| p["variable"].as_str().map(str::to_string))
        .collect()
}

fn assert_no_crash(run: &Run) {
    let all = run.output().to_ascii_lowercase();
    assert!(!all.contains("panicked"), "{}", run.describe());
    assert!(!all.contains("backtrace"), "{}", run.describe());
}

#[test]
fn dot_env_is_read_and_the_environment_wins() {
    let dir = tempdir();
    std::fs::write(dir.path().join(".env"), "APP_ENV=production\n").expect("write .env");
    let (run, report) = check_json(dir.path(), &[]);
    run.assert_code(1);
    assert_eq!(report["app_env"], "production", "{report}");
    assert!(
        problem_variables(&report)
            .iter()
            .any(|v| v == "DATABASE_URL"),
        "{report}"
    );

    let (run, report) = check_json(dir.path(), &[("APP_ENV", "development")]);
    run.assert_code(0);
    assert_eq!(report["app_env"], "development", "{report}");
}

/// A `.env` line that cannot be parsed is reported by position, never by its content: the
/// content is usually a secret.
#[test]
fn a_malformed_dot_env_is_reported_without_its_values() {
    let cases = [
        (
            "APP_ENV=development\nADMIN_TOKEN=\"dotenv-secret-value-one\nLOG_LEVEL=info\n",
            "dotenv-secret-value-one",
        ),
        (
            "STRIPE_WEBHOOK_SECRET=whsec_dotenv'secret-two\n",
            "secret-two",
        ),
        ("METRICS_TOKEN=dotenv secret value three\n", "value three"),
    ];
    for (contents, secret) in cases {
        let dir = tempdir();
        std::fs::write(dir.path().join(".env"), contents).expect("write .env");
        for args in [
            &["config", "check"][..],
            &["config", "check", "--json"],
            &["serve"],
        ] {
            let run = keel_within(dir.path(), &[], args, Duration::from_secs(30));
            assert!(
                matches!(run.code, Some(1 | 2)),
                "keel {args:?} with a malformed .env must refuse:\n{}",
                run.describe()
            );
            assert_no_crash(&run);
            assert!(
                run.output().contains(".env"),
                "the problem must name .env:\n{}",
                run.describe()
            );
            assert!(
                !run.output().contains(secret),
                "keel {args:?} printed a value from .env:\n{}",
                run.describe()
            );
        }
    }
}
