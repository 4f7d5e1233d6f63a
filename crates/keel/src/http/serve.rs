//! The accept loop: HTTP/1.1 with a header read timeout (a client that never finishes its
//! request head is dropped, so it can neither hold a connection nor delay shutdown), and
//! graceful shutdown that answers every request already sent.
//!
//! Shutdown has two steps. From `closing` (the drain), every answer carries `Connection: close`,
//! so clients stop reusing connections. At `stop` the listener closes; each connection with a
//! request in flight finishes it, one with a request waiting unread reads and answers it, and
//! an idle one is closed. The serve future ends when the last connection has.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

use super::conn_io::{has_unread_input, ConnIo};
use super::middleware::input::PARSED_HEADERS;

/// How long a client may take to send a request's head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `service` (an [`axum::Router`], or the [`super::App`] of [`super::router`]) on `listener`
/// until `stop` turns true, then answers what was sent and closes every connection.
pub async fn serve<S>(listener: TcpListener, service: S, stop: watch::Receiver<bool>)
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    serve_draining(listener, service, stop.clone(), stop).await;
}

/// [`serve`], with answers carrying `Connection: close` from the moment `closing` turns true.
pub async fn serve_draining<S>(
    listener: TcpListener,
    service: S,
    closing: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(PARSED_HEADERS);
    let builder = Arc::new(builder);
    // Each connection's task holds a sender; all dropped means all connections ended.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = turned_true(&mut stop) => break,
        };
        let connection = Connection {
            stream: Arc::new(stream),
            peer,
            closing: closing.clone(),
            stop: stop.clone(),
            _open: open_tx.clone(),
        };
        tokio::spawn(connection.serve(builder.clone(), service.clone()));
    }
    drop(listener);
    drop(open_tx);
    let _ = open_rx.recv().await;
}

struct Connection {
    stream: Arc<tokio::net::TcpStream>,
    peer: SocketAddr,
    closing: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
    _open: mpsc::Sender<()>,
}

impl Connection {
    async fn serve<S>(mut self, builder: Arc<hyper::server::conn::http1::Builder>, app: S)
    where
        S: tower::Service<Request, Response = Response, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let (peer, closing) = (self.peer, self.closing.clone());
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let answer = app.clone().oneshot(req.map(Body::new));
            let closing = closing.clone();
            async move {
                let mut response = answer.await?;
                if *closing.borrow() {
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(response)
            }
        });
        let io = TokioIo::new(ConnIo::new(self.stream.clone()));
        // Upgrades: a WebSocket handshake the gateway forwards switches this connection.
        let connection = builder.serve_connection(io, service).with_upgrades();
        tokio::pin!(connection);
        let ended = tokio::select! {
            result = connection.as_mut() => Some(result),
            () = turned_true(&mut self.stop) => None,
        };
        let result = match ended {
            Some(result) => result,
            None => {
                // A request already sent but not yet read is answered (with `Connection: close`)
                // rather than cut off with the connection.
                if !has_unread_input(&self.stream) {
                    connection.as_mut().graceful_shutdown();
                }
                connection.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, peer = %self.peer, "connection ended with an error");
        }
    }
}

/// Waits until `signal` is true (or its sender is gone).
async fn turned_true(signal: &mut watch::Receiver<bool>) {
    let _ = signal.wait_for(|on| *on).await;
}

/// The peer address of a request, when served by [`serve`].
pub fn peer(req: &axum::extract::Request) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}
