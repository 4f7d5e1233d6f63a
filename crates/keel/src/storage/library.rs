//! The library API for Rust handlers and jobs (`put`, `get`, `delete`, `url`), and the links
//! and records of objects the app's services store in any language.

use std::time::Duration;

use bytes::Bytes;

use super::{
    key, settings, sha256_hex, visibility, FileView, Link, LinkOp, PutOptions, RecordObject,
    Storage, StorageError,
};
use crate::store::storage::StoredObject;

impl Storage {
    /// Stores `bytes` under `key` as the app's own private object, and records it.
    pub async fn put(
        &self,
        key: &str,
        bytes: impl Into<Bytes>,
        content_type: &str,
    ) -> Result<StoredObject, StorageError> {
        self.put_with(key, bytes, content_type, PutOptions::default())
            .await
    }

    /// Stores `bytes` under `key` with `options`, and records it (with its SHA-256).
    pub async fn put_with(
        &self,
        key: &str,
        bytes: impl Into<Bytes>,
        content_type: &str,
        options: PutOptions,
    ) -> Result<StoredObject, StorageError> {
        key::check(key).map_err(StorageError::InvalidKey)?;
        let bytes: Bytes = bytes.into();
        let checksum = sha256_hex(&bytes);
        let size = bytes.len() as i64;
        self.backend()?.put(key, bytes, content_type).await?;
        let now = self.now();
        let object = StoredObject {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: options.user_id,
            key: key.to_string(),
            content_type: content_type.to_string(),
            size,
            state: "confirmed".into(),
            visibility: visibility(options.public).into(),
            checksum: Some(checksum),
            created_at: now,
            confirmed_at: Some(now),
            expires_at: options.expires_in.map(|ttl| self.deadline(ttl)),
        };
        self.inner.db.insert_storage_object(&object).await?;
        Ok(object)
    }

    /// The object under `key`, whole.
    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        self.backend()?.get(key).await
    }

    /// Removes the object under `key` and its record.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.backend()?.delete(key).await?;
        self.inner.db.delete_storage_object(key).await?;
        Ok(())
    }

    /// A URL to download `key`: the CDN URL of a recorded public object; else a signed URL
    /// (CloudFront's when configured, or the backend's) valid for `ttl` (the download TTL of
    /// `[storage]` by default).
    pub async fn url(&self, key: &str, ttl: Option<Duration>) -> Result<String, StorageError> {
        key::check(key).map_err(StorageError::InvalidKey)?;
        let public = match self.inner.db.storage_object_by_key(key).await? {
            Some(object) => object.visibility == "public",
            None => false,
        };
        let ttl = ttl.unwrap_or(self.inner.settings.rules.download_url_ttl);
        Ok(self.download(key, public, ttl, None).await?.url)
    }

    /// Records an object the backend holds under `key` (stored through a link by a job or the
    /// app's backend), with its stored size; [`StorageError::NotFound`] when there is none.
    pub async fn record(
        &self,
        object: RecordObject,
        base: Option<&str>,
    ) -> Result<FileView, StorageError> {
        key::check(&object.key).map_err(StorageError::InvalidKey)?;
        let stored = self
            .backend()?
            .head(&object.key)
            .await?
            .ok_or(StorageError::NotFound)?;
        let now = self.now();
        let row = StoredObject {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: object.user_id,
            key: object.key,
            content_type: object
                .content_type
                .map(|t| settings::essence(&t))
                .unwrap_or_else(|| "application/octet-stream".into()),
            size: i64::try_from(stored.size).unwrap_or(i64::MAX),
            state: "confirmed".into(),
            visibility: visibility(object.public).into(),
            checksum: None,
            created_at: now,
            confirmed_at: Some(now),
            expires_at: object.expires_in.map(|ttl| self.deadline(ttl)),
        };
        self.inner.db.insert_storage_object(&row).await?;
        self.view(row, base).await
    }

    /// A presigned link for `op` on `key` valid for `ttl`, for the app's services and HTTP job
    /// kinds (any language can send or fetch an object with it). An upload link of the
    /// filesystem backend accepts at most `max_size` bytes.
    pub async fn link(
        &self,
        op: LinkOp,
        key: &str,
        ttl: Duration,
        content_type: Option<&str>,
        base: Option<&str>,
    ) -> Result<Link, StorageError> {
        key::check(key).map_err(StorageError::InvalidKey)?;
        let upload = match op {
            LinkOp::Put => Some((
                settings::MAX_OBJECT_BYTES,
                content_type.unwrap_or("application/octet-stream"),
            )),
            LinkOp::Get => None,
        };
        self.signed(op, key, ttl, upload, base).await
    }
}
