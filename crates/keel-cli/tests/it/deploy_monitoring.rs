//! The monitoring files in `deploy/`: the Prometheus alert rules pass `promtool check rules` and
//! their unit tests (`promtool test rules`), point at runbooks that exist, and, like the Grafana
//! dashboard's queries, name only metric families that docs/HTTP.md documents (which a test of
//! the `keel` crate holds equal to what `/metrics` exposes).

use crate::deploy_support::root;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

/// promtool: `KEEL_TEST_PROMTOOL`, else PATH. `None` (and a note) when there is none and
/// `KEEL_TEST_REQUIRE_PROMTOOL` is not `1` (.ci/run sets it, and extracts promtool from Debian's
/// `prometheus` package when missing).
fn promtool() -> Option<PathBuf> {
    let from_env = std::env::var_os("KEEL_TEST_PROMTOOL").map(PathBuf::from);
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    });
    match from_env.filter(|p| p.is_file()).or(on_path) {
        Some(path) => Some(path),
        None if std::env::var("KEEL_TEST_REQUIRE_PROMTOOL").as_deref() == Ok("1") => {
            panic!("KEEL_TEST_REQUIRE_PROMTOOL=1 but promtool was not found (KEEL_TEST_PROMTOOL or PATH)")
        }
        None => {
            eprintln!("skipped: promtool is not installed (Debian's prometheus package has it; or set KEEL_TEST_PROMTOOL)");
            None
        }
    }
}

fn run(tool: &PathBuf, args: &[&str]) {
    let output = Command::new(tool)
        .args(args)
        .current_dir(root().join("deploy/prometheus"))
        .output()
        .expect("run promtool");
    assert!(
        output.status.success(),
        "promtool {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let Some(tool) = promtool() else {
        return;
    };
    run(&tool, &["check", "rules", "alerts.yml"]);
    run(&tool, &["test", "rules", "alerts_test.yml"]);
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The metric names in `text`: `keel_…` and `process_…` words.
fn metric_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| {
            (w.starts_with("keel_") || w.starts_with("process_"))
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_string)
        .collect()
}

/// The families docs/HTTP.md documents under "## Metrics" (the `/metrics` table and the one of
/// `keel backup --metrics-file`).
fn documented() -> BTreeSet<String> {
    let http = read("docs/HTTP.md");
    let section = http.split_once("## Metrics").expect("## Metrics").1;
    let section = section.split("\n## ").next().unwrap_or(section);
    let names = section
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(metric_names)
        .collect();
    names
}

/// Names in queries that are not documented families (a histogram's `_bucket`, `_sum` and
/// `_count` series count as their family).
fn undocumented(names: &BTreeSet<String>, documented: &BTreeSet<String>) -> Vec<String> {
    names
        .iter()
        .filter(|name| {
            !documented.contains(*name)
                && !["_bucket", "_sum", "_count"].iter().any(|suffix| {
                    name.strip_suffix(suffix)
                        .is_some_and(|family| documented.contains(family))
                })
        })
        .cloned()
        .collect()
}

/// GitHub's anchor of a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn alert_rules_name_documented_metrics_and_existing_runbooks() {
    let rules = read("deploy/prometheus/alerts.yml");
    let code: String = rules
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let names = metric_names(&code);
    for expected in [
        "keel_queue_oldest_waiting_seconds",
        "keel_webhooks_total",
        "keel_auth_failures_total",
        "keel_schedule_last_fired_timestamp_seconds",
        "keel_backup_last_success_timestamp_seconds",
    ] {
        assert!(names.contains(expected), "no rule uses {expected}");
    }
    let missing = undocumented(&names, &documented());
    assert!(
        missing.is_empty(),
        "alerts.yml names undocumented metrics: {missing:?}"
    );

    let mut runbooks = 0;
    for line in rules.lines() {
        let Some(link) = line.trim().strip_prefix("runbook: ") else {
            continue;
        };
        runbooks += 1;
        let (file, fragment) = link.split_once('#').unwrap_or((link, ""));
        let text = read(file);
        if !fragment.is_empty() {
            let anchors: Vec<String> = text
                .lines()
                .filter_map(|l| l.strip_prefix("## ").or_else(|| l.strip_prefix("### ")))
                .map(anchor)
                .collect();
            assert!(
                anchors.iter().any(|a| a == fragment),
                "{link}: no such heading in {file}"
            );
        }
    }
    let alerts = rules.matches("- alert: ").count();
    assert!(
        alerts >= 6 && runbooks == alerts,
        "{alerts} alerts, {runbooks} runbooks"
    );
}

#[test]
fn the_grafana_dashboard_queries_only_documented_metrics_of_the_api_and_the_worker() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/keel.json")).expect("keel.json is JSON");
    let mut queries = Vec::new();
    collect_queries(&dashboard, &mut queries);
    assert!(queries.len() >= 20, "{} queries", queries.len());
    let names: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(q)).collect();
    let missing = undocumented(&names, &documented());
    assert!(
        missing.is_empty(),
        "keel.json names undocumented metrics: {missing:?}"
    );
    for series in [
        "keel_http_requests_total",
        "keel_http_request_duration_seconds_bucket",
        "keel_auth_failures_total",
        "keel_webhooks_total",
        "keel_jobs_completed_total",
        "keel_jobs_failed_total",
        "keel_jobs",
        "keel_queue_oldest_waiting_seconds",
        "keel_job_duration_seconds_bucket",
        "keel_backup_last_success_timestamp_seconds",
    ] {
        assert!(names.contains(series), "the dashboard shows no {series}");
    }
    let titles: BTreeSet<&str> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    assert!(
        titles.contains("API") && titles.contains("Worker"),
        "{titles:?}"
    );
}

/// Every `expr` of a panel target and every query of a template variable.
fn collect_queries(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "definition", serde_json::Value::String(q)) => out.push(q.clone()),
                    _ => collect_queries(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_queries(v, out)),
        _ => {}
    }
}

#[test]
fn undocumented_names_are_found() {
    let documented: BTreeSet<String> = ["keel_a_total", "keel_h_seconds"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let names = metric_names("rate(keel_a_total[5m]) + keel_h_seconds_bucket - keel_b_total");
    assert_eq!(undocumented(&names, &documented), ["keel_b_total"]);
    assert_eq!(anchor("5. Restore drill"), "5-restore-drill");
}
