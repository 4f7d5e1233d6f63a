use std::time::Duration;

/// What the store layer can fail with. Messages never include the connection URL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("invalid database URL: {0}")]
    Url(String),
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
}

impl StoreError {
    /// Whether the database could not be reached or did not answer, rather than refusing the
    /// statement: the pool timed out or is closed, the connection failed, was cut or stopped
    /// speaking the protocol, or the
    /// server is shutting down or not accepting connections (SQLSTATE classes 08, 57P01 to
    /// 57P03). Such a failure passes when the database is back.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Timeout(_) => true,
            StoreError::Url(_) => false,
            StoreError::Database(e) => is_connection_error(e),
        }
    }
}

fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        // The stream did not carry the protocol: a connection cut during the handshake or in the
        // middle of a message (sqlx discards such a connection).
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_unavailability_and_statement_errors_are_not() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(StoreError::Database(sqlx::Error::Io(io)).is_unavailable());
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(StoreError::Timeout(Duration::from_secs(1)).is_unavailable());
        assert!(!StoreError::Database(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!StoreError::Url("x".into()).is_unavailable());
    }
}
