//! `keel storage migrate --from URL --to URL`: copies every object of one backend to another,
//! each verified by size and SHA-256 once written. It is resumable: an object the target already
//! holds with the same bytes is skipped, so a run after an interruption finishes the rest.

use std::collections::HashMap;

use serde::Serialize;

use super::backend::Backend;
use super::error::StorageError;
use super::sha256_hex;

/// What one run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrateReport {
    /// Objects written to the target and verified.
    pub copied: u64,
    /// Objects the target already held with the same size and checksum.
    pub skipped: u64,
    /// Objects left for a later run (`--limit`).
    pub remaining: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Keys that could not be copied, with the reason.
    pub failed: Vec<MigrateFailure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MigrateFailure {
    pub key: String,
    pub error: String,
}

/// Copies every object of `from` into `to`, in key order, at most `limit` copies in this run.
/// `content_types` gives the type to store each key with (objects Keel recorded); others are
/// stored as `application/octet-stream`.
pub async fn migrate(
    from: &Backend,
    to: &Backend,
    limit: Option<u64>,
    content_types: &HashMap<String, String>,
) -> Result<MigrateReport, StorageError> {
    let mut objects = from.list("").await?;
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    let mut report = MigrateReport::default();
    for object in objects {
        let source = match from.get(&object.key).await {
            Ok(bytes) => bytes,
            Err(e) => {
                report.failed.push(MigrateFailure {
                    key: object.key,
                    error: e.to_string(),
                });
                continue;
            }
        };
        let checksum = sha256_hex(&source);
        if let Some(there) = to.head(&object.key).await? {
            if there.size == source.len() as u64
                && sha256_hex(&to.get(&object.key).await?) == checksum
            {
                report.skipped += 1;
                continue;
            }
        }
        if limit.is_some_and(|limit| report.copied >= limit) {
            report.remaining += 1;
            continue;
        }
        let content_type = content_types
            .get(&object.key)
            .map_or("application/octet-stream", String::as_str);
        let size = source.len() as u64;
        if let Err(e) = to.put(&object.key, source, content_type).await {
            report.failed.push(MigrateFailure {
                key: object.key,
                error: e.to_string(),
            });
            continue;
        }
        let written = to.get(&object.key).await?;
        if written.len() as u64 != size || sha256_hex(&written) != checksum {
            report.failed.push(MigrateFailure {
                key: object.key,
                error: "the copy does not match the source (size or SHA-256)".into(),
            });
            continue;
        }
        report.copied += 1;
        report.bytes += size;
    }
    Ok(report)
}
