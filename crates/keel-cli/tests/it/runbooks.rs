//! docs/OPERATIONS.md: every command block fenced as `sh runbook` runs as written, in order,
//! against a local instance with a stored RevenueCat event and a failing job, on each engine
//! (SQLite in a temporary directory; Postgres in a schema of its own, with an empty scratch
//! database for the restore drill), and exits 0. The instance still passes `keel smoke`
//! afterwards, with every kill switch on, and the drill left no copy behind.

use crate::common;

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, keel};
use keel_testkit::{execute_detached, KeelProcess, TestDb};
use serde_json::{json, Value};

const RC_SECRET: &str = "revenuecat-webhook-secret-0123456789abcdef";
const STRIPE_SECRET: &str = "whsec_stripe-secret-for-tests-0123456789";
const ADMIN_TOKEN: &str = "admin-token-for-runbook-tests-0123456789";
const METRICS_TOKEN: &str = "metrics-token-for-runbook-tests-0123456789";

/// The fence of the blocks the test runs; plain `sh` blocks are not run.
const FENCE: &str = "```sh runbook";
/// Every runbook (matched in its `## ` heading, case-insensitively) needs at least one block.
const RUNBOOKS: [&str; 6] = [
    "backlog",
    "error spike",
    "migration failure",
    "webhook mismatch",
    "restore drill",
    "kill switches",
];
/// Tools the runbook blocks must not need: only `keel` and POSIX shell.
const FORBIDDEN: [&str; 4] = ["curl", "jq", "psql", "sqlite3"];
/// Longest one block may take (the kill-switch blocks sleep, the drill starts an instance).
const BLOCK_LIMIT: Duration = Duration::from_secs(240);

/// One `sh runbook` block and the `## ` heading it is under.
struct Block {
    heading: String,
    line: usize,
    script: String,
}

fn runbook_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut heading = String::new();
    let mut current: Option<(usize, Vec<&str>)> = None;
    let mut in_other_fence = false;
    for (index, line) in markdown.lines().enumerate() {
        if let Some((start, lines)) = current.as_mut() {
            if line.trim_end() == "```" {
                blocks.push(Block {
                    heading: heading.clone(),
                    line: *start,
                    script: lines.join("\n"),
                });
                current = None;
            } else {
                lines.push(line);
            }
            continue;
        }
        if in_other_fence {
            in_other_fence = !line.starts_with("```");
            continue;
        }
        if line.trim_end() == FENCE {
            current = Some((index + 1, Vec::new()));
        } else if line.starts_with("```") {
            in_other_fence = true;
        } else if let Some(title) = line.strip_prefix("## ") {
            heading = title.trim().to_string();
        }
    }
    assert!(current.is_none(), "an unterminated {FENCE} block");
    blocks
}

/// How one block ended.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs `bash -euo pipefail -c SCRIPT` in `dir` with exactly `env` (PATH included), in a process
/// group of its own that is killed whole when it overruns.
fn run_block(dir: &Path, env: &[(&str, String)], script: &str) -> Outcome {
    let mut out = tempfile::tempfile().expect("stdout file");
    let mut err = tempfile::tempfile().expect("stderr file");
    let started = Instant::now();
    let mut child = Command::new("/bin/bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("stdout file"))
        .stderr(err.try_clone().expect("stderr file"))
        .process_group(0)
        .spawn()
        .expect("start bash");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for bash") {
            break Some(status);
        }
        if started.elapsed() > BLOCK_LIMIT {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Outcome {
        code: status.and_then(|s| s.code()),
        stdout: read_all(&mut out),
        stderr: read_all(&mut err),
        took: started.elapsed(),
    }
}

fn read_all(file: &mut std::fs::File) -> String {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).expect("rewind");
    file.read_to_string(&mut text).expect("read output");
    text
}

