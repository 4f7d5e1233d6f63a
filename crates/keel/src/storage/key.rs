//! Object keys: the ones Keel chooses for users' uploads, and the checks on keys the app names.

use sha2::{Digest, Sha256};

/// The longest key (S3 allows 1,024 bytes).
pub const MAX_KEY_LEN: usize = 1024;

/// The prefix under which every object of `user_id` is stored: `users/` and 32 hex digits of
/// the SHA-256 of the id, so a key never shows the id itself and any id maps to a valid key.
pub fn user_prefix(user_id: &str) -> String {
    let digest = Sha256::digest(user_id.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("users/{hex}/")
}

/// The key of a new upload of `user_id`.
pub fn user_object(user_id: &str, id: &str) -> String {
    format!("{}{id}", user_prefix(user_id))
}

/// Whether `key` may name an object: 1 to 1,024 bytes of segments of `A-Z a-z 0-9 . _ - = +`
/// and `!`, separated by `/`, none empty or `.`/`..`.
pub fn check(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(format!("a key is 1 to {MAX_KEY_LEN} bytes"));
    }
    for segment in key.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err("a key's segments are not empty, `.` or `..`".into());
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-=+!".contains(&b))
        {
            return Err("a key is made of A-Z a-z 0-9 . _ - = + ! and /".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(check("users/ab/0193.mp3").is_ok());
        for bad in ["", "/a", "a/", "a//b", "a/../b", "a b", "a\u{0}", "é"] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
        assert!(check(&"a".repeat(1025)).is_err());
        let prefix = user_prefix("user-1");
        assert!(prefix.starts_with("users/") && prefix.len() == 6 + 32 + 1);
        assert_ne!(prefix, user_prefix("user-2"));
        assert!(check(&user_object("any / id ..", "x")).is_ok());
    }
}
