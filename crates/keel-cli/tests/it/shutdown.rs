//! SIGTERM under keep-alive, as a real `keel serve` process sees it: every request sent before
//! the signal gets a whole answer (one still being uploaded, and ones written just before it on
//! idle keep-alive connections), idle keep-alive connections are closed cleanly, and the process
//! exits 0.

use crate::common;

use std::time::Duration;

use common::bin;
use keel_testkit::{eventually, KeelProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN: &str = "admin-token-for-shutdown-tests-0123456789";
/// Connections that each send a request just before SIGTERM.
const RACING: usize = 16;

/// Reads one response (head and a `content-length` body) from `stream`; `None` when the stream
/// ends first. Panics on a read error such as a reset.
async fn read_response(stream: &mut TcpStream, buffered: &mut Vec<u8>) -> Option<(u16, String)> {
    loop {
        if let Some(end) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffered[..end]).to_ascii_lowercase();
            let length: usize = head
                .split("\r\n")
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().expect("content-length"));
            if buffered.len() >= end + 4 + length {
                buffered.drain(..end + 4 + length);
                return Some((head[9..12].parse().expect("status"), head));
            }
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) => {
                assert!(buffered.is_empty(), "a partial answer: {buffered:?}");
                return None;
            }
            Ok(n) => buffered.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("the connection failed instead of answering or closing: {e}"),
        }
    }
}

const LIVE: &[u8] = b"GET /health/live HTTP/1.1\r\nhost: keel\r\n\r\n";

/// A connection that has had one answer and is now idle, kept alive.
async fn idle_connection(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream.write_all(LIVE).await.expect("write");
    let answer = read_response(&mut stream, &mut Vec::new()).await;
    assert_eq!(answer.map(|a| a.0), Some(200));
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_every_request_already_sent_and_closes_idle_connections() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = KeelProcess::serve(&bin(), dir.path(), &[("ADMIN_TOKEN", ADMIN)], &[]);
    server.wait_ready(Duration::from_secs(30)).await;
    let port = server.port;

    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(idle_connection(port).await);
    }
    let mut racing = Vec::new();
    for _ in 0..RACING {
        racing.push(idle_connection(port).await);
    }
    // An enqueue whose body is still being uploaded when the signal comes.
    let body = br#"{"kind":"diag.noop","queue":"default"}"#;
    let mut uploading = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!(
        "POST /admin/api/jobs HTTP/1.1\r\nhost: keel\r\nauthorization: Bearer {ADMIN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    uploading.write_all(head.as_bytes()).await.expect("write");
    uploading.write_all(&body[..10]).await.expect("write");
    // Requests written on idle keep-alive connections immediately before the signal.
    for stream in &mut racing {
        stream.write_all(LIVE).await.expect("write");
    }
    server.signal("TERM");

    // Once the listener is closed, the rest of the upload follows.
    eventually("the listener closes", Duration::from_secs(30), || async {
        TcpStream::connect(("127.0.0.1", port)).await.is_err()
    })
    .await;
    uploading
        .write_all(&body[10..])
        .await
        .expect("write the rest");
    let (status, head) = read_response(&mut uploading, &mut Vec::new())
        .await
        .expect("the upload is answered");
    assert_eq!(status, 201, "{head}\n{}", server.logs());
    assert!(head.contains("\r\nconnection: close"), "{head}");

    for stream in &mut racing {
        let mut buffered = Vec::new();
        let answer = read_response(stream, &mut buffered).await;
        assert_eq!(
            answer.as_ref().map(|a| a.0),
            Some(200),
            "a request sent before SIGTERM was not answered: {answer:?}\n{}",
            server.logs()
        );
        assert!(read_response(stream, &mut buffered).await.is_none());
    }
    for stream in &mut idle {
        assert!(read_response(stream, &mut Vec::new()).await.is_none());
    }
    let status = server.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "{}", server.logs());
    assert!(!server.logs().contains("panicked"), "{}", server.logs());
}

/// One `GET path` on a new connection: the status and the head in lower case.
async fn get_once(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: keel\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    read_response(&mut stream, &mut Vec::new()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_during_the_drain_close_keep_alive_connections() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let env = [("SHUTDOWN_DRAIN_SECONDS", "10")];
    let mut server = KeelProcess::serve(&bin(), dir.path(), &env, &[]);
    server.wait_ready(Duration::from_secs(30)).await;
    let port = server.port;
    let mut kept = idle_connection(port).await;

    server.signal("TERM");
    let (_, head) = eventually("readiness turns 503", Duration::from_secs(10), || async {
        get_once(port, "/health/ready")
            .await
            .filter(|(status, _)| *status == 503)
    })
    .await;
    assert!(head.contains("\r\nconnection: close"), "{head}");
    // The idle keep-alive connection's next answer is its last.
    kept.write_all(LIVE).await.expect("write");
    let mut buffered = Vec::new();
    let (status, head) = read_response(&mut kept, &mut buffered)
        .await
        .expect("an answer");
    assert_eq!(status, 200);
    assert!(head.contains("\r\nconnection: close"), "{head}");
    assert!(read_response(&mut kept, &mut buffered).await.is_none());

    let status = server.wait_exit(Duration::from_secs(40)).await;
    assert_eq!(status.code(), Some(0), "{}", server.logs());
}
