//! The built `keel` binary as a child process with its own environment and port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct KeelProcess {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

/// A port that was free a moment ago. Panics when no local port can be bound.
pub fn free_port() -> u16 {
    match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("no free local port: {e}"),
    }
}

impl KeelProcess {
    /// Starts `bin serve` (plus `args`) in `dir` with exactly `env` (and PATH), on a free port.
    /// Panics with the reason when the process cannot be started.
    pub fn serve(bin: &Path, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> KeelProcess {
        match Self::try_serve(bin, dir, env, args) {
            Ok(process) => process,
            Err(e) => panic!("cannot start {}: {e}", bin.display()),
        }
    }

    pub fn try_serve(
        bin: &Path,
        dir: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> std::io::Result<KeelProcess> {
        let port = free_port();
        let log = dir.join(format!("keel-{port}.log"));
        let file = std::fs::File::create(&log)?;
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", port.to_string())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let child = command.spawn()?;
        Ok(KeelProcess { child, port, log })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits until `/health/ready` answers 200, or panics with the process log.
    pub async fn wait_ready(&mut self, limit: Duration) {
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(self.url("/health/ready")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("keel exited early ({status}):\n{}", self.logs());
            }
            if started.elapsed() > limit {
                panic!("keel not ready within {limit:?}:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal by name (`TERM`, `KILL`, `INT`); panics when it cannot be sent.
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(
            sent.as_ref().is_ok_and(|s| s.success()),
            "kill -{name} failed: {sent:?}"
        );
    }

    /// Waits for the process to exit, or panics after `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) => {}
                Err(e) => panic!("cannot wait for keel: {e}"),
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("keel did not exit within {limit:?}:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for KeelProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
