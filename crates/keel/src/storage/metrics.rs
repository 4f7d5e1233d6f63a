//! The storage families of `/metrics`: operations by outcome, and bytes moved.

/// Counts one backend operation.
pub fn operation(op: &'static str, outcome: &'static str) {
    crate::metrics::global()
        .storage_operations
        .inc(&[op, outcome]);
}

/// Counts bytes Keel moved to or from the backend.
pub fn bytes(op: &'static str, n: u64) {
    crate::metrics::global()
        .storage_bytes
        .add(&[op], i64::try_from(n).unwrap_or(i64::MAX));
}
