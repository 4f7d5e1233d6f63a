//! How a pool checks a connection before handing it out: a ping only when the connection sat idle
//! for [`IDLE_PING_AFTER`] or longer. A connection in steady use is not pinged on every checkout
//! (that is a round trip before every transaction); one that waited long enough for the server or
//! the network to have dropped it is, and a failed ping discards it, so the caller gets another.

use std::time::Duration;

use sqlx::pool::PoolOptions;
use sqlx::{Connection, Database};

/// Idle this long or longer, a connection is pinged before it is handed out.
pub(crate) const IDLE_PING_AFTER: Duration = Duration::from_secs(1);

pub(crate) fn ping_when_idle<DB: Database>(options: PoolOptions<DB>) -> PoolOptions<DB> {
    options
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_PING_AFTER {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}
