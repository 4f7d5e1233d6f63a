//! The development data key: generated once into `data_dir/data-encryption.key` (owner-only),
//! used when no `DATA_ENCRYPTION_KEYS` are configured outside production.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

use super::keys::{self, DataKey};
use super::SealError;

/// The key file's name inside the data directory.
const FILE_NAME: &str = "data-encryption.key";
/// How often to re-read a file another process has created but not yet written.
const READ_ATTEMPTS: u32 = 50;
const READ_PAUSE: Duration = Duration::from_millis(20);

/// The development key file's path.
pub(super) fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The keys in the development key file, creating it (one fresh key) when it does not exist.
pub(super) fn load_or_create(data_dir: &Path) -> Result<Vec<DataKey>, SealError> {
    let path = key_path(data_dir);
    if path.exists() {
        return read(&path);
    }
    std::fs::create_dir_all(data_dir)
        .map_err(|e| SealError::KeyFile(format!("cannot create {}: {e}", data_dir.display())))?;
    let line = generate()?;
    match super::private_file::publish_once(&path, &line) {
        Ok(true) => {
            tracing::info!(path = %path.display(), "generated a development data encryption key");
            read(&path)
        }
        // Another process created it first: use the key that won.
        Ok(false) => read(&path),
        Err(e) => Err(SealError::KeyFile(format!(
            "cannot write {}: {e}",
            path.display()
        ))),
    }
}

/// A fresh `kid:base64` line: `dev-` and 8 hex characters, and 32 random bytes.
fn generate() -> Result<String, SealError> {
    let rng = SystemRandom::new();
    let mut kid = [0u8; 4];
    let mut key = [0u8; 32];
    rng.fill(&mut kid).map_err(|_| SealError::Random)?;
    rng.fill(&mut key).map_err(|_| SealError::Random)?;
    let kid: String = kid.iter().map(|b| format!("{b:02x}")).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(key);
    Ok(format!("dev-{kid}:{encoded}\n"))
}

/// Parses the key file, waiting briefly while it is empty (another process is writing it).
fn read(path: &Path) -> Result<Vec<DataKey>, SealError> {
    let mut attempt = 0;
    let text = loop {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SealError::KeyFile(format!("cannot read {}: {e}", path.display())))?;
        attempt += 1;
        if !text.trim().is_empty() || attempt >= READ_ATTEMPTS {
            break text;
        }
        std::thread::sleep(READ_PAUSE);
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(SealError::KeyFile(format!(
            "{} is empty; delete it to generate a new key",
            path.display()
        )));
    }
    let (parsed, problems) = keys::parse(text);
    if !problems.is_empty() || parsed.is_empty() {
        return Err(SealError::KeyFile(format!(
            "{} is not kid:base64 ({})",
            path.display(),
            problems.join("; ")
        )));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use crate::crypto::{SealError, Sealer};

    use super::*;

    #[test]
    fn generates_once_then_reads_the_same_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("nested").join("data");
        let path = key_path(&data_dir);
        assert!(!path.exists());

        let first = Sealer::configured(&[], Some(&data_dir)).expect("first");
        assert!(path.exists());
        let kid = first.current_key_id().to_string();
        assert!(kid.starts_with("dev-") && kid.len() == 12, "{kid}");
        assert!(kid[4..]
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 1);
        assert!(text.starts_with(&format!("{kid}:")));

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let sealed = first.seal(b"value", b"aad").expect("seal");
        let second = Sealer::configured(&[], Some(&data_dir)).expect("second");
        assert_eq!(second.current_key_id(), kid);
        assert_eq!(second.open(&sealed, b"aad").expect("open"), b"value");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
    }

    #[test]
    fn concurrent_starts_agree_on_one_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("data");
        let ids: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| load_or_create(&data_dir)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    let keys = h.join().expect("thread").expect("key");
                    keys[0].id.clone()
                })
                .collect()
        });
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    }

    #[test]
    fn configured_keys_win_and_production_needs_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("data");
        let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        let (keys, problems) = keys::parse(&format!("k2:{key},k1:{key}"));
        assert!(problems.is_empty(), "{problems:?}");
        let sealer = Sealer::configured(&keys, Some(&data_dir)).expect("configured");
        assert_eq!(sealer.key_ids(), vec!["k2", "k1"]);
        assert!(!key_path(&data_dir).exists());

        // Production passes no development key directory.
        assert!(matches!(
            Sealer::configured(&[], None),
            Err(SealError::NoKeys)
        ));
        assert!(!key_path(&data_dir).exists());
    }

    #[test]
    fn a_bad_key_file_is_an_error_without_its_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(key_path(dir.path()), "dev-1:c2VjcmV0\n").expect("write");
        match load_or_create(dir.path()) {
            Err(SealError::KeyFile(message)) => {
                assert!(!message.contains("c2VjcmV0"), "{message}")
            }
            other => panic!("expected KeyFile, got {other:?}"),
        }
    }
}
