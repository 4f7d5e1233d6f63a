//! One connection's socket as hyper reads and writes it. It is shared with the task that serves
//! the connection, so that at shutdown that task can see whether a request is waiting unread
//! (and must be answered) before closing an idle connection. The answers hyper makes on its own to
//! a request head it cannot read (400, 414, 431: an empty body, no content type) leave as
//! problem+json like every other 4xx.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::middleware::request_id;
use super::problem::{ApiError, PROBLEM_CONTENT_TYPE};

/// A connection's socket, shared between hyper and the connection's task.
pub struct ConnIo {
    stream: Arc<TcpStream>,
    /// A problem answer being written in place of hyper's bare one, and how much is written.
    replacement: Option<(Vec<u8>, usize)>,
}

impl ConnIo {
    pub fn new(stream: Arc<TcpStream>) -> Self {
        Self {
            stream,
            replacement: None,
        }
    }
}

/// Whether bytes the server has not read yet wait on `stream` (a request sent, not yet parsed).
/// The end of the stream and errors are not waiting input.
pub fn has_unread_input(stream: &TcpStream) -> bool {
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    matches!(socket2::SockRef::from(stream).peek(&mut byte), Ok(n) if n > 0)
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            // Into the buffer's uninitialized room as it is: hyper hands over kilobytes at a
            // time, and zeroing them first would cost more than the read.
            match self.stream.try_read_buf(buf) {
                Ok(_) => return Poll::Ready(Ok(())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replacement.is_none() {
            if let Some(problem) = problem_for_bare_error(buf) {
                self.replacement = Some((problem, 0));
            }
        }
        if self.replacement.is_some() {
            // hyper's bytes count as written once the problem in their place is.
            ready!(self.as_mut().poll_replacement(cx))?;
            self.replacement = None;
            return Poll::Ready(Ok(buf.len()));
        }
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(socket2::SockRef::from(&*self.stream).shutdown(std::net::Shutdown::Write))
    }
}

impl ConnIo {
    fn poll_replacement(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some((bytes, written)) = this.replacement.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        while *written < bytes.len() {
            ready!(this.stream.poll_write_ready(cx))?;
            match this.stream.try_write(&bytes[*written..]) {
                Ok(n) => *written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// The problem answer to write instead of `head`, when `head` is one of hyper's own bodiless
/// refusals: a whole 4xx response head with `content-length: 0` and no content type. Keel's own
/// 4xx answers always carry a problem body, so they never match.
fn problem_for_bare_error(head: &[u8]) -> Option<Vec<u8>> {
    if !(head.starts_with(b"HTTP/1.1 4") || head.starts_with(b"HTTP/1.0 4"))
        || !head.ends_with(b"\r\n\r\n")
    {
        return None;
    }
    let original = std::str::from_utf8(head).ok()?;
    let text = original.to_ascii_lowercase();
    if !text.contains("\r\ncontent-length: 0\r\n") || text.contains("\r\ncontent-type:") {
        return None;
    }
    let status = text.get(9..12)?.parse::<u16>().ok()?;
    let status = StatusCode::from_u16(status).ok()?;
    let detail = match status.as_u16() {
        431 => "The request's header fields are larger than this server accepts.",
        414 => "The request's target is longer than this server accepts.",
        _ => "The request's head could not be read: a malformed request line or header field (such as a control character in a header value).",
    };
    let date = original
        .split("\r\n")
        .find(|line| line.to_ascii_lowercase().starts_with("date:"))
        .map(|line| format!("{line}\r\n"))
        .unwrap_or_default();
    Some(request_id::with_new(|id| {
        let slug = if status == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE {
            "headers-too-large"
        } else {
            ApiError::from_status(status).slug
        };
        let problem = ApiError {
            slug,
            detail: detail.to_string(),
            ..ApiError::from_status(status)
        };
        let body = problem.body_json();
        let mut out = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: {PROBLEM_CONTENT_TYPE}\r\ncontent-length: {}\r\n\
             x-content-type-options: nosniff\r\nx-request-id: {}\r\nconnection: close\r\n{date}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len(),
            id.to_str().unwrap_or_default(),
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_refusals_become_problems_and_keel_answers_stay() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 10:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(problem_for_bare_error(bare).unwrap()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
        assert!(answer.contains("content-type: application/problem+json\r\n"));
        assert!(answer.contains("date: Wed, 02 Dec 2026"));
        assert!(answer.contains("\"type\":\"https://keel.dev/problems/headers-too-large\""));
        let bad = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        let answer = String::from_utf8(problem_for_bare_error(bad).unwrap()).unwrap();
        assert!(answer.contains("malformed-request"), "{answer}");

        let ours = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/problem+json\r\ncontent-length: 0\r\n\r\n";
        assert!(problem_for_bare_error(ours).is_none());
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}";
        assert!(problem_for_bare_error(with_body).is_none());
        assert!(problem_for_bare_error(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
