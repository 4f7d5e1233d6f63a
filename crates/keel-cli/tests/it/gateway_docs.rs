//! The signature checks docs/GATEWAY.md shows, run as the real app behind a real `keel`: the
//! Python and the Node check each accept Keel's signature and refuse a forgery sent to the app
//! directly.

use crate::gateway::{fresh_connections, keel_in_front, token, SIGNING_SECRET};

const PYTHON_APP: &str = r#"
from http.server import BaseHTTPRequestHandler, HTTPServer
import keel_sig

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        path, _, query = self.path.partition("?")
        scope = {"method": self.command, "raw_path": path.encode("latin-1"),
                 "query_string": query.encode("latin-1")}
        headers = {k.lower(): v for k, v in self.headers.items()}
        ok = keel_sig.from_keel(scope, headers)
        body = b"verified" if ok else b"refused"
        self.send_response(200 if ok else 401)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// The same for the Node check (an Express-like `req`: `method`, `originalUrl`, `get`).
const NODE_APP: &str = r#"
import http from "node:http";
import { fromKeel } from "./keel_sig.mjs";
const server = http.createServer((req, res) => {
  const ok = fromKeel({ method: req.method, originalUrl: req.url, get: (n) => req.headers[n.toLowerCase()] });
  res.writeHead(ok ? 200 : 401);
  res.end(ok ? "verified" : "refused");
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
"#;

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The code block of docs/GATEWAY.md after `heading`, up to `until` when given.
fn documented(heading: &str, fence: &str, until: Option<&str>) -> String {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/GATEWAY.md"),
    )
    .expect("docs/GATEWAY.md");
    let code = doc
        .split_once(&format!("{heading}\n\n```{fence}\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(code, _)| code)
        .unwrap_or_else(|| panic!("no {fence} block after {heading:?} in docs/GATEWAY.md"));
    match until {
        Some(end) => code.split(end).next().unwrap_or(code).to_string(),
        None => code.to_string(),
    }
}

/// Runs `program file` in `dir` (the check's secret in its environment) and returns it with the
/// URL it prints the port of.
fn start_app(dir: &std::path::Path, program: &str, file: &str) -> (Child, String) {
    use std::io::BufRead;
    let mut app = std::process::Command::new(program)
        .arg(file)
        .current_dir(dir)
        .env("UPSTREAM_SIGNING_SECRET", SIGNING_SECRET)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} runs the documented check: {e}"));
    let stdout = app.stdout.take().expect("the app's output");
    let app = Child(app);
    let mut port = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut port)
        .expect("the app's port");
    (app, format!("http://127.0.0.1:{}", port.trim()))
}

/// Keel in front of the app at `app_url`: a request through Keel verifies; one sent to the app
/// directly with a forged identity and signature is refused.
async fn documented_check_holds(dir: &std::path::Path, app_url: &str) {
    let keel = keel_in_front(dir, app_url, "", &[]).await;
    let client = fresh_connections();
    let through_keel = client
        .get(keel.url("/api/a%20b/items?page=2&q=x%2Cy"))
        .bearer_auth(token("ada"))
        .header("x-user-id", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(through_keel.status(), 200);
    assert_eq!(through_keel.text().await.unwrap(), "verified");
    let forged = client
        .get(format!("{app_url}/api/items"))
        .header("x-user-id", "mallory")
        .header(
            "x-keel-signature",
            format!("t={},v1={}", chrono::Utc::now().timestamp(), "0".repeat(64)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(forged.text().await.unwrap(), "refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_python_check_accepts_keels_signature_and_refuses_a_forgery() {
    let dir = tempfile::tempdir().unwrap();
    let check = documented("Python (FastAPI or any ASGI app):", "python", None);
    std::fs::write(dir.path().join("keel_sig.py"), check).unwrap();
    std::fs::write(dir.path().join("app.py"), PYTHON_APP).unwrap();
    let (_app, url) = start_app(dir.path(), "python3", "app.py");
    documented_check_holds(dir.path(), &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_node_check_accepts_keels_signature_and_refuses_a_forgery() {
    let dir = tempfile::tempdir().unwrap();
    let check = documented("Node (Express):", "js", Some("app.use("));
    std::fs::write(dir.path().join("keel_sig.mjs"), check).unwrap();
    std::fs::write(dir.path().join("app.mjs"), NODE_APP).unwrap();
    let (_app, url) = start_app(dir.path(), "node", "app.mjs");
    documented_check_holds(dir.path(), &url).await;
}
