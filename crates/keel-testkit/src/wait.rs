//! Bounded waits: poll a condition until it holds, or fail the test saying what did not happen.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often [`eventually`] checks again.
const POLL: Duration = Duration::from_millis(50);

/// What a check of [`eventually`] answers: `true` or `Some(value)` when it holds.
pub trait Condition {
    type Value;

    /// The value once the condition holds, `None` while it does not.
    fn holds(self) -> Option<Self::Value>;
}

impl Condition for bool {
    type Value = ();

    fn holds(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Condition for Option<T> {
    type Value = T;

    fn holds(self) -> Option<T> {
        self
    }
}

/// Polls `check` every 50 ms until it holds (`true`, or `Some(value)`) and returns its value;
/// fails the test with `what` when `limit` passes first.
pub async fn eventually<C, F, Fut>(what: &str, limit: Duration, mut check: F) -> C::Value
where
    C: Condition,
    F: FnMut() -> Fut,
    Fut: Future<Output = C>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await.holds() {
            return value;
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(POLL).await;
    }
}
