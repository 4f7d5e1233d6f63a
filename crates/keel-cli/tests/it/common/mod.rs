//! Helpers shared by the process-level tests: run the built `keel` binary once, with exactly the
//! environment given (plus PATH), and collect its exit code and output.

#![allow(dead_code)]

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `keel` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keel"))
}

/// How one command ended.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Standard output and standard error together.
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Everything about the run, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit code {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Standard output parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.describe()))
    }

    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "{}", self.describe());
        self
    }
}

/// Runs `keel ARGS` in `dir` with a cleared environment plus PATH and `env`; fails after 60 s.
pub fn keel(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    keel_within(dir, env, args, Duration::from_secs(60))
}

pub fn keel_within(dir: &Path, env: &[(&str, &str)], args: &[&str], limit: Duration) -> Run {
    let mut out = tempfile::tempfile().expect("stdout file");
    let mut err = tempfile::tempfile().expect("stderr file");
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("stdout file"))
        .stderr(err.try_clone().expect("stderr file"))
        .spawn()
        .expect("start keel");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for keel") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "keel {args:?} did not exit within {limit:?}:\n{}",
                read_all(&mut out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: read_all(&mut out),
        stderr: read_all(&mut err),
    }
}

fn read_all(file: &mut std::fs::File) -> String {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).expect("rewind");
    file.read_to_string(&mut text).expect("read output");
    text
}

/// A port nothing listens on (it was free a moment ago).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `GET /v1/me/entitlements` on a running `keel serve` as the holder of `token`.
pub async fn entitlements(server: &keel_testkit::KeelProcess, token: &str) -> serde_json::Value {
    let response = reqwest::Client::new()
        .get(server.url("/v1/me/entitlements"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    response.json::<serde_json::Value>().await.expect("json")["entitlements"].clone()
}
