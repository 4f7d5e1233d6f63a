//! The harness of the operator-command tests (`queue_cli`): the `keel` binary run against one
//! test database, with readers of its `--json` answers and of the rows it leaves.

use crate::common;

use common::{keel, Run};
use keel_testkit::TestDb;
use serde_json::Value;

/// One migrated (or bare) database and a scratch working directory for `keel`.
pub(crate) struct Cli {
    pub(crate) db: TestDb,
    pub(crate) dir: tempfile::TempDir,
}

impl Cli {
    pub(crate) fn bare(db: TestDb) -> Cli {
        let dir = tempfile::tempdir().expect("temporary directory");
        Cli { db, dir }
    }

    pub(crate) fn migrated(db: TestDb) -> Cli {
        let cli = Cli::bare(db);
        cli.ok(&["migrate", "up"]);
        cli
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        let run = keel(self.dir.path(), &[("DATABASE_URL", self.db.url())], args);
        assert!(
            !run.output().contains("panicked"),
            "keel {args:?} panicked:\n{}",
            run.describe()
        );
        run
    }

    pub(crate) fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, Some(0), "keel {args:?}:\n{}", run.describe());
        run
    }

    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        self.ok(&all).json()
    }

    /// Exit 2, with `needle` in what it printed.
    pub(crate) fn usage(&self, args: &[&str], needle: &str) -> Run {
        let run = self.run(args);
        assert_eq!(
            run.code,
            Some(2),
            "keel {args:?} must be a usage error:\n{}",
            run.describe()
        );
        assert!(
            run.output().to_lowercase().contains(&needle.to_lowercase()),
            "keel {args:?} must mention {needle:?}:\n{}",
            run.describe()
        );
        run
    }

    /// `keel queue enqueue KIND EXTRA… --json`: the ids.
    pub(crate) fn enqueue(&self, kind: &str, extra: &[&str]) -> Vec<i64> {
        let mut args = vec!["queue", "enqueue", kind];
        args.extend_from_slice(extra);
        let out = self.json(&args);
        ids(&out["ids"])
    }

    pub(crate) fn enqueue_one(&self, kind: &str, extra: &[&str]) -> i64 {
        let ids = self.enqueue(kind, extra);
        assert_eq!(ids.len(), 1, "{ids:?}");
        ids[0]
    }

    /// `queue stats --json`, the `queues` object.
    pub(crate) fn stats(&self) -> serde_json::Map<String, Value> {
        let out = self.json(&["queue", "stats"]);
        let top: Vec<&String> = out.as_object().expect("object").keys().collect();
        assert_eq!(top, ["queues"], "{out}");
        out["queues"].as_object().expect("queues object").clone()
    }

    pub(crate) fn list(&self, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["queue", "list"];
        args.extend_from_slice(extra);
        let out = self.json(&args);
        out.as_array()
            .unwrap_or_else(|| panic!("an array: {out}"))
            .clone()
    }

    pub(crate) fn state(&self, id: i64) -> Value {
        let rows = self.list(&["--limit", "100000"]);
        rows.into_iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("job {id} is not listed"))
    }

    pub(crate) async fn count(&self, sql: &str) -> i64 {
        self.db.scalar(sql).await
    }

    pub(crate) async fn audit(&self) -> i64 {
        self.count("SELECT count(*) FROM audit_log WHERE actor = 'cli'")
            .await
    }

    /// The current time in the `jobs` time columns of this engine.
    pub(crate) fn now_sql(&self) -> &'static str {
        if self.db.is_postgres() {
            "now()"
        } else {
            "CAST(strftime('%s', 'now') AS INTEGER) * 1000"
        }
    }
}

pub(crate) fn ids(value: &Value) -> Vec<i64> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("an array of ids: {value}"))
        .iter()
        .map(|v| v.as_i64().unwrap_or_else(|| panic!("an integer id: {v}")))
        .collect()
}

pub(crate) fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

pub(crate) fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

pub(crate) const STAT_KEYS: [&str; 8] = [
    "scheduled",
    "available",
    "running",
    "retryable",
    "completed",
    "discarded",
    "cancelled",
    "paused",
];

pub(crate) const JOB_KEYS: [&str; 11] = [
    "id",
    "queue",
    "kind",
    "state",
    "attempt",
    "max_attempts",
    "unique_key",
    "run_at",
    "created_at",
    "finished_at",
    "last_error",
];

/// Asserts one queue's counts (in `STAT_KEYS` order, without `paused`) and paused flag.
pub(crate) fn assert_stat(
    stats: &serde_json::Map<String, Value>,
    queue: &str,
    counts: [i64; 7],
    paused: bool,
) {
    let stat = stats
        .get(queue)
        .unwrap_or_else(|| panic!("no queue {queue} in {stats:?}"));
    assert_eq!(keys(stat), sorted(&STAT_KEYS), "{stat}");
    for (key, want) in STAT_KEYS.iter().zip(counts) {
        assert_eq!(stat[*key].as_i64(), Some(want), "{queue}.{key}: {stat}");
    }
    assert_eq!(
        stat["paused"],
        Value::Bool(paused),
        "{queue}.paused: {stat}"
    );
}
