//! Small cryptographic helpers shared across layers, and [`Sealer`] for data encrypted at rest.

mod dev_key;
pub mod keys;
pub mod private_file;
mod seal;
pub mod standard_webhooks;

pub use keys::DataKey;
pub use seal::{SealError, Sealer};

use sha2::{Digest, Sha256};

/// Compares two secrets in constant time. Both sides are hashed first, so neither the position
/// of the first difference nor the expected secret's length shows in the timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn equal_only_when_identical() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secrets"));
        assert!(constant_time_eq(b"", b""));
    }
}
