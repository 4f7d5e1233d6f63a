//! docs/HTTP.md's table of `/metrics` families and `/metrics` itself agree: every family an
//! api+worker process exposes is documented with exactly its labels, and every documented family
//! is exposed. The Grafana dashboard and the alert rules of `deploy/` name only these families.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use keel_testkit::{TestApp, TestDb};

const TOKEN: &str = "metrics-token-metrics-token-metrics";
const ADMIN: &str = "admin-token-admin-token-admin-token";

/// Family → label names.
type Labels = BTreeMap<String, BTreeSet<String>>;
/// Family → whether it had samples, and the label names they carry.
type Exposed = BTreeMap<String, (bool, BTreeSet<String>)>;

pub(crate) fn repo_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The backticked names of a Markdown table cell, leaving out what stands in parentheses (notes
/// and label values).
fn names_in(cell: &str) -> Vec<String> {
    let mut outside = String::new();
    let mut depth = 0usize;
    for c in cell.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => outside.push(c),
            _ => {}
        }
    }
    outside
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The first table under `heading` in `markdown`: family → documented label names.
pub(crate) fn documented(markdown: &str, heading: &str) -> Labels {
    let section = markdown
        .split_once(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"))
        .1;
    let mut out = Labels::new();
    let rows = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2);
    for row in rows {
        let cells: Vec<&str> = row.trim_matches('|').split('|').collect();
        let [families, labels] = cells.as_slice() else {
            panic!("a metrics row has two cells: {row}")
        };
        let labels: BTreeSet<String> = names_in(labels).into_iter().collect();
        for family in names_in(families) {
            assert!(
                out.insert(family.clone(), labels.clone()).is_none(),
                "{family} is documented twice"
            );
        }
    }
    out
}

/// Family → label names seen in an exposition (families from `# TYPE`; histogram samples'
/// `_bucket`, `_sum` and `_count` belong to their family, whose `le` is not a label of its own).
pub(crate) fn exposed(text: &str) -> Exposed {
    let mut out = Exposed::new();
    let mut kinds = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE line");
            kinds.insert(name.to_string(), kind.to_string());
            out.entry(name.to_string()).or_default();
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let series = line.split_once(' ').map_or(line, |(s, _)| s);
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let family = if kinds.contains_key(name) {
            name
        } else {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|f| kinds.get(*f).map(String::as_str) == Some("histogram"))
                .unwrap_or_else(|| panic!("{name} has no TYPE line"))
        };
        let names = labels
            .split("\",")
            .filter_map(|pair| pair.split_once("=\"").map(|(k, _)| k.trim().to_string()))
            .filter(|k| k != "le");
        let entry = out.entry(family.to_string()).or_default();
        entry.0 = true;
        entry.1.extend(names);
    }
    out
}

async fn scrape(app: &TestApp) -> String {
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exposed_family_is_documented_with_its_labels_and_every_documented_one_is_exposed() {
    let app = TestApp::builder(TestDb::sqlite())
        .env("METRICS_TOKEN", TOKEN)
        .env("ADMIN_TOKEN", ADMIN)
        .env(
            "REVENUECAT_WEBHOOK_SECRET",
            "revenuecat-secret-for-the-docs-test",
        )
        .spawn()
        .await;
    // Something in every family: a refused webhook and token, a job run, schedules fired.
    let forged = app
        .client
        .post(app.url("/webhooks/revenuecat"))
        .header("authorization", "Bearer forged")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(app.get("/v1/me").await.status(), 401);
    // An object stored and read back (the default filesystem backend).
    let storage = &app.services().storage;
    storage
        .put("docs/metrics.txt", b"metrics".to_vec(), "text/plain")
        .await
        .unwrap();
    assert_eq!(
        &storage.get("docs/metrics.txt").await.unwrap()[..],
        b"metrics"
    );
    let enqueued = app
        .client
        .post(app.url("/admin/api/jobs"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"kind": "diag.noop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(enqueued.status(), 201);
    let started = Instant::now();
    let exposed = loop {
        let exposed = exposed(&scrape(&app).await);
        let complete = [
            "keel_jobs_completed_total",
            "keel_jobs",
            "keel_schedule_last_fired_timestamp_seconds",
        ]
        .iter()
        .all(|f| exposed.get(*f).is_some_and(|(seen, _)| *seen));
        if complete || started.elapsed() > Duration::from_secs(20) {
            break exposed;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let documented = documented(&repo_file("docs/HTTP.md"), "## Metrics");

    let mut wrong = Vec::new();
    for (family, (seen, labels)) in &exposed {
        match documented.get(family) {
            None => wrong.push(format!("{family} is exposed but not documented")),
            Some(docs) if *seen && docs != labels => wrong.push(format!(
                "{family}: exposed with labels {labels:?}, documented with {docs:?}"
            )),
            Some(_) => {}
        }
    }
    for family in documented.keys() {
        if !exposed.contains_key(family) {
            wrong.push(format!(
                "{family} is documented but /metrics does not expose it"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/HTTP.md and /metrics disagree:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_parsers_read_tables_and_expositions() {
    let table = "## Metrics\n\ntext\n\n| family | labels |\n|---|---|\n| `a_total`, `b` (histogram) | `x`, `y` (`v1`, `v2`) |\n| `c` | |\n\nafter\n";
    let docs = documented(table, "## Metrics");
    assert_eq!(docs.len(), 3);
    assert_eq!(
        docs["b"],
        BTreeSet::from(["x".to_string(), "y".to_string()])
    );
    assert!(docs["c"].is_empty());
    let text = "# TYPE b histogram\nb_bucket{x=\"1\",le=\"0.1\"} 1\nb_sum{x=\"1\"} 1\nb_count{x=\"1\"} 1\n# TYPE c gauge\nc 1\n# TYPE d_total counter\nd_total{route=\"/a/{id}\",s=\"5\"} 2\n# TYPE e gauge\n";
    let seen = exposed(text);
    assert_eq!(seen["b"], (true, BTreeSet::from(["x".to_string()])));
    assert_eq!(seen["c"], (true, BTreeSet::new()));
    assert_eq!(
        seen["d_total"].1,
        BTreeSet::from(["route".to_string(), "s".to_string()])
    );
    assert!(!seen["e"].0);
}