fn operations_md() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/OPERATIONS.md")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_runbook_block_runs_against_a_local_instance_on_sqlite() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database_url = format!("sqlite://{}", dir.path().join("keel.db").display());
    run_every_block(dir.path(), &database_url, None).await;
    assert!(
        !dir.path().join("keel-drill.db").exists(),
        "the restore drill left its scratch database behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_runbook_block_runs_against_a_local_instance_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let TestDb::Postgres { base, schema, url } = &db else {
        unreachable!("TestDb::postgres is a Postgres database")
    };
    // The drill's scratch database: empty, with the service's schema (a backup restores into the
    // schema it was taken from).
    let scratch = Scratch::create(base);
    let drill_url = with_database(url, &scratch.name);
    assert!(execute_detached(
        &drill_url,
        &format!("CREATE SCHEMA {schema}")
    ));
    let dir = tempfile::tempdir().expect("temporary directory");
    run_every_block(dir.path(), url, Some(&drill_url)).await;
    // The drill emptied its scratch database again.
    let status = keel(
        dir.path(),
        &[("DATABASE_URL", &drill_url)],
        &["migrate", "status", "--json"],
    );
    let report = status.assert_code(0).json();
    let applied: Vec<&Value> = report["migrations"]
        .as_array()
        .expect("migrations")
        .iter()
        .filter(|m| m["state"] != "pending")
        .collect();
    assert!(
        applied.is_empty(),
        "the drill left its copy behind: {report}"
    );
}

/// A database of the test's own on the test server, dropped on drop.
struct Scratch {
    base: String,
    name: String,
}

