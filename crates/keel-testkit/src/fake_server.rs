//! The HTTP server under each fake third party: a router on a free local port, stopped when the
//! fake's last handle is dropped.

use std::net::SocketAddr;

use axum::Router;
use tokio::sync::oneshot;

/// A running fake server; dropping it stops the server.
#[derive(Debug)]
pub(crate) struct FakeServer {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

/// Serves `router` on 127.0.0.1 and a free port.
pub(crate) async fn start(router: Router) -> std::io::Result<FakeServer> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(FakeServer { addr, _stop: stop })
}
