//! Files around a backup: the kind of a file, temporary names, publishing without replacing, and
//! the manifest.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{BackupError, Manifest};
use crate::store::Engine;

pub(super) const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";
const PG_MAGIC: &[u8] = b"PGDMP";

/// `FILE.manifest.json`: the manifest of the backup `file`.
pub fn manifest_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_os_string();
    name.push(".manifest.json");
    PathBuf::from(name)
}

/// `path` made absolute against the working directory.
pub(super) fn absolute(path: &Path) -> Result<PathBuf, BackupError> {
    if path.as_os_str().is_empty() {
        return Err(BackupError::Url("FILE is empty".into()));
    }
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    std::env::current_dir()
        .map(|dir| dir.join(path))
        .map_err(|e| BackupError::io("cannot read the working directory", e))
}

/// Whether anything (a file, a directory, a dangling link) is at `path`.
pub(super) fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// The first bytes of `path`, at most `n`.
pub(super) fn head(path: &Path, n: usize) -> Result<Vec<u8>, BackupError> {
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => BackupError::NotFound(path.to_path_buf()),
        _ => BackupError::io(format!("cannot read {}", path.display()), e),
    })?;
    let mut bytes = Vec::with_capacity(n);
    file.take(n as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| BackupError::io(format!("cannot read {}", path.display()), e))?;
    Ok(bytes)
}

/// The engine a backup file belongs to, from its first bytes.
pub(super) fn detect(path: &Path) -> Result<Engine, BackupError> {
    if path.is_dir() {
        return Err(BackupError::UnknownFormat(path.to_path_buf()));
    }
    let bytes = head(path, SQLITE_MAGIC.len())?;
    if bytes.starts_with(SQLITE_MAGIC) {
        Ok(Engine::Sqlite)
    } else if bytes.starts_with(PG_MAGIC) {
        Ok(Engine::Postgres)
    } else {
        Err(BackupError::UnknownFormat(path.to_path_buf()))
    }
}

/// A name for a temporary file in the directory of `path`, hidden and unique.
pub(super) fn temp_beside(path: &Path, tag: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "keel".into());
    let unique = uuid::Uuid::new_v4().simple();
    path.with_file_name(format!(".{name}.{unique}.{tag}"))
}

/// Removes `path` if it is there; other failures are logged, not returned (cleanup).
pub(super) fn remove_quietly(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a temporary file")
        }
    }
}

/// `path` with `suffix` appended to its name (`-wal`, `-shm`, `-journal`).
pub(super) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Flushes `path` to disk.
pub(super) fn sync_file(path: &Path) -> Result<(), BackupError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| BackupError::io(format!("cannot flush {}", path.display()), e))
}

/// Flushes the directory of `path`, so that a rename in it survives a crash. Best effort: not
/// every platform can open a directory.
pub(super) fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Gives the complete temporary file `tmp` its final name `dest`, never replacing a file there:
/// a hard link fails when `dest` exists. Where links are not supported, a rename after a check.
pub(super) fn publish(tmp: &Path, dest: &Path) -> Result<(), BackupError> {
    match std::fs::hard_link(tmp, dest) {
        Ok(()) => {
            remove_quietly(tmp);
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(BackupError::Exists(dest.to_path_buf()));
        }
        Err(_) => {
            if exists(dest) {
                return Err(BackupError::Exists(dest.to_path_buf()));
            }
            std::fs::rename(tmp, dest)
                .map_err(|e| BackupError::io(format!("cannot write {}", dest.display()), e))?;
        }
    }
    sync_dir(dest);
    Ok(())
}

/// Writes the manifest of `file` (through a temporary file and a rename).
pub(super) fn write_manifest(file: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let path = manifest_path(file);
    let text = serde_json::to_string_pretty(manifest).map_err(|e| BackupError::Manifest {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let tmp = temp_beside(&path, "tmp");
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        remove_quietly(&tmp);
        return Err(BackupError::io(
            format!("cannot write {}", path.display()),
            e,
        ));
    }
    sync_dir(&path);
    Ok(())
}

/// The manifest beside `file`, if there is one.
pub(super) fn read_manifest(file: &Path) -> Result<Option<Manifest>, BackupError> {
    let path = manifest_path(file);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(BackupError::io(
                format!("cannot read {}", path.display()),
                e,
            ))
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| BackupError::Manifest {
            path,
            message: e.to_string(),
        })
}

/// Runs blocking file work off the async runtime.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, BackupError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BackupError::Io {
            context: "a background task failed".into(),
            message: e.to_string(),
        })?
}