impl Scratch {
    fn create(base: &str) -> Scratch {
        let name = format!("keel_drill_{}", uuid::Uuid::new_v4().simple());
        assert!(execute_detached(base, &format!("CREATE DATABASE {name}")));
        Scratch {
            base: base.to_string(),
            name,
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if !execute_detached(&self.base, &sql) {
            eprintln!("note: scratch database {} was not dropped", self.name);
        }
    }
}

/// `url` naming the database `name` instead (its query, e.g. the search_path, kept).
fn with_database(url: &str, name: &str) -> String {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let root = path.rsplit_once('/').map(|(root, _)| root).unwrap_or(path);
    if query.is_empty() {
        format!("{root}/{name}")
    } else {
        format!("{root}/{name}?{query}")
    }
}

/// Starts an instance on `database_url` in `root`, prepares what the runbooks act on, and runs
/// every block; `drill_url` is the restore drill's scratch database (Postgres).
async fn run_every_block(root: &Path, database_url: &str, drill_url: Option<&str>) {
    let markdown = std::fs::read_to_string(operations_md()).expect("docs/OPERATIONS.md");
    let blocks = runbook_blocks(&markdown);
    assert!(
        blocks.len() >= RUNBOOKS.len(),
        "{} {FENCE} blocks found, expected at least one per runbook",
        blocks.len()
    );
    for runbook in RUNBOOKS {
        assert!(
            blocks
                .iter()
                .any(|b| b.heading.to_lowercase().contains(runbook)),
            "no {FENCE} block under a `## ` heading naming {runbook:?}"
        );
    }
    for block in &blocks {
        let words: Vec<&str> = block
            .script
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .collect();
        for tool in FORBIDDEN {
            assert!(
                !words.contains(&tool),
                "the block at docs/OPERATIONS.md line {} uses {tool}; runbook blocks use only keel and POSIX shell:\n{}",
                block.line,
                block.script
            );
        }
    }

    // A local instance: both billing providers, admin and metrics tokens, and a product that
    // grants `premium`.
    std::fs::write(
        root.join("keel.toml"),
        "[products]\npremium_monthly = [\"premium\"]\n",
    )
    .expect("keel.toml");
    let backups = root.join("backups");
    std::fs::create_dir(&backups).expect("backup directory");
    let server_env = [
        ("DATABASE_URL", database_url),
        ("REVENUECAT_WEBHOOK_SECRET", RC_SECRET),
        ("STRIPE_WEBHOOK_SECRET", STRIPE_SECRET),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("METRICS_TOKEN", METRICS_TOKEN),
        ("AUTH_DEV_MODE", "true"),
    ];
    let mut server = KeelProcess::serve(&bin(), root, &server_env, &[]);
    server.wait_ready(Duration::from_secs(30)).await;
    let base = server.url("");
    let port = server.port.to_string();

    // A stored billing event for the webhook runbook and the restore drill.
    let mut cli_env = server_env.to_vec();
    cli_env.push(("PORT", port.as_str()));
    let sent = keel(
        root,
        &cli_env,
        &[
            "dev",
            "webhook",
            "revenuecat",
            "--event",
            "INITIAL_PURCHASE",
            "--user",
            "ada",
            "--json",
        ],
    );
    sent.assert_code(0);
    let delivery = sent.json();
    assert_eq!(
        delivery["body"],
        json!({"received": true, "duplicate": false}),
        "{}",
        sent.describe()
    );
    let event_id = delivery["event_id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| panic!("no event_id:\n{}", sent.describe()))
        .to_string();

    // Jobs for the backlog and error-spike runbooks, one of them failing its first attempt.
    let db_env = [("DATABASE_URL", database_url)];
    for args in [
        vec!["queue", "enqueue", "diag.noop", "--count", "3"],
        vec!["queue", "enqueue", "diag.sleep", "--args", r#"{"ms":50}"#],
        vec!["queue", "enqueue", "diag.fail", "--args", r#"{"times":1}"#],
    ] {
        keel(root, &db_env, &args).assert_code(0);
    }
    let waited = Instant::now();
    loop {
        let failed = keel(
            root,
            &db_env,
            &["queue", "failed", "--kind", "diag.fail", "--json"],
        );
        failed.assert_code(0);
        if failed.json().as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "the diag.fail job did not fail within 20 s:\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Each block, in order, with exactly the documented variables.
    let keel_dir = bin()
        .parent()
        .expect("directory of the keel binary")
        .display()
        .to_string();
    let mut env: Vec<(&str, String)> = vec![
        ("PATH", format!("{keel_dir}:/usr/bin:/bin")),
        ("KEEL_URL", base.clone()),
        ("DATABASE_URL", database_url.to_string()),
        ("METRICS_TOKEN", METRICS_TOKEN.to_string()),
        ("ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
        ("REVENUECAT_WEBHOOK_SECRET", RC_SECRET.to_string()),
        ("STRIPE_WEBHOOK_SECRET", STRIPE_SECRET.to_string()),
        ("BACKUP_DIR", backups.display().to_string()),
        ("EVENT_ID", event_id.clone()),
        ("PROVIDER", "revenuecat".to_string()),
    ];
    if let Some(drill_url) = drill_url {
        env.push(("DRILL_DATABASE_URL", drill_url.to_string()));
    }
    for (n, block) in blocks.iter().enumerate() {
        let outcome = run_block(root, &env, &block.script);
        eprintln!(
            "block {} ({}, line {}): exit {:?} in {:.1} s",
            n + 1,
            block.heading,
            block.line,
            outcome.code,
            outcome.took.as_secs_f64()
        );
        assert_eq!(
            outcome.code,
            Some(0),
            "block {} of docs/OPERATIONS.md ({}, line {}) failed{}\n--- block\n{}\n--- stdout\n{}\n--- stderr\n{}\n--- server log (tail)\n{}",
            n + 1,
            block.heading,
            block.line,
            if outcome.code.is_none() {
                format!(" (killed after {BLOCK_LIMIT:?})")
            } else {
                String::new()
            },
            block.script,
            outcome.stdout,
            outcome.stderr,
            tail(&server.logs(), 40)
        );
    }

    // The runbooks took backups, cleaned up after the drill, and left every kill switch on.
    let names: Vec<String> = std::fs::read_dir(&backups)
        .expect("backup directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for prefix in ["pre-migrate-", "keel-"] {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with(prefix) && n.ends_with(".backup")),
            "no {prefix}*.backup in BACKUP_DIR: {names:?}"
        );
    }
    let flags = keel(root, &db_env, &["flags", "list", "--json"]);
    flags.assert_code(0);
    let flags: Value = flags.json();
    let list = flags["flags"].as_array().expect("flags array");
    assert!(list.len() >= 3, "{flags}");
    for flag in list {
        assert_eq!(
            flag["enabled"],
            json!(true),
            "a switch was left off: {flags}"
        );
    }
    let smoke = keel(root, &[], &["smoke", &base]);
    smoke.assert_code(0);

    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30)).await;
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn blocks_are_found_under_their_headings() {
    let markdown = "## 1. Backlog climbing\n\n```sh runbook\nkeel report\n```\n\n```sh\nkeel queue drain default\n```\n\n## 2. Error spike\n```sh runbook\nkeel queue failed\nkeel report\n```\n";
    let blocks = runbook_blocks(markdown);
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].heading, "1. Backlog climbing");
    assert_eq!(blocks[0].script, "keel report");
    assert_eq!(blocks[0].line, 3);
    assert_eq!(blocks[1].heading, "2. Error spike");
    assert_eq!(blocks[1].script, "keel queue failed\nkeel report");
}
