//! The storage layer's one error type.

use crate::store::StoreError;

use super::token::LinkError;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("content type {0:?} may not be uploaded")]
    TypeRefused(String),
    #[error("sent as {sent}, not the {expected} the link names")]
    TypeMismatch { expected: String, sent: String },
    #[error("{size} bytes is more than the {max} allowed")]
    SizeRefused { size: u64, max: u64 },
    #[error("the body is larger than the {max} bytes allowed")]
    TooLarge { max: u64 },
    #[error("the body could not be read: {0}")]
    Body(String),
    #[error("no such object")]
    NotFound,
    #[error("nothing was uploaded yet")]
    NotUploaded,
    #[error("{stored} bytes were uploaded, not the {declared} declared")]
    SizeMismatch { declared: u64, stored: u64 },
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("object storage: {0}")]
    Backend(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
