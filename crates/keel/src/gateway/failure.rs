//! Why a request to the app got no answer from it, and how each case is counted.

/// Why a request could not be answered by the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No connection could be made (refused, unreachable, connect timeout): 502.
    Connect,
    /// The connection failed while the request or the answer's head was under way: 502.
    Broken,
    /// The app did not start its answer within the timeout: 504.
    Timeout,
    /// The client paused longer than the timeout while sending its body: 408.
    ClientStalled,
    /// The client's body broke off: 400.
    ClientAborted,
    /// The client's body went past the rule's limit: 413.
    TooLarge,
}

impl Failure {
    /// The `kind` label of `keel_gateway_upstream_errors_total`, for the app's failures.
    pub fn upstream_kind(self) -> Option<&'static str> {
        match self {
            Failure::Connect => Some("connect"),
            Failure::Broken => Some("broken"),
            Failure::Timeout => Some("timeout"),
            _ => None,
        }
    }
}
