//! A PgBouncer of the test's own, in transaction pool mode, on a free port in front of the test
//! Postgres, and a database of the test's own behind it (PgBouncer passes no `options`, so the
//! per-test schema of `TestDb` cannot be named in the URL).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keel_testkit::{execute_detached, free_port};

/// The PgBouncer binary: `KEEL_TEST_PGBOUNCER`, else PATH, else Debian's `/usr/sbin/pgbouncer`.
/// `None` (and a note) when there is none and `KEEL_TEST_REQUIRE_PGBOUNCER` is not `1`.
pub fn pgbouncer_binary() -> Option<PathBuf> {
    let candidates = std::env::var_os("KEEL_TEST_PGBOUNCER")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join("pgbouncer"))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        )
        .chain([PathBuf::from("/usr/sbin/pgbouncer")]);
    for candidate in candidates {
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    if std::env::var("KEEL_TEST_REQUIRE_PGBOUNCER").as_deref() == Ok("1") {
        panic!(
            "KEEL_TEST_REQUIRE_PGBOUNCER=1 but no pgbouncer was found (apt-get install pgbouncer)"
        );
    }
    eprintln!(
        "skipped: no pgbouncer binary (apt-get install pgbouncer, or set KEEL_TEST_PGBOUNCER)"
    );
    None
}

/// A running PgBouncer and the database behind it; both go away on drop.
pub struct Bouncer {
    child: Child,
    log: PathBuf,
    port: u16,
    server_url: String,
    database: String,
    _dir: tempfile::TempDir,
}

impl Bouncer {
    /// Creates a fresh database on the server of `server_url` (a `KEEL_TEST_POSTGRES_URL`) and
    /// starts PgBouncer in front of it with `pool_mode = transaction` and `pool_size` servers.
    pub async fn start(binary: &Path, server_url: &str, pool_size: u32) -> Bouncer {
        let server = Server::parse(server_url);
        let database = format!("keel_pooler_{}", uuid::Uuid::new_v4().simple());
        assert!(
            execute_detached(server_url, &format!("CREATE DATABASE {database}")),
            "cannot create the test database"
        );
        let dir = tempfile::tempdir().expect("temporary directory");
        // PgBouncer refuses to run as root; started as root it switches to `user`, who must be
        // able to read the directory.
        set_mode(dir.path(), 0o755);
        let port = free_port();
        let config = format!(
            "[databases]\n\
             * = host={host} port={server_port} user={user} password={password}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = any\n\
             pool_mode = transaction\n\
             default_pool_size = {pool_size}\n\
             max_client_conn = 500\n\
             server_reset_query =\n\
             ignore_startup_parameters =\n\
             logfile =\n\
             pidfile =\n",
            host = server.host,
            server_port = server.port,
            user = server.user,
            password = server.password,
        );
        let config_path = dir.path().join("pgbouncer.ini");
        std::fs::write(&config_path, config).expect("pgbouncer.ini");
        set_mode(&config_path, 0o644);
        let log = dir.path().join("pgbouncer.log");
        let file = std::fs::File::create(&log).expect("pgbouncer.log");
        let mut command = Command::new(binary);
        if is_root() {
            command.arg("--user").arg(unprivileged_user());
        }
        let child = command
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("start pgbouncer");
        let mut bouncer = Bouncer {
            child,
            log,
            port,
            server_url: server_url.to_string(),
            database,
            _dir: dir,
        };
        bouncer.wait_accepting().await;
        bouncer
    }

    /// The URL Keel connects through: PgBouncer's port, the test database.
    pub fn url(&self) -> String {
        format!("postgres://keel@127.0.0.1:{}/{}", self.port, self.database)
    }

    /// The database's URL on the server itself, bypassing PgBouncer.
    pub fn direct_url(&self) -> String {
        let (base, query) = match self.server_url.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (self.server_url.as_str(), String::new()),
        };
        let root = base.rsplit_once('/').map(|(root, _)| root).unwrap_or(base);
        format!("{root}/{}{query}", self.database)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_accepting(&mut self) {
        let started = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("pgbouncer exited ({status}):\n{}", self.logs());
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "pgbouncer did not listen:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database);
        if !execute_detached(&self.server_url, &drop) {
            eprintln!("note: test database {} was not dropped", self.database);
        }
    }
}

/// Where the test Postgres is, from `postgres://USER:PASSWORD@HOST:PORT/DB`.
struct Server {
    host: String,
    port: u16,
    user: String,
    password: String,
}

impl Server {
    fn parse(url: &str) -> Server {
        let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
        let (credentials, address) = rest.split_once('@').unwrap_or(("postgres", rest));
        let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
        let address = address.split(['/', '?']).next().unwrap_or("127.0.0.1");
        let (host, port) = address.rsplit_once(':').unwrap_or((address, "5432"));
        Server {
            host: host.to_string(),
            port: port
                .parse()
                .expect("the Postgres port in KEEL_TEST_POSTGRES_URL"),
            user: user.to_string(),
            password: password.to_string(),
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The account PgBouncer runs as when started as root: `postgres` where it exists, else `nobody`.
fn unprivileged_user() -> &'static str {
    let has_postgres = Command::new("id")
        .arg("postgres")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if has_postgres {
        "postgres"
    } else {
        "nobody"
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("permissions");
}
