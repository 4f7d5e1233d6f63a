//! The app's side of Keel's signed deliveries, for tests: a real HTTP server on a free port that
//! records every request it gets (headers and body) and answers as the test scripts it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::Notify;

use crate::fake_server::{self, FakeServer};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Delivery {
    /// The value of header `name`, or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The body as JSON; panics when it is not (a test harness).
    pub fn json(&self) -> serde_json::Value {
        match serde_json::from_slice(&self.body) {
            Ok(value) => value,
            Err(e) => panic!("the delivery is not JSON: {e}"),
        }
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// This status, these headers and this body.
    Status {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// No answer until the receiver is released (or the client gives up).
    Hold,
}

impl Answer {
    pub fn status(status: u16, body: &str) -> Self {
        Self::Status {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn with_header(self, name: &'static str, value: &str) -> Self {
        match self {
            Self::Status {
                status,
                mut headers,
                body,
            } => {
                headers.push((name, value.into()));
                Self::Status {
                    status,
                    headers,
                    body,
                }
            }
            Self::Hold => Self::Hold,
        }
    }
}

#[derive(Default)]
struct Inner {
    deliveries: Mutex<Vec<Delivery>>,
    script: Mutex<VecDeque<Answer>>,
    /// Answers when the script is empty; 204 unless set.
    otherwise: Mutex<Option<Answer>>,
    release: Notify,
    arrived: Notify,
}

/// A running receiver; dropping it stops the server.
pub struct Receiver {
    inner: Arc<Inner>,
    server: FakeServer,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Receiver {
    /// Starts a receiver on 127.0.0.1 and a free port; panics when it cannot (a test harness).
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let state = inner.clone();
        let router = Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let inner = state.clone();
                async move { answer(&inner, uri.path().to_string(), headers, body).await }
            },
        );
        let server = match fake_server::start(router).await {
            Ok(server) => server,
            Err(e) => panic!("cannot start the receiver: {e}"),
        };
        Self { inner, server }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr)
    }

    /// The next requests get these answers, in order; afterwards the default answer.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        locked(&self.inner.script).extend(answers);
    }

    /// The answer once the script is used up (204 unless set).
    pub fn otherwise(&self, answer: Answer) {
        *locked(&self.inner.otherwise) = Some(answer);
    }

    /// Lets every held request answer 204.
    pub fn release(&self) {
        *locked(&self.inner.otherwise) = None;
        self.inner.release.notify_waiters();
    }

    /// Every request so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        locked(&self.inner.deliveries).clone()
    }

    pub fn count(&self) -> usize {
        locked(&self.inner.deliveries).len()
    }

    /// Waits until at least `n` requests arrived; panics after `limit`.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let arrived = self.inner.arrived.notified();
            let seen = self.deliveries();
            if seen.len() >= n {
                return seen;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "the receiver got {} of {n} deliveries within {limit:?}",
                    self.count()
                );
            }
        }
    }
}

async fn answer(inner: &Inner, path: String, headers: HeaderMap, body: Bytes) -> Response {
    locked(&inner.deliveries).push(Delivery {
        path,
        headers,
        body,
    });
    inner.arrived.notify_waiters();
    let next = locked(&inner.script).pop_front();
    let answer = next.or_else(|| locked(&inner.otherwise).clone());
    match answer {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(Answer::Hold) => {
            inner.release.notified().await;
            StatusCode::NO_CONTENT.into_response()
        }
        Some(Answer::Status {
            status,
            headers,
            body,
        }) => {
            let mut response = body.into_response();
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            for (name, value) in headers {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response
                        .headers_mut()
                        .insert(HeaderName::from_static(name), value);
                }
            }
            response
        }
    }
}
