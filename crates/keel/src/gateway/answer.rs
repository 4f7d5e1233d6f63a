//! The app's answer body on its way to the client. Its connection is driven whenever the body is
//! polled, so the answer streams in the task that serves the client, each chunk passed on as it
//! arrives. Once the body has ended with the connection still open, the connection goes back to
//! the pool; a body dropped before its end, or one that failed, closes it, so no connection is
//! reused half-read.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use axum::body::Bytes;
use hyper::body::{Body as _, Frame, Incoming, SizeHint};

use super::link::Link;
use super::pool::Pool;

pub struct Answer {
    body: Incoming,
    /// The connection the body arrives on and its pool, while this body drives it.
    held: Option<(Link, Arc<Pool>)>,
}

impl Answer {
    /// A body arriving on `link`, which goes back to `pool` after the body's end.
    pub fn pooled(body: Incoming, link: Link, pool: Arc<Pool>) -> Answer {
        Answer {
            body,
            held: Some((link, pool)),
        }
    }

    /// A body whose connection is driven elsewhere (a connection that may switch protocols).
    pub fn direct(body: Incoming) -> Answer {
        Answer { body, held: None }
    }

    /// The body has ended: its connection goes back to the pool if it can carry another request.
    fn release(&mut self) {
        if let Some((link, pool)) = self.held.take() {
            pool.put(link);
        }
    }
}

impl hyper::body::Body for Answer {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let body = &mut this.body;
        let frame = match this.held.as_mut() {
            Some((link, _)) => {
                ready!(link.poll_along(cx, |inner| Pin::new(&mut *body).poll_frame(inner)))
            }
            None => ready!(Pin::new(body).poll_frame(cx)),
        };
        match &frame {
            Some(Ok(_)) if !this.body.is_end_stream() => {}
            Some(Ok(_)) | None => this.release(),
            // Dropping the connection closes it.
            Some(Err(_)) => this.held = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        // An empty answer (a 204, an answer to HEAD) may end without being polled.
        if self.body.is_end_stream() {
            self.release();
        }
    }
}
