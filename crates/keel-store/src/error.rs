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
