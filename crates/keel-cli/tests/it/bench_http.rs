//! `keel bench http` serves an in-process instance and measures every scenario.

use crate::common;

#[test]
fn bench_http_measures_every_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let run = common::keel(
        dir.path(),
        &[],
        &[
            "--json",
            "bench",
            "http",
            "--connections",
            "2",
            "--seconds",
            "0.3",
            "--rounds",
            "1",
        ],
    );
    run.assert_code(0);
    let result = run.json();
    let scenarios = result["scenarios"].as_array().expect("scenarios");
    assert_eq!(scenarios.len(), 3, "bare route, trivial route, GET /v1/me");
    for s in scenarios {
        assert!(s["requests_per_s"].as_f64().unwrap() > 0.0, "{s}");
        assert_eq!(s["errors"], 0, "{s}");
    }
    assert!(result["me_over_trivial"].as_f64().unwrap() > 0.0);
    assert!(result["edge_over_bare"].as_f64().unwrap() > 0.0);
    let bad = common::keel(dir.path(), &[], &["bench", "http", "--connections", "0"]);
    bad.assert_code(2);
}
