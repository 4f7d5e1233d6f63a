//! Bodies and connections through the gateway across real processes: a 100 MB upload and
//! download stream both ways with the `keel` process's memory bounded, and WebSocket messages and
//! server-sent events pass through to the app and back.

use crate::gateway::{fresh_connections, keel_in_front, token, LIMIT};
use crate::gateway_support::{self, Upstream};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

const HUNDRED_MB: u64 = 100 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_upload_and_download_stream_through_in_bounded_memory() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let keel = keel_in_front(dir.path(), &upstream.url(), "", &[]).await;
    let pid = keel.child.id();
    let ada = token("ada");
    let client = fresh_connections();
    // Warm: a connection to the app exists and the token is cached.
    let warm = client
        .get(keel.url("/api/whoami"))
        .bearer_auth(&ada)
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);
    let before = status_kb(pid, "VmRSS:");
    // The peak is measured from here (writing 5 to clear_refs resets it).
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset the peak RSS");

    // Upload: 100 MB written 64 KiB at a time; the app counts what arrives.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", keel.port))
        .await
        .unwrap();
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nhost: keel\r\nauthorization: Bearer {ada}\r\n\
         content-length: {HUNDRED_MB}\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'u'; 64 * 1024];
    for _ in 0..HUNDRED_MB / chunk.len() as u64 {
        stream.write_all(&chunk).await.unwrap();
    }
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(&HUNDRED_MB.to_string()), "{answer}");

    // Download: 100 MB read as it comes.
    let mut download = client
        .get(keel.url(&format!("/api/download?bytes={HUNDRED_MB}")))
        .bearer_auth(&ada)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    let mut received = 0u64;
    while let Some(chunk) = download.chunk().await.unwrap() {
        received += chunk.len() as u64;
    }
    assert_eq!(received, HUNDRED_MB);

    let peak = status_kb(pid, "VmHWM:");
    let growth_mb = peak.saturating_sub(before) as f64 / 1024.0;
    assert!(
        growth_mb < 20.0,
        "keel's resident memory grew {growth_mb:.1} MB (from {before} kB to a peak of {peak} kB)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_messages_and_server_sent_events_pass_through() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let keel = keel_in_front(dir.path(), &upstream.url(), "", &[]).await;
    let ada = token("ada");

    // WebSocket: the handshake through Keel, then messages both ways on the switched connection.
    let mut ws = tokio::net::TcpStream::connect(("127.0.0.1", keel.port))
        .await
        .unwrap();
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let handshake = format!(
        "GET /api/ws HTTP/1.1\r\nhost: keel\r\nauthorization: Bearer {ada}\r\n\
         connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n\
         sec-websocket-key: {key}\r\n\r\n"
    );
    ws.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        ws.read_exact(&mut byte)
            .await
            .expect("the handshake answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    let accept = gateway_support::accept(key.as_bytes()).to_ascii_lowercase();
    assert!(
        head.contains(&format!("sec-websocket-accept: {accept}")),
        "{head}"
    );
    for message in ["hello", "through keel"] {
        let frame = gateway_support::frame(message.as_bytes(), Some([1, 2, 3, 4]));
        ws.write_all(&frame).await.unwrap();
        let echoed = tokio::time::timeout(LIMIT, gateway_support::read_frame(&mut ws))
            .await
            .expect("the echo in time")
            .unwrap();
        assert_eq!(echoed, message.as_bytes());
    }

    // Without a token the handshake is refused like any request.
    let refused = reqwest::Client::new()
        .get(keel.url("/api/ws"))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    // Server-sent events: the first event arrives while the stream is still open.
    let mut events = reqwest::Client::new()
        .get(keel.url("/api/events"))
        .bearer_auth(&ada)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let first = tokio::time::timeout(LIMIT, events.chunk())
        .await
        .expect("the first event before the stream ends")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"data: one\n\n");
    let sender = upstream
        .events
        .lock()
        .await
        .take()
        .expect("the app's event stream");
    sender
        .send(axum::body::Bytes::from_static(b"data: two\n\n"))
        .await
        .unwrap();
    let second = tokio::time::timeout(LIMIT, events.chunk())
        .await
        .expect("the second event")
        .unwrap()
        .unwrap();
    assert_eq!(&second[..], b"data: two\n\n");
    drop(sender);
    let end = tokio::time::timeout(LIMIT, events.chunk())
        .await
        .expect("the end");
    assert!(end.unwrap().is_none());
}
