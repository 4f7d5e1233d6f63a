//! The connection to the app: HTTP/1.1 with keep-alive, each request carried in the task that
//! serves the client (its connection is driven by the request, then by the answer's body; no
//! task of its own, no hop between tasks), connections kept idle in [`Pool`] between requests,
//! bodies streamed both ways (a chunk is passed on as it arrives; nothing is collected),
//! protocol switches spliced.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, Request, Response};
use hyper_util::rt::TokioIo;

use super::answer::Answer;
use super::failure::Failure;
use super::headers;
use super::link::{Link, Unanswered};
use super::pool::Pool;
use super::upload::{Progress, Upload, UploadState};

/// The connections to the app.
#[derive(Debug)]
pub struct Upstream {
    pool: Arc<Pool>,
}

impl Upstream {
    /// Connections to `target` (`host:port`), each opened within `connect_timeout`.
    pub fn new(target: String, connect_timeout: Duration) -> Upstream {
        Upstream {
            pool: Arc::new(Pool::new(target, connect_timeout)),
        }
    }

    /// Sends `req` and waits for the answer's head: at most `timeout` from when the client's body
    /// has been sent (while it is still arriving, the client's own pauses are what is timed).
    pub async fn send(
        &self,
        req: Request<Upload>,
        upload: Option<Arc<UploadState>>,
        timeout: Duration,
    ) -> Result<Response<Answer>, Failure> {
        let answer = self.exchange(req, upload.is_none());
        tokio::pin!(answer);
        let sleep = tokio::time::sleep(timeout);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                biased;
                result = &mut answer => {
                    return result.map_err(|failure| classify(failure, upload.as_deref()));
                }
                () = &mut sleep => {
                    if upload.as_deref().is_some_and(|u| u.progress() == Progress::Streaming) {
                        sleep.as_mut().reset(tokio::time::Instant::now() + timeout);
                        continue;
                    }
                    return Err(Failure::Timeout);
                }
            }
        }
    }

    /// `req` on an idle connection, or a new one. A connection the app closed while idle can
    /// fail the request that reuses it: the request goes once more on a new connection when
    /// nothing of it was taken, or when it has no body, may be repeated (RFC 9110 §9.2.2), no
    /// byte of an answer arrived and the connection had been idle long enough for the app's
    /// keep-alive timeout (only then is the request kept to be sent again).
    async fn exchange(
        &self,
        req: Request<Upload>,
        bodiless: bool,
    ) -> Result<Response<Answer>, Failure> {
        if headers::is_upgrade(req.headers()) {
            return self.switch(req).await;
        }
        let mut link = match self.pool.take() {
            Some(link) => link,
            None => self.pool.open().await?,
        };
        let repeatable = bodiless && idempotent(req.method());
        let copy = (repeatable && link.idle.is_some_and(|idle| idle >= MAY_HAVE_TIMED_OUT))
            .then(|| copy(&req));
        let req = match (link.request(req).await, copy) {
            (Ok(answer), _) => return Ok(self.answer(answer, link)),
            (Err(Unanswered::Unsent(req)), _) if link.idle.is_some() => *req,
            (Err(Unanswered::Failed { heard: false }), Some(copy)) => copy,
            (Err(_), _) => return Err(Failure::Broken),
        };
        drop(link);
        let mut link = self.pool.open().await?;
        match link.request(req).await {
            Ok(answer) => Ok(self.answer(answer, link)),
            Err(_) => Err(Failure::Broken),
        }
    }

    fn answer(&self, answer: Response<hyper::body::Incoming>, link: Link) -> Response<Answer> {
        answer.map(|body| Answer::pooled(body, link, self.pool.clone()))
    }

    /// A request that may switch protocols, on a connection of its own that is never pooled: its
    /// task hands the connection over once the app switches.
    async fn switch(&self, req: Request<Upload>) -> Result<Response<Answer>, Failure> {
        let stream = self.pool.open_stream().await?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Failure::Connect)?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "a switching connection to the app failed");
            }
        });
        let answer = send.send_request(req).await.map_err(|e| {
            tracing::debug!(error = %e, "a request to the app failed");
            Failure::Broken
        })?;
        Ok(answer.map(Answer::direct))
    }
}

/// Idle this long, a connection may have met the app's keep-alive timeout just as a request
/// went out on it (the shortest in common servers are a few seconds).
const MAY_HAVE_TIMED_OUT: Duration = Duration::from_secs(1);

/// Whether a request with this method may be repeated with the same effect (RFC 9110 §9.2.2).
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// A bodiless request again, to repeat it.
fn copy(req: &Request<Upload>) -> Request<Upload> {
    let mut copy = Request::new(Upload::empty());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    copy
}

/// The failure the client's body caused, if it did; `failure` otherwise.
fn classify(failure: Failure, upload: Option<&UploadState>) -> Failure {
    match upload.map(UploadState::progress) {
        Some(Progress::Stalled) => Failure::ClientStalled,
        Some(Progress::Aborted) => Failure::ClientAborted,
        Some(Progress::TooLarge) => Failure::TooLarge,
        _ => failure,
    }
}

/// Once both sides have switched protocols, copies bytes both ways until either closes.
pub fn splice(client: hyper::upgrade::OnUpgrade, app: hyper::upgrade::OnUpgrade) {
    tokio::spawn(async move {
        let (client, app) = match tokio::try_join!(client, app) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "protocol switch not completed");
                return;
            }
        };
        let (mut client, mut app) = (TokioIo::new(client), TokioIo::new(app));
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut app).await {
            tracing::debug!(error = %e, "switched connection ended with an error");
        }
    });
}
