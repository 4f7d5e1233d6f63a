//! One interface over the backends, through the `object_store` crate: a local directory or an
//! S3-compatible bucket (AWS S3, R2, MinIO and others), and S3's presigned URLs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{
    Attribute, Attributes, ClientOptions, ObjectStore, PutOptions, PutPayload, RetryConfig,
};
use secrecy::ExposeSecret;

use super::error::StorageError;
use super::settings::{S3Settings, StorageTarget};

/// Requests to the backend give up after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A stored object's size, as the backend reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// A storage backend.
#[derive(Clone)]
pub struct Backend {
    store: Arc<dyn ObjectStore>,
    /// The S3 client again, for presigned URLs; `None` for a directory.
    s3: Option<Arc<AmazonS3>>,
    /// Prepended to every key (the path of `s3://bucket/prefix`).
    prefix: String,
    /// `file:///abs/path` or `s3://bucket/prefix`.
    describe: String,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("target", &self.describe)
            .finish()
    }
}

impl Backend {
    /// The backend `target` names; S3 is reached with `s3`'s connection settings. A directory
    /// is created when missing.
    pub fn open(target: &StorageTarget, s3: &S3Settings) -> Result<Backend, StorageError> {
        match target {
            StorageTarget::File(root) => {
                std::fs::create_dir_all(root).map_err(|e| {
                    StorageError::Backend(format!("cannot create {}: {e}", root.display()))
                })?;
                let root = root.canonicalize().map_err(|e| {
                    StorageError::Backend(format!("cannot open {}: {e}", root.display()))
                })?;
                let store = LocalFileSystem::new_with_prefix(&root)
                    .map_err(|e| StorageError::Backend(e.to_string()))?;
                Ok(Backend {
                    store: Arc::new(store),
                    s3: None,
                    prefix: String::new(),
                    describe: format!("file://{}", root.display()),
                })
            }
            StorageTarget::S3 { bucket, prefix } => {
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(s3.region.as_deref().unwrap_or("us-east-1"))
                    .with_virtual_hosted_style_request(!s3.path_style)
                    .with_retry(RetryConfig {
                        max_retries: 2,
                        retry_timeout: Duration::from_secs(10),
                        ..RetryConfig::default()
                    })
                    .with_client_options(
                        ClientOptions::new()
                            .with_timeout(REQUEST_TIMEOUT)
                            .with_connect_timeout(Duration::from_secs(5))
                            .with_allow_http(true),
                    );
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let (Some(id), Some(secret)) = (&s3.access_key_id, &s3.secret_access_key) {
                    builder = builder
                        .with_access_key_id(id)
                        .with_secret_access_key(secret.expose_secret());
                }
                if let Some(token) = &s3.session_token {
                    builder = builder.with_token(token.expose_secret());
                }
                let client = Arc::new(
                    builder
                        .build()
                        .map_err(|e| StorageError::Backend(e.to_string()))?,
                );
                Ok(Backend {
                    store: client.clone(),
                    s3: Some(client),
                    prefix: if prefix.is_empty() {
                        String::new()
                    } else {
                        format!("{prefix}/")
                    },
                    describe: if prefix.is_empty() {
                        format!("s3://{bucket}")
                    } else {
                        format!("s3://{bucket}/{prefix}")
                    },
                })
            }
        }
    }

    /// `file:///abs/path` or `s3://bucket[/prefix]` (no credentials).
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Whether objects are reached through Keel's own signed links (a directory) rather than
    /// presigned URLs of the service.
    pub fn is_local(&self) -> bool {
        self.s3.is_none()
    }

    fn path(&self, key: &str) -> Result<ObjectPath, StorageError> {
        super::key::check(key).map_err(StorageError::InvalidKey)?;
        ObjectPath::parse(format!("{}{key}", self.prefix))
            .map_err(|e| StorageError::InvalidKey(e.to_string()))
    }

