//! A `redis-server` of a test's own that speaks TLS only, on a free port, with a password, over a
//! CA and server certificate made for it with the `openssl` command.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use keel::redis_target::RedisTarget;

/// Characters reserved in URLs, which `REDIS_URL` carries percent-encoded ([`PASSWORD_IN_URL`]).
pub const PASSWORD: &str = "p@ss:w/rd?#%[]";
pub const PASSWORD_IN_URL: &str = "p%40ss%3Aw%2Frd%3F%23%25%5B%5D";

pub struct TlsRedis {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl TlsRedis {
    /// Starts one, or `None` (with a notice) when `redis-server` or `openssl` is not installed.
    pub async fn start() -> Option<TlsRedis> {
        let dir = tempfile::tempdir().expect("temporary directory");
        if !make_certificates(dir.path()) {
            eprintln!("note: openssl is not installed; this test ran nothing");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let file = |name: &str| dir.path().join(name);
        let spawned = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(file("server.crt"))
            .arg("--tls-key-file")
            .arg(file("server.key"))
            .arg("--tls-ca-cert-file")
            .arg(file("ca.crt"))
            .args(["--tls-auth-clients", "no", "--bind", "127.0.0.1 ::1"])
            .args([
                "--requirepass",
                PASSWORD,
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = spawned else {
            eprintln!("note: redis-server is not installed; this test ran nothing");
            return None;
        };
        let redis = TlsRedis { port, child, dir };
        let target = redis.target();
        keel_testkit::eventually(
            "the TLS redis-server answers",
            Duration::from_secs(10),
            || {
                let target = target.clone();
                async move {
                    keel::probe::redis_ping(&target, Duration::from_millis(500))
                        .await
                        .is_ok()
                }
            },
        )
        .await;
        Some(redis)
    }

    /// `rediss://` with the percent-encoded password and the IPv6 loopback address.
    pub fn url(&self) -> String {
        format!("rediss://:{PASSWORD_IN_URL}@[::1]:{}", self.port)
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    pub fn target(&self) -> RedisTarget {
        RedisTarget::parse(&self.url())
            .and_then(|t| t.with_ca_file(&self.ca_file()))
            .expect("a valid target")
    }

    /// A connection of the test's own, to ask the server what it saw.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        self.target()
            .client()
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("connection")
    }

    /// A field of `INFO` as a number (`connected_clients`, `total_connections_received`).
    pub async fn info(&self, field: &str) -> u64 {
        let mut connection = self.connection().await;
        let info: String = redis::cmd("INFO")
            .query_async(&mut connection)
            .await
            .expect("INFO");
        info.lines()
            .find_map(|l| {
                l.strip_prefix(field)?
                    .strip_prefix(':')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("{field} in {info}"))
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ca.crt`, and `server.crt`/`server.key` for localhost, 127.0.0.1 and ::1 signed by it.
fn make_certificates(dir: &Path) -> bool {
    let run = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n",
    )
    .expect("write ext.cnf");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca = [
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.crt"],
    ]
    .concat();
    let ca = [&ca[..], &["-days", "2", "-subj", "/CN=Keel test CA"]].concat();
    let csr = [
        &["req"][..],
        &ec,
        &["-keyout", "server.key", "-out", "server.csr"],
    ]
    .concat();
    let csr = [&csr[..], &["-subj", "/CN=localhost"]].concat();
    let sign = [
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ];
    run(&ca) && run(&csr) && run(&sign)
}
