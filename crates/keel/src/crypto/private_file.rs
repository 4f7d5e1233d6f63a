//! Files of development secrets, created once by whichever process comes first: written whole
//! to a temporary name, then linked into place, so a process starting at the same moment reads
//! either nothing or the complete file, never half of it.

use std::io::{ErrorKind, Write};
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};

/// Publishes `text` at `path`, owner-only, unless a file is there already. `Ok(true)`: this call
/// created it; `Ok(false)`: another process did first (read theirs).
pub fn publish_once(path: &Path, text: &str) -> std::io::Result<bool> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut suffix = [0u8; 8];
    SystemRandom::new()
        .fill(&mut suffix)
        .map_err(|_| std::io::Error::other("no randomness available"))?;
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staged = dir.join(format!(".{name}.{suffix}.tmp"));
    write_new(&staged, text)?;
    let linked = std::fs::hard_link(&staged, path);
    let _ = std::fs::remove_file(&staged);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        // A file system without hard links: create the file in place instead.
        Err(_) => match write_new(path, text) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        },
    }
}

/// Creates `path` owner-only, failing with `AlreadyExists` rather than overwriting it.
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::publish_once;

    #[test]
    fn the_first_writer_wins_and_the_rest_read_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.key");
        let created: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let path = path.clone();
                    s.spawn(move || publish_once(&path, &format!("key-{i}")).unwrap())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(created.iter().filter(|c| **c).count(), 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("key-"), "{text}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no staged file is left behind");
    }
}