    /// Stores `bytes` under `key`, replacing what was there.
    pub async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), StorageError> {
        let path = self.path(key)?;
        let size = bytes.len() as u64;
        let mut opts = PutOptions::default();
        if self.s3.is_some() {
            let mut attributes = Attributes::new();
            attributes.insert(Attribute::ContentType, content_type.to_string().into());
            opts.attributes = attributes;
        }
        let result = self
            .store
            .put_opts(&path, PutPayload::from_bytes(bytes), opts)
            .await;
        record("put", &result, size);
        result.map(drop).map_err(backend_error)
    }

    /// Stores what `body` yields under `key`, refusing (and storing nothing) once it passes
    /// `max_bytes`; the number of bytes stored.
    pub async fn put_stream(
        &self,
        key: &str,
        mut body: BoxStream<'static, Result<Bytes, String>>,
        max_bytes: u64,
    ) -> Result<u64, StorageError> {
        let path = self.path(key)?;
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(backend_error)?;
        let mut writer = object_store::WriteMultipart::new(upload);
        let mut written: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(message) => {
                    let _ = writer.abort().await;
                    return Err(StorageError::Body(message));
                }
            };
            written += chunk.len() as u64;
            if written > max_bytes {
                let _ = writer.abort().await;
                return Err(StorageError::TooLarge { max: max_bytes });
            }
            writer.write(&chunk);
        }
        let result = writer.finish().await;
        record("put", &result, written);
        result.map_err(backend_error)?;
        Ok(written)
    }

    /// The object under `key`, whole.
    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let path = self.path(key)?;
        let result = match self.store.get(&path).await {
            Ok(got) => got.bytes().await,
            Err(e) => Err(e),
        };
        let size = result.as_ref().map_or(0, |b| b.len() as u64);
        record("get", &result, size);
        result.map_err(backend_error)
    }

    /// The object under `key` as a stream, with its size.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<(u64, BoxStream<'static, Result<Bytes, std::io::Error>>), StorageError> {
        let path = self.path(key)?;
        let result = self.store.get(&path).await;
        let size = result.as_ref().map_or(0, |g| g.meta.size);
        record("get", &result, size);
        let got = result.map_err(backend_error)?;
        let stream = got
            .into_stream()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .boxed();
        Ok((size, stream))
    }

    /// The size of the object under `key`, or `None` when there is none.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        let path = self.path(key)?;
        let result = self.store.head(&path).await;
        record("head", &result, 0);
        match result {
            Ok(meta) => Ok(Some(ObjectInfo {
                key: key.to_string(),
                size: meta.size,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(backend_error(e)),
        }
    }

    /// Removes the object under `key`; nothing there is no error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path(key)?;
        let result = self.store.delete(&path).await;
        record("delete", &result, 0);
        match result {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(backend_error(e)),
        }
    }

    /// Every object whose key starts with `prefix` (a whole segment path, `users/ab/`; empty for
    /// everything), in no particular order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let trimmed = prefix.trim_end_matches('/');
        let path = match (self.prefix.is_empty(), trimmed.is_empty()) {
            (true, true) => None,
            (false, true) => Some(ObjectPath::parse(self.prefix.trim_end_matches('/'))),
            (_, false) => Some(ObjectPath::parse(format!("{}{trimmed}", self.prefix))),
        }
        .transpose()
        .map_err(|e| StorageError::InvalidKey(e.to_string()))?;
        let result: Result<Vec<_>, _> = self.store.list(path.as_ref()).try_collect().await;
        record("list", &result, 0);
        let metas = match result {
            Ok(metas) => metas,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(backend_error(e)),
        };
        Ok(metas
            .into_iter()
            .filter_map(|meta| {
                let full = meta.location.to_string();
                let key = full.strip_prefix(&self.prefix)?.to_string();
                Some(ObjectInfo {
                    key,
                    size: meta.size,
                })
            })
            .collect())
    }

    /// A presigned URL of the service for `method` on `key`, valid for `ttl`; `None` for a
    /// directory (Keel signs its own links).
    pub async fn presign(
        &self,
        method: reqwest::Method,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<String>, StorageError> {
        let Some(s3) = &self.s3 else {
            return Ok(None);
        };
        let path = self.path(key)?;
        let result = s3.signed_url(method, &path, ttl).await;
        record("presign", &result, 0);
        Ok(Some(result.map_err(backend_error)?.to_string()))
    }

    /// One round trip to the backend (a listing of a key that never exists), bounded by
    /// `timeout`; how long it took.
    pub async fn probe(&self, timeout: Duration) -> Result<Duration, StorageError> {
        let started = Instant::now();
        match tokio::time::timeout(timeout, self.head("keel-probe/none")).await {
            Ok(Ok(_)) => Ok(started.elapsed()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StorageError::Backend(format!(
                "no answer within {} ms",
                timeout.as_millis()
            ))),
        }
    }
}

fn backend_error(e: object_store::Error) -> StorageError {
    match e {
        object_store::Error::NotFound { .. } => StorageError::NotFound,
        other => {
            tracing::warn!(error = %other, "object storage operation failed");
            StorageError::Backend(other.to_string())
        }
    }
}

/// Counts one operation and, when it moved bytes, its bytes.
fn record<T>(op: &'static str, result: &Result<T, object_store::Error>, bytes: u64) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(object_store::Error::NotFound { .. }) => "not_found",
        Err(_) => "error",
    };
    super::metrics::operation(op, outcome);
    if result.is_ok() && bytes > 0 {
        super::metrics::bytes(op, bytes);
    }
}
