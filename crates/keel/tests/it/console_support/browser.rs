//! Headless Chromium driven through chromedriver: the driver is started on a free port (chosen by
//! binding port 0, retried when another process takes it first) and stopped with the browser.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

const REQUIRE: &str = "KEEL_TEST_REQUIRE_BROWSER";

pub struct Browser {
    pub client: Client,
    driver: Child,
    shots: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Where the screenshots go: `console-screenshots` in the target directory.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("console-screenshots")
}

impl Browser {
    /// A headless browser, or `None` (with a message) when chromedriver or chromium is missing
    /// and `KEEL_TEST_REQUIRE_BROWSER` is not set; with it set, a missing browser fails the test.
    pub async fn start() -> Option<Browser> {
        let (Some(driver), Some(chromium)) = (on_path("chromedriver"), on_path("chromium")) else {
            assert!(
                std::env::var_os(REQUIRE).is_none(),
                "{REQUIRE} is set but chromedriver or chromium is not installed \
                 (apt-get install chromium chromium-driver)"
            );
            eprintln!("skipped: the console's browser tests need chromium and chromedriver");
            return None;
        };
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut child = Command::new(&driver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts");
            if let Some(client) = connect(port, &chromium, &mut child).await {
                let shots = screenshot_dir();
                std::fs::create_dir_all(&shots).expect("the screenshot directory");
                return Some(Browser {
                    client,
                    driver: child,
                    shots,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("chromedriver did not accept a session on any of five ports");
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    pub async fn text(&self) -> String {
        self.client.source().await.expect("page source")
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Waits until the page shows `text` (a click's navigation may still be under way).
    pub async fn wait_for(&self, text: &str) {
        let what = format!("the page shows {text:?}");
        keel_testkit::eventually(&what, Duration::from_secs(10), || async {
            self.client
                .source()
                .await
                .is_ok_and(|page| page.contains(text))
        })
        .await;
    }

    /// Waits until the browser is at `path` (with its query).
    pub async fn wait_at(&self, path: &str) {
        let what = format!("the browser is at {path}");
        keel_testkit::eventually(&what, Duration::from_secs(10), || async {
            self.path().await == path
        })
        .await;
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        field.send_keys(text).await.expect("type");
    }

    pub async fn click(&self, css: &str) {
        let button = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        button.click().await.expect("click");
    }

    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find")
            .is_empty()
    }

    /// Posts `fields` (URL-encoded) to `path` from the page with `fetch`, as a form would, and
    /// answers the status.
    pub async fn post_from_page(&self, path: &str, fields: &str) -> u16 {
        let script = "const done = arguments[arguments.length - 1];
            fetch(arguments[0], { method: 'POST', credentials: 'same-origin', redirect: 'manual',
                headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: arguments[1] })
              .then(r => done(r.status), e => done(String(e)));";
        let answer = self
            .client
            .execute_async(script, vec![json!(path), json!(fields)])
            .await
            .expect("fetch from the page");
        answer
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or_else(|| panic!("fetch failed: {answer}"))
    }

    /// The value of the attribute `name` of the first element matching `css`.
    pub async fn attr(&self, css: &str, name: &str) -> String {
        let element = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        element
            .attr(name)
            .await
            .expect("attribute")
            .unwrap_or_default()
    }

    /// The text of the first element matching `css`.
    pub async fn text_of(&self, css: &str) -> String {
        let element = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        element.text().await.expect("text")
    }

    /// Waits until the text of `css` contains `text`.
    pub async fn wait_text(&self, css: &str, text: &str, limit: Duration) {
        let what = format!("{css} shows {text:?}");
        keel_testkit::eventually(&what, limit, || async {
            match self.client.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.is_ok_and(|t| t.contains(text)),
                Err(_) => false,
            }
        })
        .await;
    }

    /// Saves the page as `name.png` in the screenshot directory.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("write the screenshot");
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// A session on the chromedriver at `port`, once it listens; `None` when it exits first (the
/// port was taken) or does not answer within 20 s.
async fn connect(port: u16, chromium: &std::path::Path, child: &mut Child) -> Option<Client> {
    let caps = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--no-first-run"],
        }
    });
    let caps = caps.as_object().cloned().unwrap_or_default();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return None;
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            let client = ClientBuilder::new(HttpConnector::new())
                .capabilities(caps)
                .connect(&url)
                .await
                .unwrap_or_else(|e| panic!("chromedriver refused a session: {e}"));
            return Some(client);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}
