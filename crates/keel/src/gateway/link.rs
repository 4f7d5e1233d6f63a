//! One HTTP/1.1 connection to the app. It has no task of its own: whoever uses it drives it (the
//! request waiting for its answer, then the answer's body), so a request and its answer are
//! carried in the task that serves the client. The wakes hyper gives from inside that polling
//! (the answer's head handed over, a chunk of its body, the body asking for more) are taken in
//! place, polling again, rather than rescheduling the task. It notes whether anything was read
//! since its request went out, which tells a failure before the answer began from one during it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use axum::http::{Request, Response};
use futures_util::task::AtomicWaker;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::upload::Upload;

/// How long an idle connection is kept, and the idle time before TCP keep-alive probes start.
pub const POOL_IDLE: Duration = Duration::from_secs(60);

/// Opens a TCP connection to `target` (`host:port`) within `timeout`: `TCP_NODELAY` (small
/// requests and answers leave at once rather than waiting on Nagle's algorithm) and keep-alive.
pub async fn connect(target: &str, timeout: Duration) -> io::Result<TcpStream> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(target))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new().with_time(POOL_IDLE);
    socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
    Ok(stream)
}

/// How many times one poll goes round for wakes given while it ran (an answer takes two: its
/// body asks for data, then gets it); past that, the task is woken to run again later.
const ROUNDS: usize = 4;

type Conn = Connection<TokioIo<Heard>, Upload>;

/// A connection to the app and the sender of its requests.
pub struct Link {
    send: SendRequest<Upload>,
    /// `None` once the connection has ended (closed by either side, or failed). Boxed: the
    /// link moves in and out of the pool and the answer with every request.
    conn: Option<Box<Conn>>,
    heard: Arc<AtomicBool>,
    wakes: Arc<Wakes>,
    /// The waker the connection and the answer are polled with: `wakes`.
    waker: Waker,
    /// How long it had been idle when taken from the pool; `None` while it serves its first
    /// request.
    pub idle: Option<Duration>,
    /// When it was last put back idle.
    pub idle_since: Instant,
}

/// Why a request got no answer on a link.
pub enum Unanswered {
    /// The connection ended before the request was taken from it: nothing reached the app.
    Unsent(Box<Request<Upload>>),
    /// The request was sent, or part of it; `heard` is whether any byte of an answer arrived.
    Failed { heard: bool },
}

impl Link {
    /// A link over `stream`, a fresh connection.
    pub async fn open(stream: TcpStream) -> Result<Link, hyper::Error> {
        let heard = Arc::new(AtomicBool::new(false));
        let io = TokioIo::new(Heard {
            stream,
            heard: heard.clone(),
        });
        let (send, conn) = http1::handshake(io).await?;
        let wakes = Arc::new(Wakes {
            state: AtomicU8::new(IDLE),
            task: AtomicWaker::new(),
        });
        Ok(Link {
            send,
            conn: Some(Box::new(conn)),
            heard,
            waker: Waker::from(wakes.clone()),
            wakes,
            idle: None,
            idle_since: Instant::now(),
        })
    }

    /// Polls `f` (the wait for the answer, or its body) with the connection driven before it,
    /// in the caller's task. A wake given while they run makes them run again, up to [`ROUNDS`]
    /// times; a wake given later reaches the caller's task.
    pub fn poll_along<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut f: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let Link {
            conn, wakes, waker, ..
        } = self;
        wakes.task.register(cx.waker());
        let mut inner = Context::from_waker(waker);
        for _ in 0..ROUNDS {
            wakes.state.store(POLLING, Ordering::SeqCst);
            drive(conn, &mut inner);
            let poll = f(&mut inner);
            let woken = wakes.state.swap(IDLE, Ordering::SeqCst) == WOKEN;
            match poll {
                Poll::Ready(value) => {
                    if woken {
                        // The wake may have been the connection's: it runs once more.
                        wakes.state.store(POLLING, Ordering::SeqCst);
                        drive(conn, &mut inner);
                        if wakes.state.swap(IDLE, Ordering::SeqCst) == WOKEN {
                            cx.waker().wake_by_ref();
                        }
                    }
                    return Poll::Ready(value);
                }
                Poll::Pending if !woken => return Poll::Pending,
                Poll::Pending => {}
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Whether it can carry another request now: still open (a close by the app that has
    /// arrived is noticed here), with the last exchange complete. Nothing is woken by what it
    /// waits for afterwards.
    pub fn reusable(&mut self) -> bool {
        drive(&mut self.conn, &mut Context::from_waker(Waker::noop()));
        self.ready()
    }

    /// Whether, when it was last driven, it was open and waiting for another request.
    pub fn ready(&self) -> bool {
        self.conn.is_some() && self.send.is_ready()
    }

    /// Sends `req` and waits for the answer's head, driving the connection meanwhile (writing
    /// the request and its body, reading the answer).
    pub async fn request(
        &mut self,
        req: Request<Upload>,
    ) -> Result<Response<Incoming>, Unanswered> {
        self.heard.store(false, Ordering::Relaxed);
        let mut answer = std::pin::pin!(self.send.try_send_request(req));
        let result =
            std::future::poll_fn(|cx| self.poll_along(cx, |inner| answer.as_mut().poll(inner)))
                .await;
        result.map_err(|mut e| match e.take_message() {
            Some(req) => Unanswered::Unsent(Box::new(req)),
            None => {
                tracing::debug!(error = %e.error(), "a request to the app failed");
                Unanswered::Failed {
                    heard: self.heard.load(Ordering::Relaxed),
                }
            }
        })
    }
}

/// Reads and writes what the connection can now; once it has ended it is dropped.
fn drive(conn: &mut Option<Box<Conn>>, cx: &mut Context<'_>) {
    if let Some(open) = conn.as_mut() {
        if let Poll::Ready(result) = Pin::new(&mut **open).poll(cx) {
            if let Err(e) = result {
                tracing::debug!(error = %e, "a connection to the app failed");
            }
            // Dropping it fails whatever still waited on it.
            *conn = None;
        }
    }
}

const IDLE: u8 = 0;
const POLLING: u8 = 1;
const WOKEN: u8 = 2;

/// The wakes of a link's connection and answer: while the link is polled they are noted (the
/// poll goes round again), otherwise they reach the task that polled it last.
struct Wakes {
    state: AtomicU8,
    task: AtomicWaker,
}

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let noted = self
            .state
            .compare_exchange(POLLING, WOKEN, Ordering::SeqCst, Ordering::SeqCst);
        if let Err(IDLE) = noted {
            self.task.wake();
        }
    }
}

/// The socket, noting when bytes are read from it.
struct Heard {
    stream: TcpStream,
    heard: Arc<AtomicBool>,
}

impl AsyncRead for Heard {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.heard.store(true, Ordering::Relaxed);
        }
        poll
    }
}

impl AsyncWrite for Heard {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
