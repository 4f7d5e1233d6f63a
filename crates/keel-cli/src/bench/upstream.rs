//! `keel bench upstream`: the app behind the gateway benchmark (`bench/gateway.sh`). Every
//! request is answered at once with 200 and a small JSON body, so what is measured is what stands
//! in front of it.

use axum::http::header;
use axum::serve::ListenerExt;
use axum::Router;

const BODY: &str = r#"{"ok":true}"#;

/// Serves on `127.0.0.1:port` until the process is stopped.
pub async fn serve(port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await?
        .tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
    let app =
        Router::new().fallback(|| async { ([(header::CONTENT_TYPE, "application/json")], BODY) });
    println!("upstream listening on 127.0.0.1:{port}");
    axum::serve(listener, app).await
}
