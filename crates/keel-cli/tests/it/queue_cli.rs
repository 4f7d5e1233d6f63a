//! The operator commands of `keel` as processes, on both engines (SPEC §1, §5–7, docs/JOBS.md):
//! `queue enqueue | stats | list | pause | resume | drain | discard | failed | retry`,
//! `flags`, `schedules`, `report`, `bench queue`, their `--json` shapes, exit codes and audit rows.

use crate::queue_cli_support::{assert_stat, ids, keys, sorted, Cli, JOB_KEYS};

use keel_testkit::TestDb;
use serde_json::Value;

/// One test per engine from one body, with `$cli` a freshly migrated [`Cli`].
macro_rules! on_both_engines {
    ($(async fn $name:ident($cli:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let $cli = Cli::migrated(TestDb::sqlite());
                    $body
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(db) = TestDb::postgres().await else { return };
                    let $cli = Cli::migrated(db);
                    $body
                }
            }
        )*
    };
}

on_both_engines! {
    async fn enqueue_prints_ids(cli) {
        let run = cli.ok(&["queue", "enqueue", "diag.noop"]);
        let lines: Vec<&str> = run.stdout.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line, the id:\n{}", run.describe());
        let id: i64 = lines[0].trim().parse().unwrap_or_else(|_| panic!("an id:\n{}", run.describe()));
        assert_eq!(cli.count(&format!("SELECT count(*) FROM jobs WHERE id = {id} AND kind = 'diag.noop' AND state = 'available' AND queue = 'default'")).await, 1);

        let out = cli.json(&["queue", "enqueue", "diag.noop"]);
        assert_eq!(keys(&out), sorted(&["ids", "deduplicated"]), "{out}");
        assert_eq!(out["deduplicated"], 0, "{out}");
        let second = ids(&out["ids"]);
        assert_eq!(second.len(), 1, "{out}");
        assert!(second[0] > id, "{out}");

        let run = cli.ok(&["queue", "enqueue", "diag.noop", "--count", "2500"]);
        assert!(run.stdout.contains("2500"), "{}", run.describe());
        assert_eq!(cli.count("SELECT count(*) FROM jobs").await, 2502);
        let out = cli.json(&["queue", "enqueue", "diag.sleep", "--args", r#"{"ms":1}"#, "--count", "3", "--queue", "slow"]);
        let batch = ids(&out["ids"]);
        assert_eq!(batch.len(), 3, "{out}");
        assert!(batch.windows(2).all(|w| w[0] < w[1]), "distinct, ascending: {out}");
        assert_eq!(cli.count("SELECT count(*) FROM jobs WHERE queue = 'slow' AND kind = 'diag.sleep'").await, 3);
    }

    async fn enqueue_unique_key_returns_the_live_job(cli) {
        let first = cli.ok(&["queue", "enqueue", "diag.noop", "--unique-key", "k"]);
        let id: i64 = first.stdout.trim().parse().unwrap_or_else(|_| panic!("{}", first.describe()));
        let second = cli.ok(&["queue", "enqueue", "diag.noop", "--unique-key", "k"]);
        assert!(second.stdout.trim().starts_with(&id.to_string()), "same id:\n{}", second.describe());
        assert!(second.stdout.contains("existing"), "must say it is the existing job:\n{}", second.describe());
        let out = cli.json(&["queue", "enqueue", "diag.noop", "--unique-key", "k"]);
        assert_eq!(ids(&out["ids"]), vec![id], "{out}");
        assert_eq!(out["deduplicated"], 1, "{out}");
        assert_eq!(cli.count("SELECT count(*) FROM jobs WHERE unique_key = 'k'").await, 1);

        // N alike with one key: one job, the rest deduplicated against it.
        let out = cli.json(&["queue", "enqueue", "diag.noop", "--unique-key", "k2", "--count", "3"]);
        let batch = ids(&out["ids"]);
        assert_eq!(batch.len(), 3, "{out}");
        assert!(batch.iter().all(|i| *i == batch[0]), "{out}");
        assert_eq!(out["deduplicated"], 2, "{out}");
        assert_eq!(cli.count("SELECT count(*) FROM jobs WHERE unique_key = 'k2'").await, 1);

        // A discarded job holds its key no longer; retrying it must not make a second live one.
        cli.ok(&["queue", "discard", "--id", &id.to_string()]);
        let fresh = cli.enqueue_one("diag.noop", &["--unique-key", "k"]);
        assert_ne!(fresh, id, "a new job once the first is discarded");
        assert_eq!(cli.json(&["queue", "retry", "--id", &id.to_string()]), serde_json::json!({"retried": []}));
        assert_eq!(cli.count("SELECT count(*) FROM jobs WHERE unique_key = 'k' AND state = 'available'").await, 1);
    }

    async fn enqueue_rejects_bad_input_with_exit_2(cli) {
        let run = cli.usage(&["queue", "enqueue", "diag.noop", "--args", "not json"], "--args");
        assert!(run.stderr.contains("JSON"), "{}", run.describe());
        cli.usage(&["queue", "enqueue", "diag.noop", "--run-at", "nonsense"], "--run-at");
        cli.usage(&["queue", "enqueue", "bad kind"], "kind");
        cli.usage(&["queue", "enqueue", "app.never_declared"], "kind app.never_declared is not declared");
        cli.usage(&["queue", "enqueue", "diag.noop", "--max-attempts", "0"], "max_attempts");
        cli.usage(&["queue", "enqueue", "diag.noop", "--queue", "bad queue"], "queue");
        cli.usage(&["queue", "enqueue", "diag.noop", "--count", "0"], "--count");
        assert_eq!(cli.count("SELECT count(*) FROM jobs").await, 0, "no job from a bad command");
        assert_eq!(cli.audit().await, 0, "no audit row from a bad command");
    }

    async fn enqueue_run_at_in_the_future_is_scheduled(cli) {
        let id = cli.enqueue_one("diag.noop", &["--run-at", "2099-01-01T00:00:00Z", "--max-attempts", "3"]);
        let job = cli.state(id);
        assert_eq!(job["state"], "scheduled", "{job}");
        assert_eq!(job["max_attempts"], 3, "{job}");
        let run_at = job["run_at"].as_str().unwrap_or_else(|| panic!("{job}"));
        let at = chrono::DateTime::parse_from_rfc3339(run_at).unwrap_or_else(|e| panic!("{e}: {job}"));
        assert_eq!(at.timestamp(), 4_070_908_800, "{job}");
        assert_stat(&cli.stats(), "default", [1, 0, 0, 0, 0, 0, 0], false);
        // A time in the past is due now.
        let past = cli.enqueue_one("diag.noop", &["--run-at", "2001-01-01T00:00:00+02:00"]);
        assert_eq!(cli.state(past)["state"], "available");
    }

    async fn stats_counts_per_queue(cli) {
        let stats = cli.stats();
        assert_stat(&stats, "default", [0; 7], false);
        cli.enqueue("diag.noop", &["--queue", "alpha", "--count", "3"]);
        cli.enqueue("diag.noop", &["--queue", "beta", "--count", "2"]);
        cli.enqueue("diag.noop", &["--queue", "beta", "--run-at", "2099-01-01T00:00:00Z"]);
        let doomed = cli.enqueue_one("diag.noop", &["--queue", "alpha"]);
        cli.ok(&["queue", "discard", "--id", &doomed.to_string()]);
        cli.db.execute(&format!("UPDATE jobs SET state = 'completed', finished_at = {} WHERE id = (SELECT min(id) FROM jobs WHERE queue = 'beta')", cli.now_sql())).await;

        let stats = cli.stats();
        assert_eq!(stats.keys().collect::<Vec<_>>(), ["alpha", "beta", "default"], "{stats:?}");
        assert_stat(&stats, "alpha", [0, 3, 0, 0, 0, 1, 0], false);
        assert_stat(&stats, "beta", [1, 1, 0, 0, 1, 0, 0], false);
        assert_stat(&stats, "default", [0; 7], false);

        let text = cli.ok(&["queue", "stats"]);
        for name in ["alpha", "beta", "default", "paused"] {
            assert!(text.stdout.contains(name), "{name}:\n{}", text.describe());
        }
    }

    async fn list_shape_order_and_filters(cli) {
        let a1 = cli.enqueue_one("diag.noop", &["--queue", "q1"]);
        let a2 = cli.enqueue_one("diag.noop", &["--queue", "q1", "--unique-key", "u1"]);
        let b = cli.enqueue_one("diag.sleep", &["--queue", "q1"]);
        let c = cli.enqueue_one("diag.noop", &["--queue", "q2"]);
        let s = cli.enqueue_one("diag.noop", &["--queue", "q1", "--run-at", "2099-01-01T00:00:00Z"]);

        let all = cli.list(&[]);
        let listed: Vec<i64> = all.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(listed, vec![s, c, b, a2, a1], "newest first");
        for row in &all {
            assert_eq!(keys(row), sorted(&JOB_KEYS), "{row}");
            assert_eq!(row["attempt"], 0, "{row}");
            assert_eq!(row["max_attempts"], 20, "{row}");
            assert!(row["finished_at"].is_null() && row["last_error"].is_null(), "{row}");
            for t in ["run_at", "created_at"] {
                let text = row[t].as_str().unwrap_or_else(|| panic!("{t}: {row}"));
                assert!(chrono::DateTime::parse_from_rfc3339(text).is_ok(), "{t}: {row}");
            }
        }
        let first = &all[4];
        assert_eq!((first["queue"].as_str(), first["kind"].as_str(), first["state"].as_str()), (Some("q1"), Some("diag.noop"), Some("available")));
        assert!(first["unique_key"].is_null(), "{first}");
        assert_eq!(all[3]["unique_key"], "u1");

        let pick = |args: &[&str]| -> Vec<i64> { cli.list(args).iter().map(|r| r["id"].as_i64().unwrap()).collect() };
        assert_eq!(pick(&["--state", "available", "--kind", "diag.noop", "--queue", "q1"]), vec![a2, a1]);
        assert_eq!(pick(&["--state", "available", "--kind", "diag.noop", "--queue", "q1", "--limit", "1"]), vec![a2]);
        assert_eq!(pick(&["--state", "scheduled"]), vec![s]);
        assert_eq!(pick(&["--kind", "diag.sleep"]), vec![b]);
        assert_eq!(pick(&["--queue", "q2"]), vec![c]);
        assert_eq!(pick(&["--limit", "2"]), vec![s, c]);
        assert_eq!(pick(&["--state", "completed"]), Vec::<i64>::new());
        let bogus = cli.usage(&["queue", "list", "--state", "bogus"], "--state");
        assert!(bogus.stderr.contains("available"), "lists the states:\n{}", bogus.describe());

        let text = cli.ok(&["queue", "list", "--queue", "q2"]);
        assert!(text.stdout.contains(&c.to_string()) && text.stdout.contains("diag.noop"), "{}", text.describe());
    }

    async fn pause_resume_and_drain(cli) {
        cli.enqueue("diag.noop", &["--queue", "mail", "--count", "3"]);
        cli.enqueue("diag.noop", &["--queue", "mail", "--run-at", "2099-01-01T00:00:00Z"]);
        cli.enqueue("diag.noop", &["--queue", "other", "--count", "2"]);

        let out = cli.json(&["queue", "pause", "mail"]);
        assert_eq!(out, serde_json::json!({"queue": "mail", "paused": true}));
        let stats = cli.stats();
        assert_stat(&stats, "mail", [1, 3, 0, 0, 0, 0, 0], true);
        assert_stat(&stats, "other", [0, 2, 0, 0, 0, 0, 0], false);
        let flags = cli.json(&["flags", "list"]);
        assert!(flags["flags"].as_array().unwrap().iter().any(|f| f["name"] == "queue:mail" && f["enabled"] == false), "{flags}");

        cli.ok(&["queue", "resume", "mail"]);
        assert_stat(&cli.stats(), "mail", [1, 3, 0, 0, 0, 0, 0], false);
        cli.usage(&["queue", "pause", "bad queue"], "flag");

        // A running job is not waiting: drain leaves it (and every other queue) alone.
        cli.db.execute("UPDATE jobs SET state = 'running' WHERE id = (SELECT min(id) FROM jobs WHERE queue = 'mail')").await;
        let out = cli.json(&["queue", "drain", "mail"]);
        assert_eq!(out, serde_json::json!({"queue": "mail", "cancelled": 3}));
        let stats = cli.stats();
        assert_stat(&stats, "mail", [0, 0, 1, 0, 0, 0, 3], false);
        assert_stat(&stats, "other", [0, 2, 0, 0, 0, 0, 0], false);
        assert_eq!(cli.count("SELECT count(*) FROM jobs WHERE state = 'cancelled' AND finished_at IS NOT NULL").await, 3);
        let again = cli.ok(&["queue", "drain", "mail"]);
        assert!(again.stdout.contains("cancelled 0"), "{}", again.describe());
    }

    async fn a_paused_queue_without_jobs_shows_in_stats(cli) {
        // `queue pause` before any job lands (or after a drain and prune) must still show.
        cli.ok(&["queue", "pause", "emails"]);
        let stats = cli.stats();
        assert!(stats.contains_key("emails"), "paused queue emails is missing from queue stats: {stats:?}");
        assert_stat(&stats, "emails", [0; 7], true);
    }

    async fn discard_failed_and_retry(cli) {
        let a = cli.enqueue_one("diag.noop", &[]);
        let b = cli.enqueue_one("diag.fail", &["--queue", "other"]);
        let c = cli.enqueue_one("diag.noop", &[]);
        let done = cli.enqueue_one("diag.noop", &[]);
        cli.db.execute(&format!("UPDATE jobs SET state = 'retryable', attempt = 1, last_error = 'boom' WHERE id = {b}")).await;
        cli.db.execute(&format!("UPDATE jobs SET state = 'completed', attempt = 1, finished_at = {} WHERE id = {done}", cli.now_sql())).await;

        let out = cli.json(&["queue", "discard", "--id", &a.to_string()]);
        assert_eq!(out, serde_json::json!({"discarded": [a]}));
        let job = cli.state(a);
        assert_eq!(job["state"], "discarded", "{job}");
        assert!(job["finished_at"].is_string() && job["last_error"].is_string(), "{job}");
        assert_eq!(cli.state(c)["state"], "available", "discard --id touches that job only");
        // A completed job is not waiting: nothing to discard.
        let run = cli.ok(&["queue", "discard", "--id", &done.to_string()]);
        assert!(run.stdout.contains("discarded 0 jobs"), "{}", run.describe());

        let failed = cli.json(&["queue", "failed"]);
        let mut listed = ids(&Value::Array(failed.as_array().unwrap().iter().map(|r| r["id"].clone()).collect()));
        listed.sort();
        assert_eq!(listed, vec![a, b], "discarded and retryable only: {failed}");
        assert_eq!(keys(&failed[0]), sorted(&JOB_KEYS), "{failed}");
        let in_other = cli.json(&["queue", "failed", "--queue", "other"]);
        assert_eq!(in_other.as_array().unwrap().len(), 1, "{in_other}");
        assert_eq!(in_other[0]["id"], b, "{in_other}");
        assert_eq!(in_other[0]["last_error"], "boom", "{in_other}");

        let run = cli.ok(&["queue", "retry", "--id", &a.to_string()]);
        assert!(run.stdout.contains("retried 1 jobs"), "{}", run.describe());
        let job = cli.state(a);
        assert_eq!(job["state"], "available", "{job}");
        assert!(job["finished_at"].is_null(), "{job}");

        let run = cli.ok(&["queue", "retry", "--id", &c.to_string()]);
        assert!(run.stdout.contains("retried 0 jobs"), "{}", run.describe());
        assert_eq!(cli.json(&["queue", "retry", "--id", &c.to_string()]), serde_json::json!({"retried": []}));
        let run = cli.ok(&["queue", "retry", "--id", &done.to_string()]);
        assert!(run.stdout.contains("retried 0 jobs"), "a completed job is not retried:\n{}", run.describe());
        assert_eq!(cli.state(done)["state"], "completed");

        let out = cli.json(&["queue", "retry", "--kind", "diag.fail"]);
        assert_eq!(out, serde_json::json!({"retried": [b]}));
        assert_eq!(cli.json(&["queue", "failed"]), serde_json::json!([]));
    }

    async fn jobs_are_chosen_by_an_argument(cli) {
        let u1 = cli.enqueue_one("diag.noop", &["--args", r#"{"user_id":"u_1","n":3}"#]);
        let u2 = cli.enqueue_one("diag.noop", &["--args", r#"{"user_id":"u_2","n":3}"#]);
        let listed = |arg: &str| -> Vec<i64> {
            let rows = cli.list(&["--arg", arg]);
            let mut found: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().expect("id")).collect();
            found.sort();
            found
        };
        assert_eq!(listed("user_id=u_1"), vec![u1]);
        assert_eq!(listed("n=3"), vec![u1, u2]);
        assert_eq!(listed("n=4"), Vec::<i64>::new());

        let out = cli.json(&["queue", "discard", "--arg", "user_id=u_2"]);
        assert_eq!(out, serde_json::json!({"discarded": [u2]}), "--arg alone names the jobs");
        assert_eq!(cli.state(u1)["state"], "available");
        let out = cli.json(&["queue", "failed", "--arg", "n=3"]);
        assert_eq!(ids(&Value::Array(out.as_array().expect("list").iter().map(|r| r["id"].clone()).collect())), vec![u2]);
        let out = cli.json(&["queue", "retry", "--arg", "user_id=u_2"]);
        assert_eq!(out, serde_json::json!({"retried": [u2]}));

        cli.usage(&["queue", "list", "--arg", "user_id"], "key=value");
        cli.usage(&["queue", "retry", "--arg", "a.b=1"], "key is 1 to 64");
        cli.usage(&["queue", "discard", "--arg", &format!("k={}", "x".repeat(257))], "at most 256");
        assert_eq!(cli.state(u1)["state"], "available", "a refused command changes nothing");
    }

    async fn flags_switch_enqueue_off_and_on(cli) {
        let out = cli.json(&["flags", "list"]);
        let flags = out["flags"].as_array().unwrap_or_else(|| panic!("{out}"));
        for name in ["scheduler", "enqueue", "workers"] {
            let flag = flags.iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("{name}: {out}"));
            assert_eq!(flag["enabled"], true, "{flag}");
            assert_eq!(flag["source"], "default", "{flag}");
        }

        cli.ok(&["flags", "set", "enqueue", "off"]);
        let refused = cli.run(&["queue", "enqueue", "diag.noop"]);
        assert_eq!(refused.code, Some(1), "{}", refused.describe());
        assert!(refused.stderr.contains("switched off") && refused.stderr.contains("enqueue"), "{}", refused.describe());
        let trigger = cli.run(&["schedules", "trigger", "jobs.prune"]);
        assert_eq!(trigger.code, Some(1), "no firing while enqueue is off:\n{}", trigger.describe());
        assert_eq!(cli.count("SELECT count(*) FROM jobs").await, 0);
        let out = cli.json(&["flags", "list"]);
        let enqueue = out["flags"].as_array().unwrap().iter().find(|f| f["name"] == "enqueue").cloned().unwrap();
        assert_eq!(enqueue["enabled"], false, "{out}");
        assert_eq!(enqueue["source"], "cli", "{out}");

        assert_eq!(cli.json(&["flags", "set", "enqueue", "on"]), serde_json::json!({"name": "enqueue", "enabled": true}));
        cli.enqueue_one("diag.noop", &[]);
        assert_eq!(cli.count("SELECT count(*) FROM jobs").await, 1);

        cli.usage(&["flags", "set", "bogus", "off"], "bogus");
        cli.usage(&["flags", "set", "enqueue", "maybe"], "maybe");
        cli.usage(&["flags", "set", "queue:bad name", "off"], "flag");
    }

    async fn schedules_list_and_trigger(cli) {
        let out = cli.json(&["schedules", "list"]);
        let schedules = out["schedules"].as_array().unwrap_or_else(|| panic!("{out}"));
        let prune = schedules.iter().find(|s| s["name"] == "jobs.prune").unwrap_or_else(|| panic!("{out}"));
        assert_eq!(prune["cron"], "0 * * * *", "{prune}");
        assert_eq!(prune["kind"], "jobs.prune", "{prune}");
        assert!(prune["last_fired_at"].is_null() && prune["next_fire_at"].is_string(), "{prune}");

        let first = cli.ok(&["schedules", "trigger", "jobs.prune"]);
        let id: i64 = first.stdout.trim().rsplit(' ').next().and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("a job id:\n{}", first.describe()));
        assert_eq!(cli.count(&format!("SELECT count(*) FROM jobs WHERE id = {id} AND kind = 'jobs.prune' AND unique_key LIKE 'schedule:jobs.prune:%'")).await, 1);
        let second = cli.ok(&["schedules", "trigger", "jobs.prune"]);
        assert!(second.stdout.contains("already fired"), "{}", second.describe());
        assert!(second.stdout.trim().ends_with(&format!("job {id}")), "the same job:\n{}", second.describe());
        assert_eq!(cli.json(&["schedules", "trigger", "jobs.prune"]), serde_json::json!({"job_id": id, "deduplicated": true}));
        assert_eq!(cli.count("SELECT count(*) FROM jobs").await, 1);

        let out = cli.json(&["schedules", "list"]);
        let prune = out["schedules"].as_array().unwrap().iter().find(|s| s["name"] == "jobs.prune").cloned().unwrap();
        assert!(prune["last_fired_at"].is_string(), "{prune}");
        cli.usage(&["schedules", "trigger", "nope"], "nope");
    }

    async fn report_covers_queues_failures_schedules_and_flags(cli) {
        cli.enqueue("diag.noop", &["--queue", "alpha", "--count", "2"]);
        cli.enqueue("diag.noop", &["--queue", "beta"]);
        let failed = cli.enqueue_one("diag.fail", &["--queue", "alpha"]);
        cli.db.execute(&format!("UPDATE jobs SET state = 'discarded', attempt = 1, last_error = 'boom', finished_at = {} WHERE id = {failed}", cli.now_sql())).await;
        cli.ok(&["flags", "set", "workers", "off"]);

        let run = cli.ok(&["report"]);
        for needle in ["alpha", "beta", "alpha / diag.fail", "jobs.prune", "scheduler", "enqueue", "workers"] {
            assert!(run.stdout.contains(needle), "report must mention {needle:?}:\n{}", run.describe());
        }

        let out = cli.json(&["report"]);
        for key in ["queues", "failed", "schedules", "flags"] {
            assert!(out.get(key).is_some(), "{key}: {out}");
        }
        assert_eq!(out["queues"]["alpha"]["backlog"], 2, "{out}");
        assert_eq!(out["queues"]["beta"]["backlog"], 1, "{out}");
        assert!(out["queues"]["alpha"]["oldest_waiting_s"].as_f64().is_some_and(|s| s >= 0.0), "{out}");
        assert_eq!(out["failed"], serde_json::json!([{"queue": "alpha", "kind": "diag.fail", "retryable": 0, "discarded": 1}]));
        assert!(out["schedules"].as_array().unwrap().iter().any(|s| s["name"] == "jobs.prune"), "{out}");
        let workers = out["flags"].as_array().unwrap().iter().find(|f| f["name"] == "workers").cloned();
        assert_eq!(workers.map(|f| f["enabled"].clone()), Some(Value::Bool(false)), "{out}");
    }

    async fn every_operator_command_is_audited(cli) {
        assert_eq!(cli.audit().await, 0);
        let id = cli.enqueue_one("diag.noop", &["--queue", "q"]).to_string();
        let mut expected = 1;
        assert_eq!(cli.audit().await, expected, "enqueue");
        let ops: Vec<(Vec<&str>, &str)> = vec![
            (vec!["queue", "pause", "q"], "flag.set"),
            (vec!["queue", "resume", "q"], "flag.set"),
            (vec!["queue", "discard", "--id", &id], "job.discard"),
            (vec!["queue", "retry", "--id", &id], "job.retry"),
            (vec!["queue", "drain", "q"], "queue.drain"),
            (vec!["flags", "set", "scheduler", "off"], "flag.set"),
            (vec!["schedules", "trigger", "jobs.prune"], "schedule.trigger"),
        ];
        for (args, action) in ops {
            cli.ok(&args);
            expected += 1;
            assert_eq!(cli.audit().await, expected, "keel {args:?} must write one audit row");
            let sql = format!("SELECT count(*) FROM audit_log WHERE actor = 'cli' AND action = '{action}'");
            assert!(cli.count(&sql).await >= 1, "action {action} after {args:?}");
        }
        // 2500 alike go in batches of 1000, one audit row per batch.
        cli.ok(&["queue", "enqueue", "diag.noop", "--count", "2500"]);
        expected += 3;
        assert_eq!(cli.audit().await, expected, "enqueue --count 2500");
        for args in [&["queue", "stats"][..], &["queue", "list"], &["queue", "failed"], &["flags", "list"], &["schedules", "list"], &["report"]] {
            cli.ok(args);
        }
        assert_eq!(cli.audit().await, expected, "reading writes no audit row");
        assert_eq!(cli.count("SELECT count(*) FROM audit_log WHERE actor <> 'cli'").await, 0);
    }

    async fn bench_queue_runs_and_cleans_up(cli) {
        let out = cli.json(&["bench", "queue", "--jobs", "200", "--concurrency", "10", "--rate", "50", "--seconds", "1"]);
        for key in ["insert_jobs_per_s", "processed_jobs_per_s"] {
            assert!(out[key].as_f64().is_some_and(|v| v > 0.0 && v.is_finite()), "{key}: {out}");
        }
        assert_eq!(out["latency_jobs"], 50, "{out}");
        assert_eq!(out["jobs"], 200, "{out}");
        assert!(out["latency_p50_ms"].as_f64().is_some_and(|v| v >= 0.0), "{out}");
        assert!(out["latency_p99_ms"].as_f64() >= out["latency_p50_ms"].as_f64(), "{out}");
        assert_eq!(cli.count("SELECT count(*) FROM jobs WHERE queue LIKE 'bench-%'").await, 0, "bench left jobs behind");
        cli.usage(&["bench", "queue", "--jobs", "0"], "--jobs");
        if !cli.db.is_postgres() {
            cli.usage(&["bench", "queue", "--breakdown"], "Postgres");
            return;
        }
        // The traced run: every stage measured, and the stages add up to the whole.
        let out = cli.json(&["bench", "queue", "--jobs", "100", "--concurrency", "20", "--rate", "50", "--seconds", "1", "--breakdown"]);
        let stages = out["breakdown"].as_array().unwrap_or_else(|| panic!("no breakdown: {out}"));
        assert_eq!(stages.len(), 5, "{out}");
        for stage in stages {
            assert!(stage["p50_ms"].as_f64().is_some_and(f64::is_finite), "{stage}");
            assert!(stage["p99_ms"].as_f64() >= stage["p50_ms"].as_f64(), "{stage}");
        }
        let whole = stages[4]["p99_ms"].as_f64().unwrap();
        assert!(whole > 0.0 && whole >= stages[0]["p50_ms"].as_f64().unwrap(), "{out}");
        assert_eq!(cli.count("SELECT count(*) FROM jobs WHERE queue LIKE 'bench-%'").await, 0, "bench left jobs behind");
    }
}

/// Both engines, without `keel migrate up`.
async fn unmigrated(cli: Cli) {
    for args in [&["queue", "stats"][..], &["queue", "enqueue", "diag.noop"]] {
        let run = cli.run(args);
        assert_eq!(run.code, Some(1), "keel {args:?}:\n{}", run.describe());
        assert!(
            run.stderr.contains("keel migrate up"),
            "keel {args:?} must hint at migrating:\n{}",
            run.describe()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmigrated_database_sqlite() {
    unmigrated(Cli::bare(TestDb::sqlite())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmigrated_database_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    unmigrated(Cli::bare(db)).await;
}
