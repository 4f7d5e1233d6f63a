//! A database that cannot be reached answers 503 `database-unavailable` with `Retry-After`, not
//! 500: the app reaches Postgres through a TCP proxy that the test cuts (open connections reset,
//! new ones closed at once) and then restores.

use crate::billing_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use billing_support::*;
use keel_testkit::{admin, TestDb};
use reqwest::Method;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// A TCP proxy to one address that can be cut and restored.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (c, o) = (cut.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                o.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { port, cut, open }
    }

    /// Resets every open connection and closes new ones at once.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for task in self.open.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// `url` with its `host:port` replaced by the proxy's.
fn through(url: &str, port: u16) -> (String, String) {
    let after_at = url
        .find('@')
        .map_or(url.find("://").unwrap() + 3, |at| at + 1);
    let end = url[after_at..]
        .find(['/', '?'])
        .map_or(url.len(), |i| after_at + i);
    let target = url[after_at..end].to_string();
    let proxied = format!("{}127.0.0.1:{port}{}", &url[..after_at], &url[end..]);
    (target, proxied)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_answers_503_database_unavailable() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let (target, _) = through(db.url(), 0);
    let proxy = Proxy::start(target).await;
    let (_, proxied) = through(db.url(), proxy.port);
    let (_dir, config) = config_dir();
    let app = app(db, &config).env("DATABASE_URL", &proxied).spawn().await;
    let user = "outage-user";
    let me = |app: &keel_testkit::TestApp| {
        app.client
            .get(app.url("/v1/me/entitlements"))
            .bearer_auth(token(user))
            .send()
    };
    assert_eq!(me(&app).await.unwrap().status(), 200);
    admin(&app, Method::GET, "/admin/api/jobs", None)
        .await
        .ok(200);

    proxy.cut();
    for path in [
        "/admin/api/jobs",
        "/admin/api/users/never-seen/entitlements",
    ] {
        let r = admin(&app, Method::GET, path, None).await;
        r.problem(503, "database-unavailable");
        assert_eq!(
            r.header("retry-after"),
            Some("2"),
            "{path}: {:?}",
            r.headers
        );
    }
    let r = keel_testkit::send(
        app.client
            .get(app.url("/v1/me/entitlements"))
            .bearer_auth(token("another-outage-user")),
    )
    .await;
    r.problem(503, "database-unavailable");

    proxy.restore();
    admin(&app, Method::GET, "/admin/api/jobs", None)
        .await
        .ok(200);
    assert_eq!(me(&app).await.unwrap().status(), 200);
}
